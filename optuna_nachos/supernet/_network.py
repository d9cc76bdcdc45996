"""The weight-sharing supernet: OFA's dynamic MobileNetV3 plus exit heads for every position."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from optuna_nachos.config import EXIT_STAGES, NUM_STAGES, ConfigError, EENNConfig
from optuna_nachos.models import STAGES, get_exit_head, init_weights

KERNEL_SIZES: tuple[int, ...] = (3, 5, 7)
"""Depthwise kernel sizes the supernet serves."""

EXPAND_RATIOS: tuple[int, ...] = (3, 4, 6)
"""Expand ratios the supernet serves."""

DEPTHS: tuple[int, ...] = (2, 3, 4)
"""Stage depths the supernet serves."""


def _import_ofa() -> type:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3
    except ImportError as error:  # pragma: no cover - ofa is a declared dependency
        raise ImportError(
            "the supernet needs the 'ofa' package (Once-for-All); install it with "
            "`pip install ofa`."
        ) from error
    return OFAMobileNetV3


def new_ofa_backbone(num_classes: int) -> nn.Module:
    """OFA's dynamic MobileNetV3 of the NACHOS space (width 1.0, k 3/5/7, e 3/4/6, d 2/3/4)."""
    ofa_mobilenetv3 = _import_ofa()
    return ofa_mobilenetv3(
        n_classes=num_classes,
        width_mult=1.0,
        dropout_rate=0.0,
        ks_list=list(KERNEL_SIZES),
        expand_ratio_list=list(EXPAND_RATIOS),
        depth_list=list(DEPTHS),
    )


def set_input_channels(backbone: nn.Module, in_channels: int) -> None:
    """Give an OFA MobileNetV3 a first convolution for ``in_channels`` input channels.

    The pretrained RGB filters are summed over their input channels when going to one
    channel (a grey image equals an RGB image with three equal channels); other changes
    start from fresh weights.
    """
    old = backbone.first_conv.conv
    if old.in_channels == in_channels:
        return
    new = nn.Conv2d(
        in_channels,
        old.out_channels,
        old.kernel_size,
        stride=old.stride,
        padding=old.padding,
        bias=False,
    )
    with torch.no_grad():
        if in_channels == 1:
            new.weight.copy_(old.weight.sum(dim=1, keepdim=True))
        else:
            nn.init.kaiming_normal_(new.weight, mode="fan_out")
    backbone.first_conv.conv = new


def config_choices(config: EENNConfig) -> tuple[list[int], list[int], list[int]]:
    """OFA's ``set_active_subnet`` arguments (kernel per layer, expand per layer, depths).

    Layers beyond a stage's depth are not run; they get the smallest choices.
    """
    kernels: list[int] = []
    expands: list[int] = []
    for stage in range(NUM_STAGES):
        depth = config.depths[stage]
        for layer in range(max(DEPTHS)):
            if layer < depth:
                kernels.append(config.kernel_sizes[stage][layer])
                expands.append(config.expand_ratios[stage][layer])
            else:
                kernels.append(min(KERNEL_SIZES))
                expands.append(min(EXPAND_RATIOS))
    return kernels, expands, list(config.depths)


def check_served(config: EENNConfig) -> None:
    """Raise :class:`~optuna_nachos.ConfigError` if the supernet cannot serve ``config``."""
    problems = []
    if any(d not in DEPTHS for d in config.depths):
        problems.append(f"depths {config.depths} (served: {DEPTHS})")
    kernels = {k for stage in config.kernel_sizes for k in stage}
    if not kernels <= set(KERNEL_SIZES):
        problems.append(f"kernel sizes {sorted(kernels)} (served: {KERNEL_SIZES})")
    expands = {e for stage in config.expand_ratios for e in stage}
    if not expands <= set(EXPAND_RATIOS):
        problems.append(f"expand ratios {sorted(expands)} (served: {EXPAND_RATIOS})")
    if problems:
        raise ConfigError(
            "the supernet does not hold this configuration: " + "; ".join(problems) + "."
        )


