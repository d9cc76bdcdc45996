"""Supernet training on several processes (gloo, on the CPU): the same subnets on every rank,
identical weights, rank 0 alone writing, a killed run resuming, and a single process as before.

The processes are started as ``torchrun`` starts them (the same environment variables), each
in its own working directory: the supernet's folder is a relative path, so a file written by
any rank but 0 would show in that rank's directory. ``distributed_worker.py`` is the script
each runs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from optuna_nachos.supernet import (
    CHECKPOINT_FILE,
    METADATA_FILE,
    WEIGHTS_FILE,
    Supernet,
    SupernetError,
    SupernetSettings,
    largest_config,
    load_supernet,
    smallest_config,
    train_supernet,
)
from optuna_nachos.supernet._distributed import (
    Processes,
    _distributed_device,
    convert_sync_batchnorm,
    processes,
    revert_sync_batchnorm,
    steps_per_epoch,
)
from optuna_nachos.supernet._train import _check_processes

from .conftest import tiny_settings

WORKER = Path(__file__).with_name("distributed_worker.py")
LAUNCH_TIMEOUT = 150
"""Seconds a whole launch of the processes may take (tens of seconds on 2 busy cores)."""

SETTINGS = {
    "epochs": 2,
    "batch_size": 32,  # the global batch: 16 images per process, 2 steps of 64 images
    "random_subnets": 1,
    "recalibration_batches": 1,
    "device": "cpu",
    "progress": False,
    "seed": 0,
}
STEPS_PER_EPOCH = 2
TRAIN_SUBSET = 64


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment(rank: int, world: int, port: int) -> dict[str, str]:
    """What torchrun gives each process, on loopback."""
    return {
        **os.environ,
        "RANK": str(rank),
        "WORLD_SIZE": str(world),
        "LOCAL_RANK": str(rank),
        "LOCAL_WORLD_SIZE": str(world),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "OMP_NUM_THREADS": "1",
    }


@dataclass
class Launch:
    work: Path
    record: Path
    processes: list[subprocess.Popen]

    def cwd(self, rank: int) -> Path:
        return self.work / f"rank{rank}"

    def wait(self, timeout: float = LAUNCH_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        try:
            for process in self.processes:
                process.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            self.kill()
        logs = [(self.record / f"log-{rank}").read_text() for rank in range(len(self.processes))]
        codes = [process.returncode for process in self.processes]
        assert codes == [0] * len(codes), f"exit codes {codes}:\n" + "\n".join(
            log[-3000:] for log in logs
        )

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()


def _launch(
    work: Path, *, world: int = 2, settings: dict | None = None, extra: tuple = ()
) -> Launch:
    record = work / "record"
    record.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    processes = []
    for rank in range(world):
        cwd = work / f"rank{rank}"
        cwd.mkdir(exist_ok=True)
        command = [
            sys.executable,
            str(WORKER),
            "--out",
            "sn",  # relative: each rank's own directory
            "--record",
            str(record),
            "--settings",
            json.dumps(settings or SETTINGS),
            "--train-subset",
            str(TRAIN_SUBSET),
            *extra,
        ]
        with open(record / f"log-{rank}", "w") as log:
            processes.append(
                subprocess.Popen(
                    command,
                    cwd=cwd,
                    env=_environment(rank, world, port),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    return Launch(work, record, processes)


def _weights(launch: Launch, rank: int) -> dict[str, torch.Tensor]:
    return torch.load(launch.record / f"weights-{rank}.pt", weights_only=True)


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    """The keys whose tensors differ."""
    assert a.keys() == b.keys()
    return [key for key in a if not torch.equal(a[key], b[key])]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> Launch:
    """Two processes training a tiny supernet for 2 epochs of 2 steps (about half a minute)."""
    launch = _launch(tmp_path_factory.mktemp("two"))
    launch.wait()
    return launch


def test_ranks_hold_identical_weights(two_processes):
    first, second = _weights(two_processes, 0), _weights(two_processes, 1)
    assert not _same(first, second)
    on_disk = load_supernet(two_processes.cwd(0) / "sn").state_dict()
    assert not _same(first, on_disk)


def test_every_rank_trains_the_same_subnets_each_step_on_its_own_shard(two_processes):
    passes = [
        json.loads((two_processes.record / f"passes-{rank}.json").read_text()) for rank in (0, 1)
    ]
    subnets = [[p["subnet"] for p in each] for each in passes]
    assert len(subnets[0]) == 2 * STEPS_PER_EPOCH * 3  # largest, smallest, 1 random per step
    assert subnets[0] == subnets[1]
    randoms = {json.dumps(subnet) for subnet in subnets[0][2::3]}
    assert len(randoms) > 1  # the random subnet changes from step to step
    # Each rank trains on its own images (its shard); every subnet of a step on the same.
    images = [[p["images"] for p in each] for each in passes]
    assert all(a != b for a, b in zip(images[0][::3], images[1][::3]))
    assert all(len(set(each[i : i + 3])) == 1 for each in images for i in range(0, len(each), 3))


def test_only_rank_0_writes_files(two_processes):
    assert {p.name for p in (two_processes.cwd(0) / "sn").iterdir()} == {
        WEIGHTS_FILE,
        METADATA_FILE,
    }
    assert list(two_processes.cwd(1).iterdir()) == []


def test_every_rank_returns_the_same_metadata(two_processes):
    metadata = [
        json.loads((two_processes.record / f"metadata-{rank}.json").read_text()) for rank in (0, 1)
    ]
    assert metadata[0] == metadata[1]
    assert metadata[0] == json.loads((two_processes.cwd(0) / "sn" / METADATA_FILE).read_text())
    assert metadata[0]["complete"] and metadata[0]["settings"]["batch_size"] == 32
    assert [record["processes"] for record in metadata[0]["history"]] == [2, 2]
    for record in metadata[0]["history"]:
        assert 0 <= record["val"]["largest"]["final_accuracy"] <= 1
        assert record["losses"]["largest"] > 0


def test_a_killed_run_resumes_and_finishes_with_the_uninterrupted_weights(tmp_path, two_processes):
    launch = _launch(tmp_path, extra=("--hang-at-step", str(STEPS_PER_EPOCH + 1)))
    deadline = time.monotonic() + LAUNCH_TIMEOUT
    try:
        while not all((launch.record / f"hanging-{rank}").exists() for rank in (0, 1)):
            assert time.monotonic() < deadline, "the processes never reached epoch 2"
            assert all(p.poll() is None for p in launch.processes), "a process ended early"
            time.sleep(0.2)
    finally:
        launch.kill()  # SIGKILL, in epoch 2
    folder = launch.cwd(0) / "sn"
    assert (folder / CHECKPOINT_FILE).is_file() and not (folder / WEIGHTS_FILE).exists()
    assert json.loads((folder / METADATA_FILE).read_text())["epochs_done"] == 1

    resumed = _launch(tmp_path)
    resumed.wait()
    metadata = json.loads((folder / METADATA_FILE).read_text())
    assert metadata["complete"] and [r["epoch"] for r in metadata["history"]] == [1, 2]
    # On the same number of processes the resumed run is the uninterrupted one.
    assert not _same(_weights(resumed, 0), _weights(two_processes, 0))
    assert not _same(_weights(resumed, 1), _weights(two_processes, 0))
    assert list(resumed.cwd(1).iterdir()) == []


def test_a_stopped_run_resumes_on_one_process(tmp_path):
    from optuna_nachos.data import load_dataset

    launch = _launch(tmp_path, extra=("--time-limit", "1e-9"))
    launch.wait()
    folder = launch.cwd(0) / "sn"
    stopped = json.loads((folder / METADATA_FILE).read_text())
    assert stopped["epochs_done"] == 1 and not stopped["complete"]
    assert json.loads((launch.record / "metadata-1.json").read_text()) == stopped

    data = load_dataset("digits", resolution=16, seed=0, train_subset=TRAIN_SUBSET)
    settings = SupernetSettings.from_dict(SETTINGS)
    finished = train_supernet(data, folder, settings=settings, metadata={"data_seed": 0})
    assert finished.metadata["complete"]
    assert [r.get("processes", 1) for r in finished.metadata["history"]] == [2, 1]
    assert not torch.distributed.is_initialized()


def test_an_error_of_rank_0_stops_every_rank(tmp_path):
    """Rank 0 alone reads the folder; what it finds wrong stops the others too (no wait)."""
    (tmp_path / "rank0").mkdir()
    (tmp_path / "rank0" / "sn").write_text("not a folder")
    launch = _launch(tmp_path)
    codes = [process.wait(timeout=LAUNCH_TIMEOUT) for process in launch.processes]
    assert codes[0] != 0 and codes[1] != 0
    for rank in (0, 1):
        assert (
            "sn is a file; the supernet needs a folder"
            in (launch.record / f"log-{rank}").read_text()
        )
    assert list(launch.cwd(1).iterdir()) == []


def test_a_plain_run_is_unchanged(trained):
    """One process without torchrun trains as before distributed training existed: the
    figures of the session's tiny supernet (``trained``) as that code gave them (its
    weights' SHA-256 was 469c10d8...a3ce on the machine that recorded them)."""
    state = trained.supernet.state_dict()
    floats = [value.double() for value in state.values() if value.is_floating_point()]
    assert sum(float(v.abs().sum()) for v in floats) == pytest.approx(411517.78136, rel=1e-4)
    assert sum(float(v.sum()) for v in floats) == pytest.approx(27001.699014, rel=1e-3)
    losses = trained.supernet.metadata["history"][-1]["losses"]
    assert losses["largest"] == pytest.approx(1.82002574, rel=1e-4)
    assert losses["smallest"] == pytest.approx(2.30136025, rel=1e-4)
    assert losses["heads"] == pytest.approx(2.45189118, rel=1e-4)
    assert all("processes" not in record for record in trained.supernet.metadata["history"])
    assert not torch.distributed.is_initialized()


