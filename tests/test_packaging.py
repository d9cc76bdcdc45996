"""pyproject.toml tells the truth: every third-party import of the package is declared, the
Python versions agree, and the private Optuna APIs behind the Optuna bound exist."""

from __future__ import annotations

import ast
import importlib
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "optuna_nachos"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# Import names whose distribution is named otherwise, for distributions not installed here.
_KNOWN_DISTRIBUTIONS = {"PIL": "pillow", "sklearn": "scikit-learn", "tomli": "tomli"}

# The private Optuna APIs the package relies on: if one goes, the upper bound on Optuna in
# pyproject.toml is wrong. ``(module, attribute)``; attributes of objects are checked below.
PRIVATE_OPTUNA_APIS = [
    ("optuna.samplers._lazy_random_state", "LazyRandomState"),
    ("optuna.study._frozen", "FrozenStudy"),
    ("optuna.artifacts._protocol", "ArtifactStore"),
    ("optuna._hypervolume", "compute_hypervolume"),
    ("optuna.study._multi_objective", "_fast_non_domination_rank"),
]


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    return _normalize(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1))


def _declared() -> set[str]:
    project = PYPROJECT["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return {_requirement_name(r) for r in requirements}


def _imported_top_levels() -> dict[str, list[str]]:
    """Top-level names of every absolute import in the package, with the files importing them."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                found.setdefault(top, []).append(str(path.relative_to(ROOT)))
    return found


def _distribution(top_level: str) -> str:
    installed = metadata.packages_distributions().get(top_level)
    if installed:
        return _normalize(installed[0])
    return _normalize(_KNOWN_DISTRIBUTIONS.get(top_level, top_level))


def test_every_third_party_import_is_declared():
    declared = _declared()
    third_party = {
        top: files
        for top, files in _imported_top_levels().items()
        if top not in sys.stdlib_module_names and top not in ("optuna_nachos", "__future__")
    }
    assert {"torch", "optuna", "PIL", "threadpoolctl"} <= set(third_party)  # the scan works
    undeclared = {
        top: sorted(set(files))
        for top, files in third_party.items()
        if _distribution(top) not in declared
    }
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_tomli_stands_in_for_tomllib_before_python_3_11():
    requirement = next(r for r in PYPROJECT["project"]["dependencies"] if r.startswith("tomli"))
    assert "python_version < '3.11'" in requirement
    floor = PYPROJECT["project"]["requires-python"]
    assert floor == ">=3.10"
    classifiers = PYPROJECT["project"]["classifiers"]
    assert "Programming Language :: Python :: 3.10" in classifiers
    assert "Python >= 3.10" in (ROOT / "README.md").read_text()


def test_kaleido_comes_with_a_plotly_it_runs_with():
    extras = PYPROJECT["project"]["optional-dependencies"]
    for name, requirements in extras.items():
        if any(_requirement_name(r) == "kaleido" for r in requirements):
            assert "plotly>=6.1" in [r.split(";")[0].split("#")[0].strip() for r in requirements], (
                name
            )


def test_optuna_bound_admits_the_installed_optuna():
    requirement = next(
        r for r in PYPROJECT["project"]["dependencies"] if _requirement_name(r) == "optuna"
    )
    upper = int(re.search(r"<\s*(\d+)", requirement).group(1))
    lower = int(re.search(r">=\s*(\d+)", requirement).group(1))
    installed = int(metadata.version("optuna").split(".")[0])
    assert lower <= installed < upper


@pytest.mark.parametrize(("module", "name"), PRIVATE_OPTUNA_APIS)
def test_the_private_optuna_apis_in_use_exist(module, name):
    assert hasattr(importlib.import_module(module), name)


def test_the_private_study_and_trial_attributes_in_use_exist():
    import optuna

    study = optuna.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    assert study._storage.get_study_system_attrs(study._study_id) == {}
    study._storage.set_trial_system_attr(trial._trial_id, "probe", 1)
    assert study._storage.get_trial(trial._trial_id).system_attrs["probe"] == 1


def test_the_private_optuna_imports_are_the_listed_ones():
    listed = {module for module, _ in PRIVATE_OPTUNA_APIS}
    unlisted = _private_optuna_modules() - listed
    assert not unlisted, f"private Optuna modules in use, not checked here: {sorted(unlisted)}"


def _private_optuna_modules() -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                parts = node.module.split(".")
                if parts[0] == "optuna" and any(p.startswith("_") for p in parts[1:]):
                    found.add(node.module)
    return found
