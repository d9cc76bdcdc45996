"""Writable copies of the shared digits study (attaching writes study attributes)."""

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest


def copy_digits_study(digits_study, folder: Path, name: str = "copy") -> tuple[optuna.Study, str]:
    """A copy of the digits study in a new SQLite file: its trials, user and system attributes."""
    url = f"sqlite:///{folder / f'{name}.db'}"
    optuna.copy_study(
        from_study_name=digits_study.study.study_name,
        from_storage=digits_study.storage,
        to_storage=url,
    )
    return optuna.load_study(study_name=digits_study.study.study_name, storage=url), url


@pytest.fixture
def study_copy(digits_study, tmp_path) -> tuple[optuna.Study, str]:
    """A writable copy of the digits study and its storage URL."""
    return copy_digits_study(digits_study, tmp_path)


@pytest.fixture
def wsgi_get() -> Callable[[Callable, str], tuple[str, bytes]]:
    """GET a path from a WSGI application, in-process."""
    from wsgiref.util import setup_testing_defaults

    def get(app: Callable, path: str) -> tuple[str, bytes]:
        environ: dict = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "QUERY_STRING": ""}
        setup_testing_defaults(environ)
        status: list[str] = []

        def start_response(code, headers, exc_info=None):
            status.append(code)

        body = b"".join(app(environ, start_response))
        return status[0], body

    return get