def test_the_command_runs_under_torchrun(tmp_path):
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "optuna_nachos.cli",
        "supernet",
        "train",
        "--dataset",
        "digits",
        "--resolution",
        "16",
        "--train-subset",
        "64",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--device",
        "cpu",
        "--no-progress",
        "--json",
        "--out",
        "sn",
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        command,
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summaries = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1  # printed by rank 0 alone
    summary = json.loads(summaries[0])
    assert summary["complete"] and summary["epochs"] == 1
    metadata = json.loads((tmp_path / "sn" / METADATA_FILE).read_text())
    assert metadata["history"][0]["processes"] == 2


# --- Checks that need no second process ---------------------------------------------------


def _cpu_processes(world: int) -> Processes:
    return Processes(rank=0, world_size=world, local_rank=0, device=torch.device("cpu"))


def test_the_global_batch_must_split_evenly():
    with pytest.raises(SupernetError, match="multiple of the 3 processes.*use e.g. 66"):
        _check_processes(tiny_settings(batch_size=64), _cpu_processes(3))
    _check_processes(tiny_settings(batch_size=64), _cpu_processes(2))
    _check_processes(tiny_settings(batch_size=63), _cpu_processes(1))


def test_synchronized_batchnorm_needs_gpus():
    with pytest.raises(SupernetError, match="sync_batchnorm needs CUDA"):
        _check_processes(tiny_settings(sync_batchnorm=True), _cpu_processes(2))
    _check_processes(tiny_settings(sync_batchnorm=True), _cpu_processes(1))  # ignored


