"""Self-contained export of any early-exit network: one ``torch.export`` program per piece.

A network built from an :class:`~optuna_nachos.EENNConfig` is rebuilt from its configuration.
Any other network (exits on a user's torchvision or timm backbone, or on a hand-made one) is
saved as a chain of programs, one per backbone segment, per exit head and for the final head,
each traced in eval mode with a dynamic batch size. Reloading needs neither the user's code
nor the model zoo, and the dynamic early exit still skips the remaining segments.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from optuna_nachos.models import EarlyExitNetwork

PROGRAMS_DIR = "programs"
"""Sub-folder of an export that holds the programs."""


class ExportedPiece(nn.Module):
    """One exported piece of a network, run as traced (inference mode).

    ``train()`` and ``eval()`` do not reach the program: it was traced in eval mode and runs
    as such (a reloaded network is for inference).

    Args:
        program: The module of a ``torch.export`` program (``ExportedProgram.module()``).
    """

    def __init__(self, program: nn.Module) -> None:
        super().__init__()
        self.program = program

    def train(self, mode: bool = True) -> ExportedPiece:
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.program(x)


def _piece_names(model: EarlyExitNetwork) -> list[str]:
    names = [f"segment_{i}" for i in range(len(model.segments))]
    names += [f"exit_head_{k}" for k in range(len(model.exit_heads))]
    return [*names, "final_head"]


@torch.no_grad()
def save_programs(model: EarlyExitNetwork, folder: Path, input_shape: tuple[int, ...]) -> dict:
    """Export every piece of ``model`` with ``torch.export`` into ``folder/programs``.

    Returns:
        What :func:`load_programs` needs besides the files (JSON values).

    Raises:
        RuntimeError: If a piece cannot be exported (its forward is not traceable).
    """
    from torch.export import Dim, export, save

    target = folder / PROGRAMS_DIR
    target.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        reference = next(iter(model.parameters()), None)
        x = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))
        if reference is not None:
            x = x.to(dtype=reference.dtype, device=reference.device)
        heads = dict(zip(model.exit_positions, model.exit_heads))
        pieces: list[tuple[str, nn.Module, torch.Tensor]] = []
        for index, segment in enumerate(model.segments):
            pieces.append((f"segment_{index}", segment, x))
            x = segment(x)
            if index in heads:
                k = model.exit_positions.index(index)
                pieces.append((f"exit_head_{k}", heads[index], x))
        pieces.append(("final_head", model.final_head, x))
        batch = Dim("batch", min=1, max=1 << 20)
        for name, module, example in pieces:
            try:
                program = export(module, (example,), dynamic_shapes=({0: batch},))
            except Exception as error:
                raise RuntimeError(
                    f"torch.export could not trace {name} ({type(module).__name__}): {error}"
                ) from error
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="No complete tensor found")
                save(program, target / f"{name}.pt2")
    finally:
        model.train(was_training)
    return {
        "num_segments": len(model.segments),
        "exit_positions": list(model.exit_positions),
        "exit_pools": None if model.exit_pools is None else list(model.exit_pools),
        "exit_head_names": (None if model.exit_head_names is None else list(model.exit_head_names)),
        "files": [f"{PROGRAMS_DIR}/{name}.pt2" for name in _piece_names(model)],
    }


def load_programs(
    folder: Path, architecture: Mapping[str, Any], *, num_classes: int, input_shape: Any
) -> EarlyExitNetwork:
    """Rebuild a network saved by :func:`save_programs`.

    Raises:
        FileNotFoundError: If a program file is missing.
    """
    from torch.export import load

    def piece(name: str) -> ExportedPiece:
        path = folder / PROGRAMS_DIR / f"{name}.pt2"
        if not path.is_file():
            raise FileNotFoundError(f"{folder} lacks {PROGRAMS_DIR}/{name}.pt2 of its network.")
        with warnings.catch_warnings():
            # torch.export's loader notes tensors saved as views of a shared storage.
            warnings.filterwarnings("ignore", message="No complete tensor found")
            return ExportedPiece(load(path).module())

    positions = [int(p) for p in architecture["exit_positions"]]
    segments = [piece(f"segment_{i}") for i in range(int(architecture["num_segments"]))]
    heads = {p: piece(f"exit_head_{k}") for k, p in enumerate(positions)}
    return EarlyExitNetwork(
        segments,
        heads,
        piece("final_head"),
        num_classes=num_classes,
        exit_pools=architecture.get("exit_pools"),
        input_shape=input_shape,
        exit_head_names=architecture.get("exit_head_names"),
    )
