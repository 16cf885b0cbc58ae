"""Real `tether serve` processes syncing into the stand-in workspace: their environment, how
to start one, and how to read and wait on their sync status (HTTP) or run `tether sync`."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from support import TetherServer
from support.rest import MlflowRest
from support.servers import tether_command

if TYPE_CHECKING:
    from standin.identity import ManagedIdentityEndpoint
    from standin.workspace import AzuremlWorkspace
    from support import TetherServerStarter


def sync_env(ws: AzuremlWorkspace, identity: ManagedIdentityEndpoint) -> dict[str, str]:
    return {
        **identity.env,
        **ws.env,
        "TETHER_AZUREML_ARM_ENDPOINT": ws.arm_endpoint,
        "TETHER_SYNC_BACKOFF_BASE_SECONDS": "0.05",
        "TETHER_SYNC_BACKOFF_MAX_SECONDS": "0.5",
        "TETHER_SYNC_POLL_SECONDS": "0.2",
        "TETHER_SYNC_LEASE_SECONDS": "2",
        "TETHER_DEPLOY_POLL_SECONDS": "0.3",
    }


def start_synced(
    start: TetherServerStarter,
    ws: AzuremlWorkspace,
    identity: ManagedIdentityEndpoint,
    backend_uri: str | None = None,
    *,
    artifacts_destination: str | None = None,
) -> TetherServer:
    """`tether serve --azureml-workspace` on the stand-in (a fresh store unless `backend_uri`)."""
    return start(
        backend_uri,
        extra_args=["--azureml-workspace", ws.arm_id],
        env=sync_env(ws, identity),
        artifacts_destination=artifacts_destination,
    )


class SyncedServerStarter(Protocol):
    """The `start_synced_server` fixture (tests/sync/conftest.py)."""

    def __call__(self, backend_uri: str | None = None) -> TetherServer: ...


def sync_status(server: TetherServer, entity: str | None = None) -> dict[str, Any]:
    with server.rest() as rest:
        response = rest.get("/api/2.0/tether/sync/status", {"entity": entity} if entity else None)
    assert response.status == 200, response.text
    body: dict[str, Any] = response.json
    return body


def wait_synced(server: TetherServer, timeout: float = 60.0) -> dict[str, Any]:
    """Until every outbox row was scanned and every entity is synced."""
    deadline = time.monotonic() + timeout
    while True:
        body = sync_status(server)
        counts = body["entities"]
        done = body["outbox"]["scanned_to"] == body["outbox"]["last_id"] and not any(
            counts[b] for b in ("pending", "in_flight", "failed", "dead")
        )
        if done:
            return body
        assert time.monotonic() < deadline, f"sync did not finish: {json.dumps(body)}"
        time.sleep(0.2)


def run_tether(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    from support.servers import clean_env

    return subprocess.run(
        [*tether_command(), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(env),
    )


class InWorkspace:
    """A server whose REST client sends X-MLFLOW-WORKSPACE (what `mlflow.set_workspace`
    does), for the workload helpers."""

    def __init__(self, server: TetherServer, workspace: str) -> None:
        self.server = server
        self.workspace = workspace

    def rest(self, prefix: str | None = None) -> MlflowRest:
        with self.server.rest(prefix) as plain:
            return plain.in_workspace(self.workspace)


def in_workspace(server: TetherServer, workspace: str) -> TetherServer:
    return cast(TetherServer, InWorkspace(server, workspace))


def start_two_workspaces(
    start: TetherServerStarter,
    ws_a: AzuremlWorkspace,
    ws_b: AzuremlWorkspace,
    identity: ManagedIdentityEndpoint,
    tmp_path: Path,
    backend_uri: str | None = None,
    env: dict[str, str] | None = None,
) -> TetherServer:
    """`tether serve --enable-workspaces` syncing `default` into `ws_a`, trusting both
    stand-ins' CAs (each has its own), with team-b's named credential `TEAMB` (a user-assigned
    managed identity), Prometheus exposed and metrics read on every scrape."""
    bundle = tmp_path / "cas.pem"
    bundle.write_text(Path(ws_a.ca_bundle).read_text() + Path(ws_b.ca_file).read_text())
    return start(
        backend_uri,
        extra_args=[
            "--enable-workspaces",
            "--azureml-workspace",
            ws_a.arm_id,
            "--expose-prometheus",
            str(tmp_path / "prom"),
        ],
        env={
            **sync_env(ws_a, identity),
            "SSL_CERT_FILE": str(bundle),
            "REQUESTS_CA_BUNDLE": str(bundle),
            "TETHER_AZURE_CREDENTIAL_TEAMB_CLIENT_ID": identity.client_id,
            "TETHER_METRICS_CACHE_SECONDS": "0",
            **(env or {}),
        },
        artifacts_destination=str(tmp_path / "artifacts"),
    )
