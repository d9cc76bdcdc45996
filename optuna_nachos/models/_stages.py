"""Cutting a user's model (torchvision, timm, or any chain of modules) into backbone stages."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

HEAD_NAMES = ("avgpool", "global_pool", "head", "fc", "classifier")
"""Names of the first module of a classifier head, as torchvision and timm call them."""


def _first_parametrized_leaf(module: nn.Module) -> nn.Module | None:
    for leaf in module.modules():
        if not list(leaf.children()) and any(True for _ in leaf.parameters(recurse=False)):
            return leaf
    return None


class ChainHead(nn.Module):
    """A classifier head made of modules applied in order.

    Features are flattened to ``(N, features)`` before a module whose first layer with
    parameters is a linear layer (torchvision's models flatten in ``forward``, not in a
    module).

    Args:
        modules: The head's modules, in order, with their names.
    """

    def __init__(self, modules: Sequence[tuple[str, nn.Module]]) -> None:
        super().__init__()
        self.names = tuple(name for name, _ in modules)
        self.layers = nn.ModuleList(module for _, module in modules)
        self._flatten_before = tuple(
            isinstance(_first_parametrized_leaf(module), nn.Linear) for _, module in modules
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer, flatten in zip(self.layers, self._flatten_before):
            if flatten and x.dim() > 2:
                x = torch.flatten(x, 1)
            x = layer(x)
        return x


@dataclass(frozen=True)
class BackboneStages:
    """A backbone cut into stages, ready for early exits.

    Attributes:
        segments: The stages, applied in order; an early exit may follow any but the last.
        final_head: The backbone's own classifier, applied after the last stage.
        input_shape: ``(channels, height, width)`` of one input sample, used to size the
            exit heads and to count MACs.
        names: A readable name per stage (the name of its last module in the model).
    """

    segments: tuple[nn.Module, ...]
    final_head: nn.Module
    input_shape: tuple[int, int, int]
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        segments = tuple(self.segments)
        if len(segments) < 2:
            raise ValueError(
                f"a backbone needs at least two stages for an early exit, got {len(segments)}."
            )
        shape = tuple(self.input_shape)
        if len(shape) != 3 or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape
        ):
            raise ValueError(
                f"input_shape must be (channels, height, width) of one sample, got "
                f"{self.input_shape!r}."
            )
        names = (
            tuple(self.names)
            if self.names
            else tuple(f"stage{i + 1}" for i in range(len(segments)))
        )
        if len(names) != len(segments):
            raise ValueError(
                f"names needs one entry per stage ({len(segments)}), got {len(names)}."
            )
        object.__setattr__(self, "segments", segments)
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "names", names)

    @property
    def num_stages(self) -> int:
        """Number of stages."""
        return len(self.segments)

    @torch.no_grad()
    def feature_shapes(self) -> list[tuple[int, ...]]:
        """Shape of one sample's features after each stage (eval mode, batch 1)."""
        modules = [*self.segments, self.final_head]
        flags = [(m, m.training) for m in modules]
        for module, _ in flags:
            module.eval()
        try:
            x = _example(self.segments[0], self.input_shape)
            shapes = []
            for segment in self.segments:
                x = segment(x)
                shapes.append(tuple(x.shape[1:]))
        finally:
            for module, flag in flags:
                module.train(flag)
        return shapes


def _example(module: nn.Module, input_shape: Sequence[int]) -> torch.Tensor:
    reference = next(iter(module.parameters()), None)
    if reference is None:
        return torch.zeros(1, *input_shape)
    return torch.zeros(1, *input_shape, dtype=reference.dtype, device=reference.device)


def _children(module: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    return [(f"{prefix}{name}", child) for name, child in module.named_children()]


def _spatial(x: torch.Tensor) -> tuple[int, ...]:
    return tuple(x.shape[2:]) if x.dim() > 2 else ()


@torch.no_grad()
def _resolution_changes(units: Sequence[tuple[str, nn.Module]], x: torch.Tensor) -> int:
    changes = 0
    for _, unit in units:
        before = _spatial(x)
        x = unit(x)
        changes += _spatial(x) != before
    return changes


@torch.no_grad()
def _expand(
    body: list[tuple[str, nn.Module]], example: torch.Tensor, cut_after: Sequence[str] | None
) -> list[tuple[str, nn.Module]]:
    """Open containers: those holding a requested cut, or (automatic cuts) holding more than
    one change of resolution, so that every cut falls between units."""
    units: list[tuple[str, nn.Module]] = []
    x = example
    for name, module in body:
        children = _children(module, f"{name}.")
        if cut_after is not None:
            opened = isinstance(module, nn.Sequential) and any(
                c.startswith(f"{name}.") for c in cut_after
            )
        else:
            opened = isinstance(module, nn.Sequential) and _resolution_changes(children, x) > 1
        if opened and children:
            units.extend(_expand(children, x, cut_after))
        else:
            units.append((name, module))
        x = module(x)
    return units


def _timm_cuts(model: nn.Module, min_reduction: int) -> list[str] | None:
    info = getattr(model, "feature_info", None)
    if info is None:
        return None
    entries = info.get_dicts() if hasattr(info, "get_dicts") else list(info)
    try:
        names = [(entry["module"], int(entry["reduction"])) for entry in entries]
    except (KeyError, TypeError):
        return None
    return [name for name, reduction in names[:-1] if reduction >= min_reduction]


@torch.no_grad()
def _reproduces(
    model: nn.Module,
    segments: Sequence[nn.Module],
    final_head: nn.Module,
    shape: tuple[int, ...],
    example: torch.Tensor,
) -> bool:
    probe = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0)).to(example)
    expected = model(probe)
    try:
        x = probe
        for segment in segments:
            x = segment(x)
        got = final_head(x)
    except RuntimeError:  # shapes that do not fit: something happens outside the chain
        return False
    return (
        isinstance(expected, torch.Tensor)
        and expected.shape == got.shape
        and torch.allclose(expected, got, rtol=1e-4, atol=1e-5)
    )


