"""The latency back ends: a registered protocol, and a back end of one's own profiled, used for
exit latencies and timed on whole networks like the built-in ones."""

from __future__ import annotations

import pytest

from optuna_nachos.config import EENNConfig
from optuna_nachos.cost import (
    LatencyBackend,
    OnnxRuntimeBackend,
    TorchBackend,
    _backends,
    exit_latency,
    get_latency_backend,
    list_latency_backends,
    measure_exit_latency,
    profile_latency,
    register_latency_backend,
)

RESOLUTION = 16


def _config(*, exit_stages: tuple[int, ...]) -> EENNConfig:
    """The smallest network of the profiled space, with early exits after ``exit_stages``."""
    return EENNConfig(
        depths=(2,) * 5,
        kernel_sizes=((3, 3),) * 5,
        expand_ratios=((3, 3),) * 5,
        exit_stages=exit_stages,
        resolution=RESOLUTION,
    )


class _Doubled(TorchBackend):
    """PyTorch eager, every block run twice: a back end of one's own."""

    name = "torch-doubled"

    def block_call(self, prepared, x):
        return lambda: (prepared(x), prepared(x))


@pytest.fixture
def doubled(monkeypatch: pytest.MonkeyPatch) -> LatencyBackend:
    monkeypatch.setattr(_backends, "_BACKENDS", _backends._BACKENDS.copy())
    backend = _Doubled()
    register_latency_backend(backend)
    return backend


def test_the_built_in_back_ends_are_registered_in_order():
    assert list_latency_backends() == ["torch", "onnxruntime"]
    assert isinstance(get_latency_backend("torch"), TorchBackend)
    assert isinstance(get_latency_backend("onnxruntime"), OnnxRuntimeBackend)
    assert "intra_op_num_threads=2" in get_latency_backend("onnxruntime").options(threads=2)


def test_unknown_duplicate_and_wrong_back_ends_are_refused():
    with pytest.raises(ValueError, match=r"unknown latency back end 'cuda'.*'torch'"):
        get_latency_backend("cuda")
    with pytest.raises(ValueError, match="already registered"):
        register_latency_backend(TorchBackend())
    with pytest.raises(TypeError, match="LatencyBackend instance"):
        register_latency_backend("torch")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="abstract"):
        LatencyBackend()  # type: ignore[abstract]


def test_a_back_end_of_ones_own_is_profiled_and_used(doubled):
    assert list_latency_backends()[-1] == "torch-doubled"
    table = profile_latency(
        resolutions=(RESOLUTION,),
        kernel_sizes=(3,),
        expand_ratios=(3,),
        num_classes=10,
        backends=("torch", "torch-doubled"),
        batch_sizes=(1,),
        warmup=1,
        repeats=5,
        clock="thread",
    )
    assert table.backends == ("torch", "torch-doubled")
    assert "torch-doubled_options" in table.method
    config = _config(exit_stages=(2,))
    once = exit_latency(config, table, backend="torch")
    twice = exit_latency(config, table, backend="torch-doubled")
    assert len(once) == len(twice) == 2
    # Running every block twice costs more than once, whatever the noise of a shared machine.
    assert twice[-1] > once[-1]


def test_whole_networks_are_timed_on_a_back_end_of_ones_own(doubled):
    config = _config(exit_stages=(1,))
    times = measure_exit_latency(
        [config], num_classes=10, backends=("torch-doubled",), warmup=0, rounds=2
    )
    assert list(times) == ["torch-doubled"]
    assert len(times["torch-doubled"][0]) == 2  # one series per exit
    assert all(len(series) == 2 and min(series) > 0 for series in times["torch-doubled"][0])
