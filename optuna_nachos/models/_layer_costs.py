"""Closed-form MACs and parameters of layers and blocks, equal to fvcore's count.

MACs are the multiply-accumulates of convolutions and linear layers on one sample (BatchNorm,
activations, pooling, biases, the squeeze-excitation multiply and residual additions are not
counted); parameters are every learnable value, biases and BatchNorm affine terms included.
The exit heads' cost formulas are written with these, and so is the analytic cost model of the
backbone in :mod:`optuna_nachos.cost`. Feature maps are square: ``side`` is their height and
width.
"""

from __future__ import annotations

from optuna_nachos.models._blocks import hidden_channels, squeezed_channels


def conv_output_side(side: int, kernel_size: int, stride: int = 1) -> int:
    """Output side of a convolution with padding ``kernel_size // 2`` (as in this package).

    Args:
        side: Input side.
        kernel_size: Kernel side (odd).
        stride: Stride.

    Returns:
        The output side.
    """
    return (side + 2 * (kernel_size // 2) - kernel_size) // stride + 1


def conv2d_cost(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    side_out: int,
    groups: int = 1,
    bias: bool = True,
) -> tuple[int, int]:
    """MACs and parameters of one ``nn.Conv2d``.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Kernel side.
        side_out: Side of the output map (see :func:`conv_output_side`).
        groups: Convolution groups (``in_channels`` for a depthwise convolution).
        bias: Whether the convolution has a bias.

    Returns:
        ``(macs, params)``.
    """
    weights = out_channels * (in_channels // groups) * kernel_size * kernel_size
    return side_out * side_out * weights, weights + (out_channels if bias else 0)


def linear_cost(in_features: int, out_features: int, *, bias: bool = True) -> tuple[int, int]:
    """MACs and parameters of one ``nn.Linear`` applied to one vector.

    Returns:
        ``(macs, params)``.
    """
    weights = in_features * out_features
    return weights, weights + (out_features if bias else 0)


def conv_bn_cost(
    in_channels: int, out_channels: int, kernel_size: int, *, side_out: int, groups: int = 1
) -> tuple[int, int]:
    """MACs and parameters of a :class:`~optuna_nachos.models.ConvBNAct`: a bias-free
    convolution and BatchNorm (whose weight and bias are parameters, its MACs are not counted).

    Returns:
        ``(macs, params)``.
    """
    macs, params = conv2d_cost(
        in_channels, out_channels, kernel_size, side_out=side_out, groups=groups, bias=False
    )
    return macs, params + 2 * out_channels


def mbconv_cost(
    in_channels: int,
    out_channels: int,
    *,
    kernel_size: int,
    stride: int,
    expand_ratio: int,
    use_se: bool,
    side: int,
) -> tuple[int, int]:
    """MACs and parameters of an :class:`~optuna_nachos.models.MBConv` block.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Depthwise kernel side.
        stride: Depthwise stride.
        expand_ratio: Expand ratio (1: no expansion convolution).
        use_se: Whether the block has squeeze-excitation.
        side: Side of the input map; the output's is
            ``conv_output_side(side, kernel_size, stride)``.

    Returns:
        ``(macs, params)``.
    """
    hidden = hidden_channels(in_channels, expand_ratio)
    side_out = conv_output_side(side, kernel_size, stride)
    pieces = []
    if expand_ratio != 1:
        pieces.append(conv_bn_cost(in_channels, hidden, 1, side_out=side))
    pieces.append(conv_bn_cost(hidden, hidden, kernel_size, side_out=side_out, groups=hidden))
    if use_se:
        squeezed = squeezed_channels(hidden)
        # Two 1x1 convolutions with bias on the globally pooled 1x1 map.
        pieces.append(conv2d_cost(hidden, squeezed, 1, side_out=1))
        pieces.append(conv2d_cost(squeezed, hidden, 1, side_out=1))
    pieces.append(conv_bn_cost(hidden, out_channels, 1, side_out=side_out))
    return sum(m for m, _ in pieces), sum(p for _, p in pieces)
