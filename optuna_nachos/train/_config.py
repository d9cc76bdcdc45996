"""Training settings (NACHOS defaults, DESIGN 2.4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from optuna_nachos._validate import check_integers, coerce_non_negative_floats

SCHEDULERS = ("cosine", "constant")
"""Learning-rate schedules :class:`TrainConfig` accepts (both stepped once per epoch)."""

CLS_WEIGHTINGS = ("exit_probability", "weighted_logits", "uniform")
"""How ``L_cls`` weights the exits (see :func:`~optuna_nachos.train.classification_loss`)."""


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Settings of the two-phase NACHOS training of one early-exit network.

    Defaults reproduce the reference: 10 backbone epochs, then 5 warm-up epochs of the exits
    and 5 more with the support-set term, SGD (lr 0.01, momentum 0.9, weight decay 5e-5),
    batch 128, cosine decay stepped once per epoch, every loss weight 1.

    Args:
        backbone_epochs: Epochs of phase A: the single-exit network with cross-entropy.
        warmup_epochs: Epochs of phase B without the support term (``L_sup``).
        exit_epochs: Epochs of phase B with the support term, after the warm-up.
        batch_size: Training batch size.
        lr: Initial learning rate of each phase.
        momentum: SGD momentum.
        weight_decay: SGD weight decay (L2).
        scheduler: ``"cosine"`` (cosine decay to 0 over each phase, stepped per epoch) or
            ``"constant"``.
        w_alpha: Weight of the classification term ``L_cls``; 0 switches it off.
        beta: Weight of the confidence term ``L_conf``; 0 switches it off.
        w_beta: Weight of the MAC term ``L_macs``; 0 switches it off.
        w_gamma: Weight of the support term ``L_sup``; 0 switches it off.
        cls_weighting: How ``L_cls`` weights the exits: ``"exit_probability"`` (the NACHOS
            paper: each exit's cross-entropy weighted by the probability of leaving there),
            ``"weighted_logits"`` (the NACHOS reference code: the cross-entropy of the
            exit-probability-weighted sum of the logits) or ``"uniform"`` (the plain
            multi-exit loss of joint training, as SDN and EDANAS use). The default was kept by
            measurement: it gave the best admissible accuracy at the reference budget, while
            ``"uniform"`` trains the deeper exits much better (see the training guide).
        support_fraction: Share of the training data drawn (class-balanced) as the support set
            at every support epoch, in ``(0, 1)``.
        freeze_backbone: Phase B trains the exit heads only, the backbone frozen with its
            BatchNorm layers in eval mode. ``False`` fine-tunes the backbone jointly.
        device: ``"auto"`` (CUDA when available, else CPU) or a torch device string.
        seed: Seed of the training randomness: shuffling, support sets, augmentation.
        progress: Show a progress bar; ``None`` shows it only on an interactive terminal.
        num_workers: DataLoader worker processes (0 loads in the main process).

    Raises:
        ValueError: If a setting is out of range; the message names it.
    """

    backbone_epochs: int = 10
    warmup_epochs: int = 5
    exit_epochs: int = 5
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-5
    scheduler: str = "cosine"
    w_alpha: float = 1.0
    beta: float = 1.0
    w_beta: float = 1.0
    w_gamma: float = 1.0
    cls_weighting: str = "exit_probability"
    support_fraction: float = 0.1
    freeze_backbone: bool = True
    device: str = "auto"
    seed: int = 0
    progress: bool | None = None
    num_workers: int = 0

    def __post_init__(self) -> None:
        check_integers(
            self,
            ("backbone_epochs", "warmup_epochs", "exit_epochs", "num_workers", "seed"),
            minimum=0,
        )
        check_integers(self, ("batch_size",), minimum=1)
        coerce_non_negative_floats(
            self, ("lr", "momentum", "weight_decay", "w_alpha", "beta", "w_beta", "w_gamma")
        )
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}.")
        if self.momentum >= 1:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum!r}.")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}.")
        fraction = self.support_fraction
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, (int, float))
            or not 0 < fraction < 1
        ):
            raise ValueError(f"support_fraction must lie in (0, 1), got {fraction!r}.")
        object.__setattr__(self, "support_fraction", float(fraction))
        if self.cls_weighting not in CLS_WEIGHTINGS:
            raise ValueError(
                f"cls_weighting must be one of {CLS_WEIGHTINGS}, got {self.cls_weighting!r}."
            )
        if not isinstance(self.freeze_backbone, bool):
            raise ValueError(f"freeze_backbone must be a bool, got {self.freeze_backbone!r}.")
        if self.progress is not None and not isinstance(self.progress, bool):
            raise ValueError(f"progress must be a bool or None, got {self.progress!r}.")
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(
                f"device must be 'auto' or a torch device string, got {self.device!r}."
            )
        if self.w_alpha == 0 and self.beta == 0 and self.w_beta == 0 and self.w_gamma == 0:
            raise ValueError(
                "at least one loss weight (w_alpha, beta, w_beta, w_gamma) must be > 0."
            )

    @property
    def exit_phase_epochs(self) -> int:
        """Epochs of phase B (warm-up plus support epochs)."""
        return self.warmup_epochs + self.exit_epochs

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable dictionary of the settings."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Rebuild settings from :meth:`to_dict` output; missing keys take their defaults.

        Raises:
            ValueError: On unknown keys or invalid values.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"expected a mapping, got {type(data).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig keys {sorted(unknown)}; known: {sorted(known)}.")
        return cls(**dict(data))
