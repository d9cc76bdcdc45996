"""Supernet training on several processes (``torchrun``): the process group, the devices, the
data shards, gradient averaging and what rank 0 shares with the others.

Every process runs the same :func:`~optuna_nachos.supernet.train_supernet` call. They draw the
same subnets every step (the subnet generator has the same seed on every rank), each on its
own shard of the data (:class:`~torch.utils.data.DistributedSampler`), and average their
gradients with one :func:`torch.distributed.all_reduce` per step, after the step's backward
passes and before clipping and the optimizer step.

Why not :class:`~torch.nn.parallel.DistributedDataParallel`: a sandwich step runs several
forward and backward passes (one per subnet) through ``Supernet.forward_stages``, not
``forward``, and each pass uses another subset of the shared parameters (depths, kernel
centres, channels, the heads of the last subnet only). DDP reduces inside each backward,
only for what ``forward`` ran; it would need ``no_sync`` on every pass but the last and
``find_unused_parameters``, whose search of the graph sees the last pass only. One
all-reduce of the summed gradients per step is exact instead: the mean over ranks of each
rank's sum over subnets of the mean loss over its shard is the sum over subnets of the mean
loss over the global batch, which one process computes on the whole batch.

A process with no ``torchrun`` environment (``WORLD_SIZE`` unset or 1) and no process group
trains exactly as before: nothing of this module runs.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from optuna_nachos.supernet._io import SupernetError
from optuna_nachos.train import resolve_device

PROCESS_GROUP_TIMEOUT = datetime.timedelta(minutes=30)
"""How long a process waits for the others in one collective: the other ranks wait while
rank 0 validates the largest and smallest subnets after each epoch."""

_LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise SupernetError(
            f"the environment variable {name}={value!r} is not an integer; start the "
            "processes with torchrun, which sets it."
        ) from None


def requested_world_size() -> int:
    """How many processes the launcher started (``WORLD_SIZE``, 1 without ``torchrun``)."""
    return _env_int("WORLD_SIZE", 1)


@dataclass(frozen=True)
class Processes:
    """The processes training one supernet together (one, without ``torchrun``).

    Attributes:
        rank: This process's rank (0 writes the files).
        world_size: The number of processes.
        local_rank: This process's rank on its machine (its GPU index).
        device: Where this process trains.
        owns_group: Whether this call started the process group (and ends it).
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False

    @property
    def distributed(self) -> bool:
        """Whether several processes train together."""
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Whether this process is rank 0, the one that validates, logs and writes."""
        return self.rank == 0

    def shared(self, value: Any) -> Any:
        """Rank 0's ``value``, on every rank (``value`` itself in a single process)."""
        if not self.distributed:
            return value
        box = [value if self.main else None]
        torch.distributed.broadcast_object_list(box, src=0, device=self._collective_device)
        return box[0]

    def from_main(self, read: Any) -> Any:
        """Run ``read()`` on rank 0 only and give its result to every rank.

        An error of ``read()`` is raised on every rank (rather than leaving the others
        waiting): as it is on rank 0; as a :class:`SupernetError` or ``ValueError`` of the
        same message on the others, any other error as a ``RuntimeError`` naming it.
        """
        if not self.distributed:
            return read()
        if not self.main:
            kind, value = self.shared(None)
            if kind == "value":
                return value
            if kind == SupernetError.__name__:
                raise SupernetError(value)
            if kind == ValueError.__name__:
                raise ValueError(value)
            raise RuntimeError(f"rank 0 failed: {kind}: {value}")
        try:
            value = read()
        except Exception as error:
            self.shared((type(error).__name__, str(error)))
            raise
        self.shared(("value", value))
        return value

    @property
    def _collective_device(self) -> torch.device:
        # NCCL moves objects through the GPU, gloo through the CPU.
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def augmentation_seed(self, seed: int, epoch: int) -> int:
        """The seed of this rank's augmentation in ``epoch``: its own stream on every rank,
        the same one again when a run resumes on the same number of processes."""
        sequence = np.random.SeedSequence([seed & 0xFFFFFFFF, self.rank, epoch])
        return int(sequence.generate_state(1)[0])

    def broadcast_state(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank (as DDP does when it starts)."""
        if not self.distributed:
            return
        with torch.no_grad():
            for tensor in module.state_dict().values():
                torch.distributed.broadcast(tensor, src=0)

    def broadcast_buffers(self, module: nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) to every rank, as DDP's
        ``broadcast_buffers``: with BatchNorm per rank each rank's statistics follow its own
        shard; rank 0's are kept."""
        if not self.distributed:
            return
        with torch.no_grad():
            for buffer in module.buffers():
                torch.distributed.broadcast(buffer, src=0)

    def average_gradients(self, parameters: Sequence[nn.Parameter], *, finite: bool) -> bool:
        """Average the parameters' gradients over the ranks (one all-reduce).

        Args:
            parameters: The parameters; those without a gradient this step are left out
                (every rank trained the same subnets, so they are the same on every rank).
            finite: Whether this rank's losses were finite.

        Returns:
            Whether every rank's losses were finite (else the gradients are left alone and
            every rank raises together).

        Raises:
            RuntimeError: If the ranks disagree on which parameters have gradients (they did
                not train the same subnets).
        """
        grads = [p.grad for p in parameters if p.grad is not None]
        device = grads[0].device if grads else self.device
        check = torch.tensor(
            [len(grads), -len(grads), 0.0 if finite else 1.0], dtype=torch.float64, device=device
        )
        torch.distributed.all_reduce(check, op=torch.distributed.ReduceOp.MAX)
        most, fewest, diverged = int(check[0]), -int(check[1]), bool(check[2])
        if most != fewest:
            raise RuntimeError(
                f"the {self.world_size} processes trained different parameters this step "
                f"({fewest} to {most} gradients): every rank must train the same subnets; "
                "do not change the subnet sampling per rank."
            )
        if diverged or not grads:
            return not diverged
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for grad in grads:
            count = grad.numel()
            grad.copy_(flat[offset : offset + count].view(grad.shape))
            offset += count
        return True

    def summed(self, values: Sequence[float]) -> list[float]:
        """The sums of ``values`` over the ranks."""
        if not self.distributed:
            return list(values)
        tensor = torch.tensor(list(values), dtype=torch.float64, device=self._collective_device)
        torch.distributed.all_reduce(tensor)
        return [float(v) for v in tensor.tolist()]


def steps_per_epoch(train_size: int, batch_size: int, world_size: int) -> int:
    """Steps of one epoch at global batch ``batch_size`` on ``world_size`` processes.

    :class:`~torch.utils.data.DistributedSampler` gives every rank ``ceil(n / world_size)``
    images (repeating a few to even the shards), in batches of ``batch_size / world_size``.
    """
    per_rank = -(-train_size // world_size)
    local_batch = batch_size // world_size
    return -(-per_rank // local_batch)


def _distributed_device(setting: str, local_rank: int, local_world_size: int) -> torch.device:
    if setting in ("auto", "cuda"):
        if torch.cuda.is_available():
            if local_rank >= torch.cuda.device_count():
                raise SupernetError(
                    f"LOCAL_RANK {local_rank} has no GPU: this machine has "
                    f"{torch.cuda.device_count()} CUDA device(s); start at most that many "
                    "processes per machine (torchrun --nproc_per_node)."
                )
            return torch.device("cuda", local_rank)
        if setting == "cuda":
            raise SupernetError(
                "device 'cuda' was asked for but no CUDA GPU is available; use 'cpu'."
            )
        return torch.device("cpu")
    device = resolve_device(setting)
    if device.type == "cuda" and device.index is not None and local_world_size > 1:
        raise SupernetError(
            f"device {setting!r} would put the {local_world_size} processes of this machine "
            "on one GPU; under torchrun pass device 'cuda' (or 'auto'): each process then "
            "takes the GPU of its LOCAL_RANK."
        )
    if device.type not in ("cuda", "cpu"):
        raise SupernetError(
            f"device {setting!r}: training on several processes runs on CUDA GPUs (NCCL) or "
            "the CPU (gloo); use 'cuda', 'cpu' or 'auto'."
        )
    return device


@contextlib.contextmanager
def processes(device_setting: str) -> Iterator[Processes]:
    """The processes of this training: a process group when ``torchrun`` started several.

    An existing process group (the caller's) is used as it is; otherwise, with
    ``WORLD_SIZE`` above 1, one is started from ``torchrun``'s environment (NCCL on GPUs,
    gloo on the CPU) and ended when the block exits.

    Raises:
        SupernetError: If the environment or the device does not allow the processes to
            train together; the message says how to start them.
    """
    group = torch.distributed.is_available() and torch.distributed.is_initialized()
    world = torch.distributed.get_world_size() if group else requested_world_size()
    if world <= 1:
        yield Processes(rank=0, world_size=1, local_rank=0, device=resolve_device(device_setting))
        return
    if not torch.distributed.is_available():
        raise SupernetError(
            f"WORLD_SIZE={world} asks for {world} processes, but this PyTorch build has no "
            "torch.distributed; install a PyTorch with distributed support."
        )
    local_rank = _env_int("LOCAL_RANK", 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", 1)
    device = _distributed_device(device_setting, local_rank, local_world)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if group:
        yield Processes(
            rank=torch.distributed.get_rank(),
            world_size=world,
            local_rank=local_rank,
            device=device,
        )
        return
    missing = [name for name in _LAUNCHER_VARIABLES if not os.environ.get(name)]
    if missing:
        raise SupernetError(
            f"WORLD_SIZE={world} asks for several processes but {', '.join(missing)} "
            "is not set: start them with torchrun (torchrun --nproc_per_node N ...), which "
            "sets the whole environment."
        )
    backend = "nccl" if device.type == "cuda" else "gloo"
    torch.distributed.init_process_group(backend=backend, timeout=PROCESS_GROUP_TIMEOUT)
    try:
        yield Processes(
            rank=torch.distributed.get_rank(),
            world_size=world,
            local_rank=local_rank,
            device=device,
            owns_group=True,
        )
    finally:
        torch.distributed.destroy_process_group()


# --- Synchronized BatchNorm --------------------------------------------------------------


def _synced_bn_forward(x: torch.Tensor, bn: nn.Module, feature_dim: int) -> torch.Tensor:
    """OFA's dynamic BatchNorm through a :class:`~torch.nn.SyncBatchNorm`: the full width
    as it is, a narrower subnet on the first ``feature_dim`` channels of its parameters and
    running statistics (the slices are views: the statistics are updated in place)."""
    if bn.num_features == feature_dim:
        return bn(x)
    sliced = {
        "weight": bn.weight[:feature_dim],
        "bias": bn.bias[:feature_dim],
        "running_mean": bn.running_mean[:feature_dim],
        "running_var": bn.running_var[:feature_dim],
    }
    return torch.func.functional_call(bn, sliced, (x,))


def _is_dynamic_batchnorm(module: nn.Module) -> bool:
    return type(module).__name__ == "DynamicBatchNorm2d" and hasattr(module, "bn_forward")


def convert_sync_batchnorm(supernet: nn.Module) -> int:
    """Make every BatchNorm of ``supernet`` a :class:`~torch.nn.SyncBatchNorm`, in place.

    :meth:`torch.nn.SyncBatchNorm.convert_sync_batchnorm` replaces the layers (keeping their
    parameters and buffers, so optimizers built before or after see the same tensors); OFA's
    dynamic BatchNorm normalizes a narrower subnet through a slice of its layer's
    parameters, which is routed through that layer too.

    Returns:
        The number of layers converted.
    """
    converted = 0
    for name, child in list(supernet.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(
            child, nn.SyncBatchNorm
        ):
            setattr(supernet, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
            converted += 1
        else:
            converted += convert_sync_batchnorm(child)
    if _is_dynamic_batchnorm(supernet):
        supernet.bn_forward = _synced_bn_forward
    return converted


def revert_sync_batchnorm(supernet: nn.Module) -> int:
    """Turn every :class:`~torch.nn.SyncBatchNorm` of ``supernet`` back into a
    :class:`~torch.nn.BatchNorm2d` sharing its parameters and buffers, in place (what
    extraction, validation and the saved supernet expect).

    Returns:
        The number of layers reverted.
    """
    reverted = 0
    for name, child in list(supernet.named_children()):
        if isinstance(child, nn.SyncBatchNorm):
            plain = nn.BatchNorm2d(
                child.num_features,
                eps=child.eps,
                momentum=child.momentum,
                affine=child.affine,
                track_running_stats=child.track_running_stats,
                device="meta",
            )
            if child.affine:
                plain.weight, plain.bias = child.weight, child.bias
            plain.running_mean = child.running_mean
            plain.running_var = child.running_var
            plain.num_batches_tracked = child.num_batches_tracked
            plain.train(child.training)
            setattr(supernet, name, plain)
            reverted += 1
        else:
            reverted += revert_sync_batchnorm(child)
    if _is_dynamic_batchnorm(supernet) and "bn_forward" in vars(supernet):
        del supernet.bn_forward
    return reverted


@contextlib.contextmanager
def plain_batchnorm(supernet: nn.Module, synced: bool) -> Iterator[None]:
    """Plain BatchNorm layers inside the block (rank 0's validation: extraction copies
    plain layers, and a synchronized layer would wait for the other ranks)."""
    if not synced:
        yield
        return
    revert_sync_batchnorm(supernet)
    try:
        yield
    finally:
        convert_sync_batchnorm(supernet)