def uniform_config(depth: int, kernel: int, expand: int, *, resolution: int) -> EENNConfig:
    """The configuration with the same choices in every stage and every exit position."""
    return EENNConfig(
        depths=(depth,) * NUM_STAGES,
        kernel_sizes=((kernel,) * depth,) * NUM_STAGES,
        expand_ratios=((expand,) * depth,) * NUM_STAGES,
        exit_stages=EXIT_STAGES,
        resolution=resolution,
    )


def largest_config(*, resolution: int) -> EENNConfig:
    """The largest subnet: deepest stages, largest kernels and expand ratios, every exit."""
    return uniform_config(max(DEPTHS), max(KERNEL_SIZES), max(EXPAND_RATIOS), resolution=resolution)


def smallest_config(*, resolution: int) -> EENNConfig:
    """The smallest subnet: shallowest stages, smallest kernels and expand ratios, every exit."""
    return uniform_config(min(DEPTHS), min(KERNEL_SIZES), min(EXPAND_RATIOS), resolution=resolution)


def random_config(generator: torch.Generator, *, resolution: int) -> EENNConfig:
    """A configuration drawn uniformly, layer by layer, with ``generator``."""

    def pick(choices: Sequence[int]) -> int:
        return choices[int(torch.randint(len(choices), (1,), generator=generator))]

    depths = tuple(pick(DEPTHS) for _ in range(NUM_STAGES))
    return EENNConfig(
        depths=depths,
        kernel_sizes=tuple(tuple(pick(KERNEL_SIZES) for _ in range(d)) for d in depths),
        expand_ratios=tuple(tuple(pick(EXPAND_RATIOS) for _ in range(d)) for d in depths),
        exit_stages=EXIT_STAGES,
        resolution=resolution,
    )


def head_key(head: str, position: int, pool: int) -> str:
    """Key of an exit head in :attr:`Supernet.heads`."""
    return f"{head}-{position}-{pool}"


