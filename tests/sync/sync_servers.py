"""Real `tether serve` processes syncing into the stand-in workspace: their environment, how
to start one, and how to read and wait on their sync status (HTTP) or run `tether sync`."""

from __future__ import annotations

import json
import subprocess
import time
from typing import TYPE_CHECKING, Any, Protocol

from support import TetherServer
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
