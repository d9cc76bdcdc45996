"""The early-exit network: a backbone cut into segments, exit heads, and a final head."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
from torch import nn

from optuna_nachos.config import EENNConfig
from optuna_nachos.models._exit_rule import as_threshold_tensor, select_exits


class EENNOutput(NamedTuple):
    """Output of the all-exits forward pass.

    Attributes:
        logits: Class logits of every exit, shallowest first, each of shape ``(N, classes)``.
        confidences: Exit confidences ``b_j`` of shape ``(N, exits)``; the final column is 1.
    """

    logits: tuple[torch.Tensor, ...]
    confidences: torch.Tensor


class EarlyExitPrediction(NamedTuple):
    """Result of :meth:`EarlyExitNetwork.predict`.

    Attributes:
        predictions: Predicted class of every sample, shape ``(N,)``.
        exit_indices: Index of the exit each sample left at (``0`` is the first early exit,
            ``num_exits - 1`` the final one), shape ``(N,)``.
    """

    predictions: torch.Tensor
    exit_indices: torch.Tensor


class EarlyExitNetwork(nn.Module):
    """A backbone cut into segments with early-exit heads after some of them.

    Args:
        segments: Backbone pieces, applied in order.
        exit_heads: Maps the index of a segment (not the last) to the exit head that reads its
            output. A head returns ``num_classes + 1`` values: logits and a confidence logit.
        final_head: Classifier applied to the output of the last segment.
        num_classes: Number of classes.
        config: The configuration the network was built from, if any.
        exit_pools: Max-pool size in front of each early-exit head, for the record.
        input_shape: ``(channels, height, width)`` of one input sample, when known; lets
            :func:`~optuna_nachos.exit_macs` count the network without being told.
        exit_head_names: Registered design of each early-exit head, for the record.
    """

    def __init__(
        self,
        segments: Sequence[nn.Module],
        exit_heads: Mapping[int, nn.Module],
        final_head: nn.Module,
        *,
        num_classes: int,
        config: EENNConfig | None = None,
        exit_pools: Sequence[int] | None = None,
        input_shape: Sequence[int] | None = None,
        exit_head_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if not segments:
            raise ValueError("an early-exit network needs at least one backbone segment.")
        for position in exit_heads:
            if not 0 <= position < len(segments) - 1:
                raise ValueError(
                    f"an early exit can follow segments 0..{len(segments) - 2}, got {position}."
                )
        self.segments = nn.ModuleList(segments)
        self.exit_positions: tuple[int, ...] = tuple(sorted(exit_heads))
        self.exit_heads = nn.ModuleList(exit_heads[p] for p in self.exit_positions)
        self.final_head = final_head
        self.num_classes = num_classes
        self.config = config
        self.exit_pools = tuple(exit_pools) if exit_pools is not None else None
        self.input_shape = tuple(int(s) for s in input_shape) if input_shape is not None else None
        self.exit_head_names = tuple(exit_head_names) if exit_head_names is not None else None

    @property
    def num_exits(self) -> int:
        """Number of exits, the final one included."""
        return len(self.exit_positions) + 1

    def backbone_modules(self) -> list[nn.Module]:
        """The modules of the single-exit network: segments and final head."""
        return [self.segments, self.final_head]

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Parameters of the backbone and the final head."""
        return [p for module in self.backbone_modules() for p in module.parameters()]

    def exit_head_parameters(self) -> list[nn.Parameter]:
        """Parameters of the early-exit heads."""
        return list(self.exit_heads.parameters())

    def forward_backbone(self, x: torch.Tensor) -> torch.Tensor:
        """Final-exit logits only, skipping the early-exit heads (the single-exit network)."""
        for segment in self.segments:
            x = segment(x)
        return self.final_head(x)

    def forward(self, x: torch.Tensor, *, backbone_grad: bool = True) -> EENNOutput:
        """Run every exit on every sample (training and static evaluation).

        Args:
            x: Input batch of shape ``(N, C, H, W)``.
            backbone_grad: ``False`` runs the segments and the final head without autograd,
                so that only the early-exit heads build a graph (training exits on a frozen
                backbone). The values are the same.
        """
        logits: list[torch.Tensor] = []
        confidences: list[torch.Tensor] = []
        heads = dict(zip(self.exit_positions, self.exit_heads))
        for index, segment in enumerate(self.segments):
            with torch.set_grad_enabled(backbone_grad and torch.is_grad_enabled()):
                x = segment(x)
            head = heads.get(index)
            if head is not None:
                out = head(x)
                logits.append(out[:, :-1])
                confidences.append(torch.sigmoid(out[:, -1]))
        with torch.set_grad_enabled(backbone_grad and torch.is_grad_enabled()):
            final = self.final_head(x)
        logits.append(final)
        confidences.append(torch.ones(final.shape[0], dtype=final.dtype, device=final.device))
        return EENNOutput(tuple(logits), torch.stack(confidences, dim=1))

    def _resolve_thresholds(
        self, thresholds: Sequence[float] | torch.Tensor | None
    ) -> torch.Tensor:
        if thresholds is None:
            if self.config is None or self.config.exit_thresholds is None:
                raise ValueError(
                    "predict needs thresholds (one per early exit): pass them, or build the "
                    "network from a configuration that carries exit_thresholds."
                )
            thresholds = self.config.exit_thresholds
        return as_threshold_tensor(thresholds, self.num_exits - 1)

    @torch.no_grad()
    def predict(
        self, x: torch.Tensor, thresholds: Sequence[float] | torch.Tensor | None = None
    ) -> EarlyExitPrediction:
        """Early-exit inference: samples leave at the first exit confident enough.

        A sample leaves at early exit ``j`` when ``1 - prod_{k<=j}(1 - b_k) >= thresholds[j]``
        (a threshold of 1 or more disables that exit); samples that leave are dropped from the
        batch, so deeper segments run on the remaining ones only. The predictions equal those
        of :func:`~optuna_nachos.models.select_exits` on the all-exits forward.

        Args:
            x: Input batch of shape ``(N, C, H, W)``.
            thresholds: One threshold per early exit; defaults to the configuration's
                ``exit_thresholds``.

        Returns:
            The predicted classes and the exit index of every sample.
        """
        eps = self._resolve_thresholds(thresholds).tolist()
        n = x.shape[0]
        predictions = torch.empty(n, dtype=torch.long, device=x.device)
        exit_indices = torch.full((n,), self.num_exits - 1, dtype=torch.long, device=x.device)
        remaining = torch.arange(n, device=x.device)
        passed = None  # prod (1 - b_k) over the exits seen so far, per remaining sample
        heads = dict(zip(self.exit_positions, self.exit_heads))
        exit_index = 0
        for index, segment in enumerate(self.segments):
            x = segment(x)
            head = heads.get(index)
            if head is None:
                continue
            out = head(x)
            survive = 1.0 - torch.sigmoid(out[:, -1])
            passed = survive if passed is None else passed * survive
            if eps[exit_index] < 1.0:
                leave = (1.0 - passed) >= eps[exit_index]
                if leave.any():
                    left = remaining[leave]
                    predictions[left] = out[leave, :-1].argmax(dim=1)
                    exit_indices[left] = exit_index
                    stay = ~leave
                    x, passed, remaining = x[stay], passed[stay], remaining[stay]
            exit_index += 1
            if remaining.numel() == 0:
                return EarlyExitPrediction(predictions, exit_indices)
        predictions[remaining] = self.final_head(x).argmax(dim=1)
        return EarlyExitPrediction(predictions, exit_indices)

    @torch.no_grad()
    def predict_static(
        self, x: torch.Tensor, thresholds: Sequence[float] | torch.Tensor | None = None
    ) -> EarlyExitPrediction:
        """Same decisions as :meth:`predict`, computed from the all-exits forward."""
        eps = self._resolve_thresholds(thresholds)
        output = self(x)
        exits = select_exits(output.confidences, eps)
        all_predictions = torch.stack([logits.argmax(dim=1) for logits in output.logits], dim=1)
        predictions = all_predictions.gather(1, exits[:, None]).squeeze(1)
        return EarlyExitPrediction(predictions, exits)
