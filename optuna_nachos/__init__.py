"""optuna-nachos: hardware-constrained search of early-exit neural networks with Optuna.

The public names most users need are here; the subpackages hold the rest:
:mod:`optuna_nachos.config`, :mod:`~optuna_nachos.models`, :mod:`~optuna_nachos.cost`,
:mod:`~optuna_nachos.data`, :mod:`~optuna_nachos.train`, :mod:`~optuna_nachos.space`,
:mod:`~optuna_nachos.objective`, :mod:`~optuna_nachos.study`, :mod:`~optuna_nachos.samplers`,
:mod:`~optuna_nachos.results`, :mod:`~optuna_nachos.supernet` (weight sharing) and
:mod:`~optuna_nachos.visualization` (plotly figures).

The names are imported on first use (PEP 562), so that ``import optuna_nachos`` and the
``optuna-nachos`` command's ``--help`` do not pay for importing PyTorch and Optuna. They are
written once, as the imports of the stub ``__init__.pyi`` (which type checkers and editors
read): this module reads the stub to know where each name lives.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any

from optuna_nachos._version import __version__


def _read_stub() -> tuple[dict[str, str], frozenset[str]]:
    """Where each public name lives, and the subpackages, from the imports of the stub."""
    stub = Path(__file__).with_suffix(".pyi")
    names: dict[str, str] = {}
    subpackages: set[str] = set()
    for node in ast.parse(stub.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.ImportFrom) or node.module is None:
            continue
        if node.module == __name__:
            subpackages.update(alias.name for alias in node.names)
        elif node.module.count(".") == 1 and not node.module.endswith("._version"):
            names.update((alias.name, node.module) for alias in node.names)
    return names, frozenset(subpackages)


_LAZY_NAMES, _SUBPACKAGES = _read_stub()


def __getattr__(name: str) -> Any:
    """Import a public name from its subpackage on first access (PEP 562)."""
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_NAMES, *_SUBPACKAGES})


__all__ = ["__version__", *_LAZY_NAMES]
