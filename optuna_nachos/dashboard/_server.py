"""Serving optuna-dashboard on a storage of EENN studies, constraints included."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optuna.storages import BaseStorage

from optuna_nachos.dashboard._attach import import_dashboard
from optuna_nachos.dashboard._storage import ConstraintView

if TYPE_CHECKING:
    from optuna.artifacts._protocol import ArtifactStore


def _view(storage: str | BaseStorage) -> ConstraintView:
    if isinstance(storage, ConstraintView):
        return storage
    if isinstance(storage, str):
        from optuna_nachos.study import open_storage

        storage = open_storage(storage)
    return ConstraintView(storage)


def dashboard_app(
    storage: str | BaseStorage, *, artifact_store: ArtifactStore | None = None
) -> Any:
    """The optuna-dashboard WSGI application, with the constraints visible to its plots.

    The application is :func:`optuna_dashboard.wsgi` on a :class:`ConstraintView` of the
    storage; serve it with any WSGI server.

    Args:
        storage: A storage URL (opened with :func:`optuna_nachos.study.open_storage`) or object.
        artifact_store: The store of the trained networks, listed on the trial pages.

    Raises:
        ImportError: If optuna-dashboard is not installed.
    """
    dashboard = import_dashboard()
    return dashboard.wsgi(_view(storage), artifact_store=artifact_store)


def run_dashboard(
    storage: str | BaseStorage,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    artifact_store: ArtifactStore | None = None,
) -> None:
    """Serve optuna-dashboard until interrupted, with the constraints visible to its plots.

    Runs :func:`optuna_dashboard.run_server` on a :class:`ConstraintView` of the storage. Call
    :func:`attach` first for the figures and the summary note.

    Args:
        storage: A storage URL (opened with :func:`optuna_nachos.study.open_storage`) or object.
        host: Address to listen on; the default serves this machine only.
        port: Port to listen on.
        artifact_store: The store of the trained networks, listed on the trial pages.

    Raises:
        ImportError: If optuna-dashboard is not installed.
    """
    dashboard = import_dashboard()
    dashboard.run_server(_view(storage), host=host, port=port, artifact_store=artifact_store)
