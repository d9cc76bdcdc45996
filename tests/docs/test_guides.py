"""The guides' Python snippets run as written, in order."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def python_blocks(page: Path) -> list[str]:
    """The ``python`` code blocks of a Markdown page, in order."""
    return _BLOCK.findall(page.read_text())


def run_blocks(page: Path) -> dict:
    """Run the page's blocks one after the other in one module namespace (a registered
    module, so that dataclasses and pickling defined in a snippet work)."""
    module = types.ModuleType(f"guide_{page.stem.replace('-', '_')}")
    sys.modules[module.__name__] = module
    try:
        for index, block in enumerate(python_blocks(page)):
            try:
                exec(compile(block, f"{page.name}[block {index}]", "exec"), module.__dict__)
            except Exception as error:
                raise AssertionError(f"block {index} of {page.name} failed: {error!r}") from error
    finally:
        del sys.modules[module.__name__]
    return module.__dict__


def test_own_model_guide_runs(tmp_path, monkeypatch):
    pytest.importorskip("timm")
    monkeypatch.chdir(tmp_path)
    page = DOCS / "guide" / "own-model.md"
    assert len(python_blocks(page)) >= 7
    namespace = run_blocks(page)
    assert namespace["stages"].names == ("layer1", "layer2", "layer3", "layer4")
    assert namespace["prediction"].predictions.shape == (1,)
    assert set(namespace["legacy"].trials[0].constraints) == {"0", "1", "2"}
    assert (tmp_path / "exports").is_dir() and (tmp_path / "own-model.db").is_file()


def test_export_guide_runs_on_an_exported_trial(digits_study, tmp_path, monkeypatch):
    import optuna

    import optuna_nachos as nachos

    store = optuna.artifacts.FileSystemArtifactStore(str(digits_study.artifact_dir))
    trained = [t for t in digits_study.study.trials if "nachos_artifact_id" in t.user_attrs]
    deployed = nachos.load_eenn(trained[-1], artifact_store=store)
    # what `optuna-nachos export --trial N --out my-eenn/` writes
    nachos.export_eenn(
        tmp_path / "my-eenn",
        deployed.model,
        deployed.thresholds,
        in_channels=1,
        metadata={k: v for k, v in deployed.metadata.items() if k != "in_channels"},
    )
    monkeypatch.chdir(tmp_path)
    namespace = run_blocks(DOCS / "guide" / "export.md")
    assert namespace["prediction"].predictions.shape == (1,)
