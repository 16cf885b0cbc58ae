"""`GET /ready`: 200 while the database answers and the artifact store takes writes, 503 when
either fails (for real: the file, directory or database is taken away), and never 503 because
Azure ML is unreachable (writes still succeed and wait in the outbox)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import jsonschema
import psycopg
import pytest
from sqlalchemy.engine import make_url

from support import PostgresCluster, TetherServer, free_port, unique_name

if TYPE_CHECKING:
    from standin.identity import ManagedIdentityEndpoint
    from support import TetherServerStarter

sqlite_only = pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)
postgres_only = pytest.mark.parametrize("backend_kind", ["postgres"], indirect=True)
# The probe's limit (3 s by default): a busy machine's first probe of a fresh server may need
# longer, and the tests' 200s must not hinge on it. Below _ready's own 30 s.
READY_ENV = {"TETHER_READY_TIMEOUT_SECONDS": "20"}


_DOCUMENT = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
# Every answer, 200 or 503, has the documented shape (exactly: no key more).
_READINESS = jsonschema.Draft202012Validator(
    {
        "$ref": "#/components/schemas/Readiness",
        "components": json.loads(_DOCUMENT.read_text(encoding="utf-8"))["components"],
    }
)


def _ready(server: TetherServer) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{server.url}/ready", timeout=30, trust_env=False)
    body: dict[str, Any] = response.json()
    _READINESS.validate(body)
    return response.status_code, body


def _wait_for(
    server: TetherServer, done: Callable[[int, dict[str, Any]], bool], timeout: float = 60
) -> tuple[int, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        status, body = _ready(server)
        if done(status, body):
            return status, body
        assert time.monotonic() < deadline, (status, body)
        time.sleep(0.2)


def _alive(server: TetherServer) -> None:
    health = httpx.get(f"{server.url}/health", timeout=30, trust_env=False)
    assert (health.status_code, health.text) == (200, "OK")  # liveness stays as mlflow's


@sqlite_only
def test_not_ready_while_the_artifact_store_cannot_be_written(
    start_tether_server: TetherServerStarter,
) -> None:
    server = start_tether_server(env=READY_ENV)
    status, body = _ready(server)
    assert status == 200, body
    assert body["status"] == "ready"
    assert body["database"]["ok"] and body["database"]["dialect"] == "sqlite"
    assert body["artifacts"] == {**body["artifacts"], "ok": True, "backend": "LocalBackend"}
    assert body["sync"] == {"enabled": False}

    # Root ignores permission bits, so the store is made unwritable by putting a file where
    # its directory was: every upload must now fail too.
    root = Path(server.artifacts_destination)
    shutil.rmtree(root)
    root.write_text("not a directory")
    status, body = _ready(server)
    assert status == 503, body
    assert body["status"] == "unavailable"
    assert body["database"]["ok"] is True
    assert body["artifacts"]["ok"] is False and body["artifacts"]["error"]
    upload = httpx.put(
        f"{server.url}/api/2.0/mlflow-artifacts/artifacts/x/y.txt", content=b"z", trust_env=False
    )
    assert upload.status_code != 200
    _alive(server)

    root.unlink()
    root.mkdir()
    assert _ready(server)[0] == 200


@sqlite_only
def test_not_ready_when_the_sqlite_database_is_gone(
    start_tether_server: TetherServerStarter, tmp_path: Path
) -> None:
    folder = tmp_path / "volume"
    server = start_tether_server(f"sqlite:///{folder / 'tether.db'}", env=READY_ENV)
    assert _ready(server)[0] == 200
    shutil.rmtree(folder)  # e.g. the volume went away: open connections would still answer
    status, body = _ready(server)
    assert status == 503, body
    assert body["database"]["ok"] is False
    assert "tether.db" in body["database"]["error"]
    assert body["artifacts"]["ok"] is True
    _alive(server)


@postgres_only
def test_not_ready_while_postgres_refuses_connections(
    start_tether_server: TetherServerStarter, postgres_server: PostgresCluster
) -> None:
    uri = postgres_server.new_database()
    name = make_url(uri).database
    server = start_tether_server(uri, env=READY_ENV)
    with server.rest() as rest:  # the pool holds live connections when the database goes
        assert rest.post("experiments/create", {"name": unique_name()}).status == 200
    assert _ready(server)[0] == 200

    with psycopg.connect(postgres_server.uri("postgres"), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
        )
        try:
            status, body = _ready(server)
            assert status == 503, body
            assert body["database"] == {**body["database"], "ok": False, "dialect": "postgresql"}
            assert "password" not in body["database"]["error"].lower()
            _alive(server)
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert _wait_for(server, lambda status, _: status == 200)[0] == 200


@sqlite_only
def test_ready_while_azure_ml_is_unreachable_and_says_so(
    start_tether_server: TetherServerStarter, azureml_identity: ManagedIdentityEndpoint
) -> None:
    closed = free_port()  # nothing listens there
    server = start_tether_server(
        extra_args=[
            "--azureml-workspace",
            "subscriptions/sub/resourceGroups/rg/workspaces/ws",
            "--azureml-endpoint",
            f"http://127.0.0.1:{closed}",
        ],
        env={**azureml_identity.env, **READY_ENV, "TETHER_SYNC_POLL_SECONDS": "0.2"},
    )
    with server.rest() as rest:  # gives the sync worker something to send
        assert rest.post("experiments/create", {"name": unique_name()}).status == 200

    status, body = _wait_for(server, lambda _, b: b["sync"].get("azureml_reachable") is False)
    assert status == 200, body
    assert body["status"] == "ready"
    sync = body["sync"]
    assert sync["enabled"] is True
    assert f"127.0.0.1:{closed}" in sync["last_error"] and "ConnectError" in sync["last_error"]
    assert sync["pending"] + sync["in_flight"] + sync["failed"] >= 1
    assert sync["dead"] == 0


@sqlite_only
def test_not_ready_when_the_blob_container_is_gone(
    start_tether_server: TetherServerStarter, azurite: Any
) -> None:
    from azure.storage.blob import BlobServiceClient

    container = azurite.new_container()
    server = start_tether_server(
        artifacts_destination=azurite.wasbs(container, "store"),
        env={**azurite.env(), **READY_ENV},
    )
    status, body = _ready(server)
    assert status == 200, body
    assert body["artifacts"] == {**body["artifacts"], "ok": True, "backend": "AzureBlobBackend"}

    with BlobServiceClient.from_connection_string(azurite.connection_string) as client:
        client.delete_container(container)
    status, body = _ready(server)
    assert status == 503, body
    assert body["artifacts"]["ok"] is False and "ContainerNotFound" in body["artifacts"]["error"]
    key = azurite.connection_string.split("AccountKey=")[1].split(";")[0]
    assert key not in str(body) and key not in server.log_text()