def cut_stages(
    model: nn.Module,
    *,
    input_shape: Sequence[int],
    cut_after: Sequence[str] | None = None,
    head_start: str | None = None,
    min_reduction: int = 4,
    check: bool = True,
) -> BackboneStages:
    """Cut a classification model into stages for early exits.

    The model's forward must be a chain: its top-level children, in registration order, are
    applied one after the other (torchvision's ResNet, MobileNetV2/V3, EfficientNet, RegNet,
    timm's ResNet, EfficientNet, MobileNetV3 and most convolutional timm models). The
    children from ``head_start`` on form the final head; the others are the body, cut after
    the modules named in ``cut_after``. By default the cuts follow the model's own stages:
    timm's ``feature_info`` (each feature level but the last, from ``min_reduction`` on), or,
    for other models, the last module of each input resolution (downsampling by
    ``min_reduction`` or more), so that ResNet-18 is cut after ``layer1``, ``layer2`` and
    ``layer3``. The stages share their modules (and weights) with ``model``.

    Args:
        model: The model, e.g. ``torchvision.models.resnet18(num_classes=10)`` or
            ``timm.create_model("resnet18", num_classes=10)``.
        input_shape: ``(channels, height, width)`` of one input sample.
        cut_after: Names of the modules (as in ``model.named_modules()``) after which a stage
            ends, e.g. ``["layer1", "layer2", "layer3"]`` or ``["features.3", "features.8"]``.
        head_start: Name of the first top-level child of the classifier head; by default the
            first of ``avgpool``, ``global_pool``, ``head``, ``fc``, ``classifier``.
        min_reduction: Smallest downsampling factor after which an automatic cut may fall.
        check: Check on a random input, in eval mode, that the stages and the head give the
            model's own output.

    Returns:
        The stages, the final head and the input shape.

    Raises:
        ValueError: If no head or cut is found, a cut name is unknown, or the stages do not
            reproduce the model's output (its forward is not a chain of its children); the
            message says what to pass instead.
    """
    shape = tuple(input_shape)
    children = list(model.named_children())
    names = [name for name, _ in children]
    if head_start is None:
        head_start = next((name for name in names if name in HEAD_NAMES), None)
        if head_start is None:
            raise ValueError(
                f"cannot find the classifier head among the children {names}; pass "
                "head_start='<name of its first module>'."
            )
    if head_start not in names:
        raise ValueError(
            f"head_start={head_start!r} is not a child of the model; children: {names}."
        )
    split = names.index(head_start)
    body, head = children[:split], children[split:]
    if not body:
        raise ValueError(f"the model has no backbone before its head {head_start!r}.")
    if cut_after is None:
        cut_after = _timm_cuts(model, min_reduction)
    was_training = model.training
    model.eval()
    try:
        example = _example(model, shape)
        units = _expand(body, example, cut_after)
        unit_names = [name for name, _ in units]
        if cut_after is None:
            cuts = []
            x = example
            reductions = []
            for _, unit in units:
                x = unit(x)
                reductions.append(_spatial(x))
            full = _spatial(example)
            for index in range(len(units) - 1):
                here, after = reductions[index], reductions[index + 1]
                factor = full[0] // here[0] if here and full else 1
                if here != after and factor >= min_reduction:
                    cuts.append(index)
        else:
            unknown = [c for c in cut_after if c not in unit_names]
            if unknown:
                raise ValueError(
                    f"cut_after names {unknown} are not modules of the model's backbone chain; "
                    f"available: {unit_names}."
                )
            cuts = sorted(unit_names.index(c) for c in dict.fromkeys(cut_after))
            cuts = [c for c in cuts if c < len(units) - 1]
        if not cuts:
            raise ValueError(
                "no place to cut the backbone was found; pass cut_after=[...] with module names "
                f"among {unit_names}."
            )
        segments: list[nn.Module] = []
        stage_names: list[str] = []
        start = 0
        for end in [*cuts, len(units) - 1]:
            part = units[start : end + 1]
            segments.append(
                nn.Sequential(OrderedDict((name.replace(".", "_"), m) for name, m in part))
            )
            stage_names.append(part[-1][0])
            start = end + 1
        final_head = ChainHead(head)
        stages = BackboneStages(tuple(segments), final_head, shape, tuple(stage_names))
        if check and not _reproduces(model, segments, final_head, shape, example):
            raise ValueError(
                f"the stages of {type(model).__name__} do not reproduce its output: its "
                "forward is not a chain of its children. Build BackboneStages(segments, "
                "final_head, input_shape, names) yourself, or pass head_start / cut_after."
            )
    finally:
        model.train(was_training)
    return stages
