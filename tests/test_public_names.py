"""The public surface: every public name has one address among the subpackages, every name a
subpackage lists exists, and the top level lists exactly its lazy names."""

from __future__ import annotations

import importlib
import pkgutil

import optuna_nachos

SUBPACKAGES = sorted(m.name for m in pkgutil.iter_modules(optuna_nachos.__path__) if m.ispkg)


def _listed() -> dict[str, list[str]]:
    """Each public name of a subpackage and the subpackages that list it in ``__all__``."""
    where: dict[str, list[str]] = {}
    for name in SUBPACKAGES:
        module = importlib.import_module(f"optuna_nachos.{name}")
        for public in module.__all__:
            where.setdefault(public, []).append(name)
    return where


def test_every_public_name_has_one_address():
    twice = {name: owners for name, owners in _listed().items() if len(owners) > 1}
    assert not twice, f"names listed by several subpackages (keep one address): {twice}"


def test_every_listed_name_exists():
    for name in SUBPACKAGES:
        module = importlib.import_module(f"optuna_nachos.{name}")
        missing = [public for public in module.__all__ if not hasattr(module, public)]
        assert not missing, f"optuna_nachos.{name}.__all__ lists missing names: {missing}"


def test_the_top_level_names_come_from_where_they_live():
    listed = _listed()
    for name in optuna_nachos.__all__:
        if name == "__version__":
            continue
        value = getattr(optuna_nachos, name)
        (owner,) = listed[name]
        assert value is getattr(importlib.import_module(f"optuna_nachos.{owner}"), name)


def test_the_stub_that_lists_the_top_level_names_ships_with_the_package():
    from pathlib import Path

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    root = Path(optuna_nachos.__file__).parents[1]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    assert "__init__.pyi" in pyproject["tool"]["setuptools"]["package-data"]["optuna_nachos"]
    assert (Path(optuna_nachos.__file__).parent / "__init__.pyi").is_file()
    assert {"EENNConfig", "NachosSampler", "load_eenn"} <= set(optuna_nachos.__all__)
    assert "data" in dir(optuna_nachos) and "record" in dir(optuna_nachos)
