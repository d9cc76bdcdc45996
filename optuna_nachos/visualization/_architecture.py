"""A schematic of one early-exit network: stages, layers, exits and their costs."""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go
from optuna.trial import FrozenTrial

from optuna_nachos.config import NUM_STAGES, EENNConfig
from optuna_nachos.cost import cost_profile
from optuna_nachos.models import STAGES
from optuna_nachos.visualization._common import COLORS, format_macs, require_record, trial_config

_LAYER_WIDTH = 1.0
_LAYER_GAP = 0.15
_PAD = 0.2
_MIN_STAGE_WIDTH = 2.5
_BLOCK_GAP = 0.7
_FIXED_WIDTH = 1.8
_EXIT_TOP, _EXIT_BOTTOM = -1.9, -3.6
_ACTIVATIONS = {"relu": "ReLU", "hswish": "h-swish"}


@dataclass(frozen=True)
class _Box:
    x0: float
    x1: float

    @property
    def center(self) -> float:
        return (self.x0 + self.x1) / 2


def _network(
    source: EENNConfig | FrozenTrial, num_classes: int | None, in_channels: int | None
) -> tuple[EENNConfig, list[int], list[float] | None, str]:
    if isinstance(source, FrozenTrial):
        record = require_record(source, ["config"], figure="plot_architecture")
        config = trial_config(record)
        if config is None:
            raise ValueError(
                f"trial {source.number}: its user attribute 'config' is not a valid EENN "
                "configuration."
            )
        ratios = None if record.exit_ratios is None else list(record.exit_ratios)
        title = f"Architecture of trial {source.number}"
        if record.exit_macs is not None:
            return config, [int(m) for m in record.exit_macs], ratios, title
    elif isinstance(source, EENNConfig):
        config, ratios, title = source, None, "EENN architecture"
    else:
        raise TypeError(
            f"plot_architecture takes an EENNConfig or a FrozenTrial, got {type(source).__name__}."
        )
    if num_classes is None:
        raise ValueError(
            "plot_architecture needs num_classes (and in_channels, 3 by default) to count the "
            "MACs of a configuration; pass them, or pass a trial trained by NachosObjective "
            "(its user attribute 'exit_macs')."
        )
    profile = cost_profile(
        config, num_classes=num_classes, in_channels=3 if in_channels is None else in_channels
    )
    return config, [int(m) for m in profile.exit_macs], ratios, title


def _rect(fig: go.Figure, box: _Box, y0: float, y1: float, *, fill: str, line: str) -> None:
    fig.add_shape(
        type="rect",
        x0=box.x0,
        x1=box.x1,
        y0=y0,
        y1=y1,
        fillcolor=fill,
        line={"color": line, "width": 1.5},
        layer="below",
    )


def _text(fig: go.Figure, x: float, y: float, text: str, *, size: int = 12) -> None:
    fig.add_annotation(x=x, y=y, text=text, showarrow=False, font={"size": size})


def _arrow(fig: go.Figure, x0: float, y0: float, x1: float, y1: float) -> None:
    fig.add_annotation(
        x=x1,
        y=y1,
        ax=x0,
        ay=y0,
        xref="x",
        yref="y",
        axref="x",
        ayref="y",
        text="",
        showarrow=True,
        arrowhead=2,
        arrowsize=1.2,
        arrowwidth=1.5,
        arrowcolor="#555555",
    )


