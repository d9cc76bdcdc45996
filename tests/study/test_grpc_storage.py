"""``grpc://`` storage URLs open Optuna's gRPC storage proxy."""

from __future__ import annotations

import importlib.util

import optuna
import pytest

from optuna_nachos.study import open_storage
from optuna_nachos.study._storage import grpc_address


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("grpc://localhost:13000", ("localhost", 13000)),
        ("grpc://10.0.0.5:9000/", ("10.0.0.5", 9000)),
        ("grpc://storage-server", ("storage-server", 13000)),
    ],
)
def test_grpc_address(url, address):
    assert grpc_address(url) == address


@pytest.mark.parametrize("url", ["grpc://", "grpc://host:port", "grpc://host:1/db"])
def test_malformed_grpc_urls_are_refused(url):
    with pytest.raises(ValueError, match="use grpc://HOST:PORT"):
        grpc_address(url)


class _FakeProxy:
    def __init__(self, *, host: str, port: int) -> None:
        self.host, self.port, self.closed = host, port, False

    def wait_server_ready(self, timeout: float | None = None) -> None:
        self.timeout = timeout

    def close(self) -> None:
        self.closed = True


def test_a_grpc_url_opens_the_proxy(monkeypatch):
    monkeypatch.setattr(optuna.storages, "GrpcStorageProxy", _FakeProxy)
    storage = open_storage("grpc://example:4242")
    assert isinstance(storage, _FakeProxy)
    assert (storage.host, storage.port) == ("example", 4242) and storage.timeout > 0


def test_a_silent_grpc_server_is_a_one_line_error(monkeypatch):
    class Silent(_FakeProxy):
        def wait_server_ready(self, timeout=None):
            raise ConnectionError("GRPC connection timeout")

    monkeypatch.setattr(optuna.storages, "GrpcStorageProxy", Silent)
    with pytest.raises(ValueError, match="no storage server answered at example:4242"):
        open_storage("grpc://example:4242")


@pytest.mark.skipif(importlib.util.find_spec("grpc") is not None, reason="grpcio is installed here")
def test_without_grpcio_the_error_says_what_to_install():
    with pytest.raises(ValueError, match=r"pip install optuna-nachos\[grpc\]"):
        open_storage("grpc://localhost:13000")


def test_a_study_through_a_real_grpc_proxy(tmp_path):
    pytest.importorskip("grpc", reason="grpcio is not installed: pip install optuna-nachos[grpc]")
    import socket
    import threading

    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    backend = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'served.db'}")
    server = optuna.storages.run_grpc_proxy_server  # blocks: serve from a thread
    threading.Thread(
        target=server, args=(backend,), kwargs={"host": "localhost", "port": port}, daemon=True
    ).start()
    storage = open_storage(f"grpc://localhost:{port}")
    study = optuna.create_study(storage=storage, study_name="through-grpc")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    assert len(optuna.load_study(study_name="through-grpc", storage=backend).trials) == 2
