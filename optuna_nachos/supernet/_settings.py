"""Settings of supernet training (frozen, validated)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from optuna_nachos._validate import check_integers, coerce_non_negative_floats
from optuna_nachos.models import list_exit_heads

WEIGHTS_DTYPES: tuple[str, ...] = ("float32", "float16")
"""Precisions in which a finished supernet's weights may be written."""


@dataclass(frozen=True, kw_only=True)
class SupernetSettings:
    """How a weight-sharing supernet of the MobileNetV3 space is trained.

    Every step follows the sandwich rule (BigNAS): the largest subnet learns from the labels
    (with label smoothing), the smallest and ``random_subnets`` random subnets learn from the
    largest's soft labels (in-place distillation), and the gradients of all of them are summed
    before one SGD step. The exit heads of every exit position learn jointly, on the detached
    stage features of every subnet of the step, so they never pull the shared backbone
    weights; they have an optimizer of their own (Adam at ``head_lr``), because sharing the
    backbone's SGD learning rate kills them (measured: exit 1 at chance).

    The defaults are the CPU recipe measured on 2 cores (Fashion-MNIST at 28x28): batch 512,
    which halves the cost per image against batch 128, one random subnet per step, a linear
    warm-up over the first epoch before the cosine decay, gradient clipping, zero-initialized
    last BatchNorm gamma in residual blocks, label smoothing 0.1.

    Args:
        epochs: Passes over the training split.
        batch_size: Images per step (every subnet of the step sees the same batch). Under
            ``torchrun`` this is the global batch: each of the N processes takes
            ``batch_size / N`` images of it (a multiple of N is needed), so a run on N
            processes follows the same schedule as on one.
        lr: Peak SGD learning rate of the backbone, reached after the warm-up, then cosine
            decay to 0 (stepped per batch); the learning rate of the global batch. Scale it
            with ``batch_size``.
        momentum: SGD momentum (Nesterov).
        weight_decay: SGD weight decay, applied to convolution and linear weights only.
        warmup_epochs: Epochs (a fraction is allowed) of linear learning-rate warm-up from 0,
            for the backbone and the heads; ``0`` starts at the peak.
        grad_clip: Maximum gradient norm, applied to the backbone's and the heads' gradients
            apart; ``0`` does not clip.
        label_smoothing: Label smoothing of the largest subnet's cross-entropy.
        zero_init_residual: Start the last BatchNorm gamma of every residual block at 0, so
            that every block starts as the identity (applies to a new supernet only, not to
            imported weights).
        random_subnets: Random subnets per step, besides the largest and the smallest.
        distillation: Train the smaller subnets on the largest's soft labels (``True``) or on
            the labels (``False``).
        head_lr: Peak learning rate of the exit heads' own Adam optimizer. The heads then
            start learning when the warm-up ends, every head on the features of the step's
            last subnet (a random one). ``None`` trains them from the first step with the
            backbone's SGD and learning rate, one random pool size per position on every
            subnet (the first recipe, kept for comparison: it kills the heads in short
            schedules).
        head_confidence_weight: Weight of the heads' confidence term (binary cross-entropy
            against "this head is right") beside their cross-entropy. ``0`` (measured: the
            term slows the class logits of heads on 1x1 pooled features, which then stay
            near chance) leaves the confidences to each candidate's exit phase.
        head_batch_fraction: Share of each batch the heads learn on (the first images), to
            bound their cost: every head of every pool size learns each step.
        exit_heads: Exit head designs (registered names) the supernet holds for every exit
            position; a candidate with another design gets freshly initialized heads.
        recalibration_batches: Training batches used to recompute BatchNorm statistics of
            an extracted subnet (the default of :meth:`Supernet.extract`).
        keep_checkpoint: Keep the training state (``checkpoint.pt``, about four times the
            weights) once training has finished; it is only needed to train further.
        weights_dtype: ``"float32"`` or ``"float16"``: the precision of the final
            ``supernet.pt`` (half precision halves the file; the weights are read back into
            ``float32``).
        amp: Mixed precision (bfloat16 autocast) on CUDA; ignored on the CPU.
        sync_batchnorm: Under ``torchrun``, normalize over the global batch
            (:class:`torch.nn.SyncBatchNorm`, CUDA only) instead of each process's share of
            it (the default, as DDP does: cheaper, and the same as one process when each
            share is large; an extracted candidate recalibrates its statistics anyway).
            Ignored in a single process.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ...
        seed: Seed of the initial weights, the subnet sampling, the shuffling and the
            augmentation; the same seed gives the same supernet on the CPU.
        progress: Show a progress bar; ``None`` shows it on an interactive terminal only.

    Raises:
        ValueError: If a setting is out of range; the message names it.
    """

    epochs: int = 3
    batch_size: int = 512
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 3e-5
    warmup_epochs: float = 1.0
    grad_clip: float = 1.0
    label_smoothing: float = 0.1
    zero_init_residual: bool = True
    random_subnets: int = 1
    distillation: bool = True
    head_lr: float | None = 1e-2
    head_confidence_weight: float = 0.0
    head_batch_fraction: float = 0.5
    exit_heads: tuple[str, ...] = ("nachos",)
    recalibration_batches: int = 20
    keep_checkpoint: bool = False
    weights_dtype: str = "float32"
    amp: bool = True
    sync_batchnorm: bool = False
    device: str = "auto"
    seed: int = 0
    progress: bool | None = None

    def __post_init__(self) -> None:
        check_integers(self, ("epochs", "batch_size", "recalibration_batches"), minimum=1)
        check_integers(self, ("random_subnets", "seed"), minimum=0)
        coerce_non_negative_floats(
            self,
            (
                "lr",
                "momentum",
                "weight_decay",
                "warmup_epochs",
                "grad_clip",
                "label_smoothing",
                "head_confidence_weight",
                "head_batch_fraction",
            ),
        )
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}.")
        if self.head_lr is not None:
            coerce_non_negative_floats(self, ("head_lr",))
            if self.head_lr <= 0:
                raise ValueError(f"head_lr must be > 0 (or None), got {self.head_lr!r}.")
        if not 0 < self.head_batch_fraction <= 1:
            raise ValueError(
                f"head_batch_fraction must lie in (0, 1], got {self.head_batch_fraction!r}."
            )
        if self.label_smoothing >= 1:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {self.label_smoothing!r}.")
        if self.warmup_epochs > self.epochs:
            raise ValueError(
                f"warmup_epochs ({self.warmup_epochs}) must not exceed epochs ({self.epochs})."
            )
        if self.weights_dtype not in WEIGHTS_DTYPES:
            raise ValueError(
                f"weights_dtype must be one of {WEIGHTS_DTYPES}, got {self.weights_dtype!r}."
            )
        if self.momentum >= 1:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum!r}.")
        for name in (
            "distillation",
            "amp",
            "zero_init_residual",
            "keep_checkpoint",
            "sync_batchnorm",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}.")
        if self.progress is not None and not isinstance(self.progress, bool):
            raise ValueError(f"progress must be a bool or None, got {self.progress!r}.")
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(
                f"device must be 'auto' or a torch device string, got {self.device!r}."
            )
        heads = self.exit_heads
        if isinstance(heads, str) or not heads:
            raise ValueError(f"exit_heads must be a non-empty tuple of names, got {heads!r}.")
        known = list_exit_heads()
        unknown = [h for h in heads if h not in known]
        if unknown:
            raise ValueError(f"unknown exit heads {unknown}; registered heads: {known}.")
        object.__setattr__(self, "exit_heads", tuple(dict.fromkeys(heads)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values of the settings."""
        data = asdict(self)
        data["exit_heads"] = list(self.exit_heads)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SupernetSettings:
        """Rebuild settings from :meth:`to_dict` output; missing keys take their defaults.

        Raises:
            ValueError: On unknown keys or invalid values.
        """
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"unknown SupernetSettings keys {sorted(unknown)}; known: {sorted(known)}."
            )
        values = dict(data)
        if "exit_heads" in values:
            values["exit_heads"] = tuple(values["exit_heads"])
        return cls(**values)
