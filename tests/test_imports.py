"""``import optuna_nachos`` is light: PyTorch and Optuna load with the first name that needs
them."""

from __future__ import annotations

import subprocess
import sys


def _printed(*lines: str) -> list[str]:
    """What a fresh interpreter prints after ``import sys`` and ``lines``."""
    code = "\n".join(["import sys", *lines])
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    return result.stdout.split()


def test_import_optuna_nachos_does_not_import_torch_or_optuna():
    loaded = "sorted(m for m in ('torch', 'optuna', 'numpy') if m in sys.modules)"
    assert _printed("import optuna_nachos", f"print(len({loaded}))") == ["0"]


def test_the_first_public_name_used_loads_its_subpackage():
    printed = _printed(
        "import optuna_nachos",
        "optuna_nachos.EENNConfig",
        "print('optuna_nachos.config' in sys.modules, 'torch' in sys.modules)",
    )
    assert printed == ["True", "False"]