class Supernet(nn.Module):
    """A weight-sharing supernet of the MobileNetV3 space, with exit heads.

    The backbone is OFA's dynamic ``OFAMobileNetV3`` (elastic depth: the first ``d`` layers
    of a stage; elastic kernel: the centre of the 7x7 depthwise kernel through OFA's learned
    transformation matrices; elastic width: the first channels of the expanded layer). The
    exit heads are ordinary modules, one per exit position (after stages 1-4), head design
    and max-pool size: the cost-monotone rule of :func:`~optuna_nachos.build_eenn` puts a
    pool of 1, 2 or 4 in front of a head depending on the whole network, and the pool changes
    the head's input size, so the supernet holds one head per pool size that can occur and a
    candidate inherits the one its rule chose.

    Args:
        num_classes: Number of classes.
        in_channels: Channels of the input images.
        resolution: Side of the square input images.
        exit_heads: Exit head designs held for every exit position.
        backbone: An existing ``OFAMobileNetV3`` (e.g. with imported weights); a new one,
            initialized as torchvision initializes MobileNetV3, when ``None``.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int = 3,
        resolution: int = 32,
        exit_heads: Sequence[str] = ("nachos",),
        backbone: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if backbone is None:
            backbone = init_weights(new_ofa_backbone(num_classes))
        set_input_channels(backbone, in_channels)
        self.backbone = backbone
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.resolution = resolution
        self.exit_head_names = tuple(exit_heads)
        self.metadata: dict[str, object] = {}
        self.source: str | None = None
        self.weights_sha256: str | None = None
        self.stage_shapes = self._stage_shapes()
        self.heads = nn.ModuleDict()
        for name in self.exit_head_names:
            spec = get_exit_head(name)
            for position in range(len(EXIT_STAGES)):
                channels, height, width = self.stage_shapes[position]
                for pool in self.head_pools(name, position):
                    head = spec.factory(channels, (height, width), num_classes, pool=pool)
                    self.heads[head_key(name, position, pool)] = init_weights(head)

    def _stage_shapes(self) -> list[tuple[int, int, int]]:
        size = self.resolution
        shapes = []
        size = (size + 1) // 2  # the stem's stride-2 convolution
        for spec in STAGES:
            size = (size - 1) // spec.stride + 1
            shapes.append((spec.out_channels, size, size))
        return shapes

    def head_pools(self, head: str, position: int) -> tuple[int, ...]:
        """Pool sizes the cost rule may put in front of ``head`` at ``position``."""
        _, height, width = self.stage_shapes[position]
        usable = [p for p in get_exit_head(head).pool_sizes if p <= min(height, width)]
        return tuple(usable or [1])

    def set_active(self, config: EENNConfig) -> None:
        """Make ``config``'s backbone the active subnet."""
        check_served(config)
        kernels, expands, depths = config_choices(config)
        self.backbone.set_active_subnet(ks=kernels, e=expands, d=depths)

    @contextlib.contextmanager
    def active(self, config: EENNConfig) -> Iterator[None]:
        """Context in which ``config`` is the active subnet."""
        self.set_active(config)
        yield

    def forward_stages(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Run the active subnet: outputs of stages 1-4 (the exit positions) and final logits."""
        net = self.backbone
        x = net.blocks[0](net.first_conv(x))
        features = []
        for stage, block_indices in enumerate(net.block_group_info):
            for index in block_indices[: net.runtime_depth[stage]]:
                x = net.blocks[index](x)
            if stage < len(EXIT_STAGES):
                features.append(x)
        x = net.final_expand_layer(x)
        x = x.mean(dim=(2, 3), keepdim=True)
        x = net.feature_mix_layer(x)
        return features, net.classifier(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Final logits of the active subnet."""
        return self.forward_stages(x)[1]

    def head_loss(
        self,
        features: Sequence[torch.Tensor],
        targets: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        confidence_weight: float = 1.0,
    ) -> torch.Tensor:
        """Mean loss of the exit heads on detached stage features: cross-entropy of the class
        logits plus binary cross-entropy of the confidence against "this head is right".

        With ``generator``, one pool size per design and position, drawn with it, is trained;
        without, every head of every design, position and pool size (the mean over them).
        """
        losses = []
        for name in self.exit_head_names:
            for position, feature in enumerate(features):
                pools = self.head_pools(name, position)
                if generator is not None:
                    pools = (pools[int(torch.randint(len(pools), (1,), generator=generator))],)
                for pool in pools:
                    out = self.heads[head_key(name, position, pool)](feature.detach()).float()
                    logits, confidence = out[:, :-1], out[:, -1]
                    correct = (logits.detach().argmax(dim=1) == targets).float()
                    loss = F.cross_entropy(logits, targets)
                    if confidence_weight:
                        loss = loss + confidence_weight * F.binary_cross_entropy_with_logits(
                            confidence, correct
                        )
                    losses.append(loss)
        return torch.stack(losses).mean()

    def extract(
        self,
        config: EENNConfig,
        *,
        calibration_data: object = None,
        batches: int = 20,
        batch_size: int = 128,
        seed: int = 0,
    ) -> nn.Module:
        """The candidate ``config`` as an ordinary early-exit network with inherited weights.

        The result is the very network :func:`~optuna_nachos.build_eenn` builds (same
        modules: costs, ``predict``, export and reports work unchanged), with the supernet's
        backbone and exit-head weights copied in. With ``calibration_data`` its BatchNorm
        statistics are then recomputed on ``batches`` training batches.

        Args:
            config: The candidate; its choices must be served by the supernet (depth 2-4,
                kernel 3/5/7, expand 3/4/6).
            calibration_data: Splits (their ``train`` is used) or a dataset for BatchNorm
                recalibration; ``None`` keeps the supernet's shared statistics.
            batches: Recalibration batches.
            batch_size: Images per recalibration batch.
            seed: Seed of the recalibration batches.

        Returns:
            An :class:`~optuna_nachos.EarlyExitNetwork` on the supernet's device.

        Raises:
            ConfigError: If the supernet does not serve ``config``.
        """
        from optuna_nachos.supernet._extract import extract

        return extract(
            self,
            config,
            calibration_data=calibration_data,
            batches=batches,
            batch_size=batch_size,
            seed=seed,
        )
