"""``import optuna_nachos`` is light: PyTorch and Optuna load with the first name that needs
them."""

from __future__ import annotations

import subprocess
import sys


def test_import_optuna_nachos_does_not_import_torch_or_optuna():
    code = (
        "import sys\n"
        "import optuna_nachos\n"
        "print(optuna_nachos.__version__)\n"
        "print(sorted(m for m in ('torch', 'optuna', 'numpy') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert result.stdout.splitlines()[-1] == "[]"


def test_the_first_public_name_used_loads_its_subpackage():
    code = (
        "import sys\n"
        "import optuna_nachos\n"
        "optuna_nachos.EENNConfig\n"
        "print('optuna_nachos.config' in sys.modules, 'torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert result.stdout.split() == ["True", "False"]
