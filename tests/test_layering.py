"""The layering of the package, read from its source: no subpackage imports another's private
modules or, when it is imported, a layer below it; the low layers never import Optuna, and the
trial record stays low."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import optuna_nachos

PACKAGE = Path(optuna_nachos.__file__).parent

NO_OPTUNA = ("config", "models", "cost", "data", "train", "supernet", "deploy")
"""Subpackages that must not import Optuna."""

LOW_HELPERS = ("_logging.py", "_validate.py", "_pareto.py", "_errors.py", "_registry.py")
"""Top-level helper modules the low layers use; they must not import Optuna either."""

RECORD_MAY_IMPORT = ("config",)
"""The only subpackages the trial record may import."""

LAYERS = (
    ("config",),
    ("models",),
    ("cost",),
    ("data",),
    ("train", "supernet", "deploy"),
    ("space",),
    ("record",),
    ("objective", "samplers", "study", "results", "visualization", "dashboard", "report"),
    ("benchmark",),
    ("cli",),
)
"""The layers, top first (the design's list): a subpackage imports, when it is imported, only
from its own layer and the ones above. Imports inside functions may reach lower (the latency
calibration of ``cost`` times the deployed forms; ``deploy`` loads a trial's network by the
record's attribute name), as long as importing the package stays acyclic."""


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _modules() -> list[tuple[str | None, Path]]:
    """``(subpackage or None for top-level modules, file)`` of every module of the package."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        out.append((parts[0] if len(parts) > 1 else None, path))
    return out


SUBPACKAGES = frozenset(path.parent.name for path in PACKAGE.glob("*/__init__.py"))


def _private_of_other(owner: str | None, module: str) -> bool:
    parts = module.split(".")
    if parts[0] != "optuna_nachos" or len(parts) < 3 or parts[1] not in SUBPACKAGES:
        return False  # not ours, or a top-level module of the package (shared helpers)
    return parts[1] != owner and any(part.startswith("_") for part in parts[2:])


def _module_level_imports(path: Path) -> list[tuple[int, str]]:
    """The imports a file runs when it is imported (its top-level statements)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_the_scan_sees_the_package() -> None:
    owners = {owner for owner, _ in _modules()}
    assert {"config", "record", "samplers", "results", "visualization"} <= owners
    assert _private_of_other("report", "optuna_nachos.objective._objective")
    assert not _private_of_other("objective", "optuna_nachos.objective._objective")
    assert not _private_of_other("results", "optuna_nachos._pareto")
    assert not _private_of_other("results", "optuna_nachos.record")


def test_no_subpackage_imports_another_subpackages_private_module() -> None:
    offences = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for owner, path in _modules()
        for line, module in _imports(path)
        if _private_of_other(owner, module)
    ]
    assert not offences, "import the owning package's public names instead:\n" + "\n".join(offences)


def test_the_layers_name_every_subpackage() -> None:
    assert {name for layer in LAYERS for name in layer} == SUBPACKAGES


def test_no_subpackage_imports_a_lower_layer_when_imported() -> None:
    rank = {name: index for index, layer in enumerate(LAYERS) for name in layer}
    offences = []
    for owner, path in _modules():
        if owner is None:
            continue
        for line, module in _module_level_imports(path):
            parts = module.split(".")
            imported = parts[1] if parts[0] == "optuna_nachos" and len(parts) > 1 else None
            if imported in rank and rank[imported] > rank[owner]:
                offences.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert not offences, "a layer imports one below it:\n" + "\n".join(offences)


@pytest.mark.parametrize("subpackage", NO_OPTUNA)
def test_low_layers_never_import_optuna(subpackage: str) -> None:
    offences = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for owner, path in _modules()
        if owner == subpackage
        for line, module in _imports(path)
        if module == "optuna" or module.startswith("optuna.")
    ]
    assert not offences, "\n".join(offences)


@pytest.mark.parametrize("helper", LOW_HELPERS)
def test_shared_low_helpers_never_import_optuna(helper: str) -> None:
    """The package logger is a child of Optuna's by name only: the low layers may log."""
    imports = [module for _, module in _imports(PACKAGE / helper)]
    assert not [m for m in imports if m == "optuna" or m.startswith("optuna.")], imports


def test_the_record_imports_only_optuna_and_the_configuration() -> None:
    offences = []
    for owner, path in _modules():
        if owner != "record":
            continue
        for line, module in _imports(path):
            parts = module.split(".")
            if parts[0] != "optuna_nachos" or len(parts) < 2 or parts[1] == "record":
                continue
            if parts[1] not in RECORD_MAY_IMPORT:
                offences.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert not offences, "\n".join(offences)