def test_steps_per_epoch_of_the_global_batch():
    assert steps_per_epoch(256, 64, 1) == 4
    assert steps_per_epoch(256, 64, 2) == 4
    assert steps_per_epoch(1293, 64, 2) == 21
    assert steps_per_epoch(100, 32, 4) == 4  # 25 per rank, 8 a step


def test_an_incomplete_launcher_environment_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(SupernetError, match="start them with torchrun"), processes("cpu"):
        pass
    monkeypatch.setenv("WORLD_SIZE", "two")
    refused = pytest.raises(SupernetError, match="WORLD_SIZE='two' is not an integer")
    with refused, processes("cpu"):
        pass


def test_a_single_process_under_torchrun_is_a_plain_one(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    with processes("cpu") as run:
        assert not run.distributed and run.main and run.device == torch.device("cpu")
    assert not torch.distributed.is_initialized()


def test_devices_of_several_processes():
    assert _distributed_device("cpu", 1, 2) == torch.device("cpu")
    with pytest.raises(SupernetError, match="CUDA GPUs .NCCL. or the CPU"):
        _distributed_device("meta", 0, 2)
    if not torch.cuda.is_available():
        assert _distributed_device("auto", 1, 2) == torch.device("cpu")
        with pytest.raises(SupernetError, match="no CUDA GPU"):
            _distributed_device("cuda", 0, 2)


def _batchnorms(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def test_synchronized_batchnorm_conversion_keeps_the_arithmetic():
    """Converted (outside a process group SyncBatchNorm computes as BatchNorm does), a
    narrow subnet's BatchNorm still runs on the slices of its layers, statistics included;
    reverted, the layers are plain again and share the same parameters."""
    import copy

    torch.manual_seed(0)
    plain = Supernet(num_classes=10, in_channels=1, resolution=16)
    synced = copy.deepcopy(plain)
    parameters = dict(synced.named_parameters())
    count = convert_sync_batchnorm(synced)
    assert count == len(_batchnorms(plain)) > 0
    assert all(isinstance(m, nn.SyncBatchNorm) for m in _batchnorms(synced))
    assert all(parameters[name] is p for name, p in synced.named_parameters())
    images = torch.randn(8, 1, 16, 16)
    for config in (largest_config(resolution=16), smallest_config(resolution=16)):
        for model in (plain, synced):
            model.train()
            model.set_active(config)
        expected, got = plain(images), synced(images)
        assert torch.allclose(expected, got, atol=1e-5)
        got.sum().backward()
    for (name, a), b in zip(plain.state_dict().items(), synced.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), name
    assert revert_sync_batchnorm(synced) == count
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in synced.modules())
    assert all(type(m) is nn.BatchNorm2d for m in _batchnorms(synced))
    assert all(parameters[name] is p for name, p in synced.named_parameters())
    assert synced.extract(smallest_config(resolution=16)) is not None
