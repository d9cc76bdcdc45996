"""``python -m optuna_nachos.cli``: the same as the ``optuna-nachos`` command."""

from optuna_nachos.cli._main import main

if __name__ == "__main__":
    raise SystemExit(main())
