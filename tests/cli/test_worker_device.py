"""The device of a search worker: --device, or its LOCAL_RANK among the GPUs."""

import pytest

from optuna_nachos.cli import main
from optuna_nachos.cli._device import worker_device
from optuna_nachos.cli._format import CommandError


@pytest.mark.parametrize(
    ("device", "local_rank", "gpus", "expected"),
    [
        (None, "3", 4, "cuda:3"),
        ("auto", "1", 4, "cuda:1"),
        ("cuda", "5", 4, "cuda:1"),  # more workers than GPUs: two per GPU
        (None, "0", 1, "cuda:0"),
        (None, "2", 0, None),  # no GPU: the training default (the CPU)
        ("cpu", "2", 4, "cpu"),  # an explicit device is kept
        ("cuda:2", "0", 4, "cuda:2"),
        (None, None, 4, None),  # no LOCAL_RANK: as before
        ("cuda", None, 4, "cuda"),
    ],
)
def test_local_rank_picks_the_gpu(device, local_rank, gpus, expected):
    environ = {} if local_rank is None else {"LOCAL_RANK": local_rank}
    chosen, line = worker_device(device, environ=environ, cuda_devices=gpus)
    assert chosen == expected
    if expected is not None and expected != device:
        assert line == f"Worker device {expected} (LOCAL_RANK {local_rank}, {gpus} GPU(s))."
    else:
        assert line is None


@pytest.mark.parametrize("text", ["x", "-1", "1.5"])
def test_a_bad_local_rank_is_refused(text):
    with pytest.raises(CommandError, match=f"LOCAL_RANK='{text}' is not a worker index"):
        worker_device(None, environ={"LOCAL_RANK": text}, cuda_devices=2)


def test_the_search_command_refuses_a_bad_local_rank(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("LOCAL_RANK", "first")
    storage = f"sqlite:///{tmp_path / 's.db'}"
    args = ["search", "--dataset", "digits", "--max-avg-macs", "1M", "--storage", storage]
    assert main([*args, "--n-trials", "1", "--min-accuracy", "0"]) == 2
    assert "LOCAL_RANK='first' is not a worker index" in capsys.readouterr().err
    assert not (tmp_path / "s.db").exists()