def plot_architecture(
    config_or_trial: EENNConfig | FrozenTrial,
    *,
    num_classes: int | None = None,
    in_channels: int | None = None,
) -> go.Figure:
    """A schematic of one early-exit network.

    From left to right: the fixed stem, the five searchable stages (each a box of its layers,
    labelled with the layer's depthwise kernel ``k`` and expand ratio ``e``, above it the
    stage's output channels, stride and activation), and the final head. Below, one box per
    exit, hanging from the stage it follows: the MACs a sample pays when it leaves there and,
    for a trained trial, the fraction of test samples that do. The invisible trace ``exits``
    holds the exit MACs in its ``customdata`` (one point per exit, final exit last); the trace
    ``layers`` gives every layer's settings on hover.

    Args:
        config_or_trial: A configuration, or a trial of :class:`~optuna_nachos.NachosObjective`
            (user attributes ``config``, ``exit_macs`` and, when trained, ``exit_ratios``).
        num_classes: Number of classes, needed to count the MACs of a configuration (and of
            a trial without ``exit_macs``).
        in_channels: Input channels for the MAC count (3 when ``None``).

    Returns:
        The figure.

    Raises:
        TypeError: If the argument is neither a configuration nor a trial.
        ValueError: If the MACs cannot be known (a configuration without ``num_classes``) or
            the trial lacks its ``config`` user attribute.
    """
    config, costs, ratios, title = _network(config_or_trial, num_classes, in_channels)
    if len(costs) != config.num_exits:
        raise ValueError(
            f"got {len(costs)} exit costs for a configuration with {config.num_exits} exits."
        )
    if ratios is not None and len(ratios) != config.num_exits:
        ratios = None
    fig = go.Figure()
    layer_x, layer_y, layer_hover = [], [], []
    x = 0.0
    stem = _Box(x, x + _FIXED_WIDTH)
    _rect(fig, stem, -0.85, 0.85, fill="#eeeeee", line="#777777")
    _text(
        fig,
        stem.center,
        0,
        f"<b>stem</b><br>input {config.resolution}×{config.resolution}<br>conv 3×3 s2<br>16 ch",
        size=11,
    )
    previous = stem
    stage_boxes = []
    for index, spec in enumerate(STAGES):
        stage = index + 1
        depth = config.depths[index]
        inner = depth * _LAYER_WIDTH + (depth - 1) * _LAYER_GAP + 2 * _PAD
        width = max(inner, _MIN_STAGE_WIDTH)
        box = _Box(previous.x1 + _BLOCK_GAP, previous.x1 + _BLOCK_GAP + width)
        _arrow(fig, previous.x1, 0, box.x0, 0)
        _rect(fig, box, -0.85, 0.85, fill="rgba(31, 119, 180, 0.06)", line="#1f77b4")
        se = ", SE" if spec.use_se else ""
        _text(
            fig,
            box.center,
            1.55,
            f"<b>stage {stage}</b> (depth {depth})<br>{spec.out_channels} ch, stride "
            f"{spec.stride}<br>{_ACTIVATIONS.get(spec.activation, spec.activation)}{se}",
            size=11,
        )
        start = box.center - (inner - 2 * _PAD) / 2
        for layer in range(depth):
            kernel = config.kernel_sizes[index][layer]
            expand = config.expand_ratios[index][layer]
            x0 = start + layer * (_LAYER_WIDTH + _LAYER_GAP)
            cell = _Box(x0, x0 + _LAYER_WIDTH)
            _rect(fig, cell, -0.6, 0.6, fill="#c6dbef", line="#3182bd")
            _text(fig, cell.center, 0, f"k{kernel}<br>e{expand}", size=11)
            layer_x.append(cell.center)
            layer_y.append(0.0)
            layer_hover.append(
                f"<b>stage {stage}, layer {layer + 1}</b><br>MBConv, depthwise {kernel}×{kernel}"
                f"<br>expand ratio {expand}<br>{spec.out_channels} output channels"
                f"<br>stride {spec.stride if layer == 0 else 1}"
            )
        stage_boxes.append(box)
        previous = box
    head = _Box(previous.x1 + _BLOCK_GAP, previous.x1 + _BLOCK_GAP + _FIXED_WIDTH)
    _arrow(fig, previous.x1, 0, head.x0, 0)
    _rect(fig, head, -0.85, 0.85, fill="#eeeeee", line="#777777")
    _text(fig, head.center, 0, "<b>head</b><br>conv 960<br>pool, 1280<br>linear", size=11)

    exit_x, exit_hover = [], []
    hosts = [stage_boxes[s - 1] for s in config.exit_stages] + [head]
    stages = [*config.exit_stages, NUM_STAGES]
    for j, (host, stage, cost) in enumerate(zip(hosts, stages, costs)):
        final = j == len(costs) - 1
        name = "final exit" if final else f"exit {j + 1}"
        where = "after the head" if final else f"after stage {stage}"
        share = "" if ratios is None else f"<br>{float(ratios[j]):.0%} leave"
        label = f"<b>{name}</b><br>{where}<br>{format_macs(cost)} MACs{share}"
        box = _Box(host.center - 1.15, host.center + 1.15)
        color = COLORS["chosen"] if not final else COLORS["admissible"]
        _arrow(fig, host.center, -0.85, host.center, _EXIT_TOP)
        _rect(fig, box, _EXIT_BOTTOM, _EXIT_TOP, fill="#fff5eb", line=color)
        _text(fig, box.center, (_EXIT_TOP + _EXIT_BOTTOM) / 2, label, size=11)
        exit_x.append(box.center)
        exit_hover.append(
            f"<b>{name}</b> ({where})<br>a sample leaving here costs {cost:,} MACs"
            + ("" if ratios is None else f"<br>{float(ratios[j]):.1%} of the test samples")
        )
    fig.add_trace(
        go.Scatter(
            x=layer_x,
            y=layer_y,
            mode="markers",
            marker={"size": 28, "opacity": 0},
            text=layer_hover,
            hovertemplate="%{text}<extra></extra>",
            name="layers",
            showlegend=False,
        )
    )
    fig.add_trace(
        go.Scatter(
            x=exit_x,
            y=[(_EXIT_TOP + _EXIT_BOTTOM) / 2] * len(exit_x),
            mode="markers",
            marker={"size": 36, "opacity": 0},
            customdata=costs,
            text=exit_hover,
            hovertemplate="%{text}<extra></extra>",
            name="exits",
            showlegend=False,
        )
    )
    subtitle = f"{config.short_name()} · exit head {config.exit_head!r}"
    fig.update_layout(
        title={"text": f"{title}<br><sup>{subtitle}</sup>", "x": 0.02, "xanchor": "left"},
        template="plotly_white",
        xaxis={"visible": False, "range": [-0.3, head.center + 1.45]},
        yaxis={"visible": False, "range": [_EXIT_BOTTOM - 0.3, 2.4]},
        margin={"l": 20, "r": 20, "t": 80, "b": 20},
        height=460,
    )
    return fig
