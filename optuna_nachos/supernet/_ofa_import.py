"""Starting a supernet from OFA's published MobileNetV3 checkpoint."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from optuna_nachos.supernet._io import SupernetError
from optuna_nachos.supernet._network import Supernet, new_ofa_backbone

OFA_CHECKPOINT_NAME = "ofa_mbv3_d234_e346_k357_w1.0"
"""The OFA checkpoint the NACHOS reference starts from (ImageNet, 1000 classes)."""


def import_ofa_checkpoint(
    path: str | os.PathLike[str],
    *,
    num_classes: int | None = None,
    in_channels: int = 3,
    resolution: int = 32,
    exit_heads: Sequence[str] = ("nachos",),
) -> Supernet:
    """A supernet whose backbone holds the weights of an OFA MobileNetV3 checkpoint.

    The file is OFA's ``ofa_mbv3_d234_e346_k357_w1.0`` (or any checkpoint of
    ``OFAMobileNetV3(ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4])``
    at width 1.0): a state dict, or a dict holding one under ``"state_dict"``. It is read
    with ``weights_only=True``. The classifier is replaced by a new one for ``num_classes``
    (kept when ``None`` or equal); for grey-scale data (``in_channels=1``) the first
    convolution's RGB filters are summed. The exit heads start fresh: fine-tune the result
    on your data with :func:`~optuna_nachos.supernet.train_supernet` (``supernet=``) before
    searching.

    Args:
        path: The checkpoint file.
        num_classes: Classes of your data; ``None`` keeps the checkpoint's.
        in_channels: Channels of your images.
        resolution: Side of your input images.
        exit_heads: Exit head designs to hold.

    Raises:
        SupernetError: If the file is missing or is not such a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise SupernetError(f"no OFA checkpoint at {path}.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise SupernetError(f"{path} is not a readable PyTorch checkpoint: {error}") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or "classifier.linear.weight" not in state:
        raise SupernetError(
            f"{path} is not an OFA MobileNetV3 checkpoint (no classifier.linear.weight)."
        )
    checkpoint_classes = int(state["classifier.linear.weight"].shape[0])
    backbone = new_ofa_backbone(checkpoint_classes)
    try:
        backbone.load_state_dict(state)
    except RuntimeError as error:
        first = " ".join(str(error).strip().splitlines()[:2])
        raise SupernetError(
            f"{path} does not fit OFA's MobileNetV3 with kernels 3/5/7, expand ratios 3/4/6 "
            f"and depths 2/3/4 at width 1.0: {first}"
        ) from None
    if num_classes is not None and num_classes != checkpoint_classes:
        old = backbone.classifier.linear
        new = nn.Linear(old.in_features, num_classes)
        nn.init.normal_(new.weight, 0, 0.01)
        nn.init.zeros_(new.bias)
        backbone.classifier.linear = new
        backbone.classifier.out_features = num_classes
    return Supernet(
        num_classes=num_classes or checkpoint_classes,
        in_channels=in_channels,
        resolution=resolution,
        exit_heads=exit_heads,
        backbone=backbone,
    )
