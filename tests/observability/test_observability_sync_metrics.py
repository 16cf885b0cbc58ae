"""Sync figures in /metrics: a server with the background worker syncing into the stand-in
workspace while it throttles (429), then the counters and queue gauges a dashboard reads."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from observability.prom_scrape import scrape
from support import TetherServer, unique_name

if TYPE_CHECKING:
    from standin.identity import ManagedIdentityEndpoint
    from standin.workspace import AzuremlWorkspace
    from support import TetherServerStarter

pytestmark = pytest.mark.timeout(180)
THROTTLES = 5  # one more than the client's in-call attempts: the worker must retry it too
METRICS = [
    {"key": "loss", "value": i / 3, "timestamp": 1_700_000_000_000, "step": i} for i in range(7)
]


def _wait_synced(server: TetherServer, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        with server.rest() as rest:
            body: dict[str, Any] = rest.get("/api/2.0/tether/sync/status").json
        counts = body["entities"]
        scanned = body["outbox"]["scanned_to"] == body["outbox"]["last_id"]
        if scanned and not any(counts[b] for b in ("pending", "in_flight", "failed", "dead")):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


@pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)
def test_throttling_retries_and_synced_entities_show_in_metrics(
    start_tether_server: TetherServerStarter,
    azureml_workspace: AzuremlWorkspace,
    azureml_identity: ManagedIdentityEndpoint,
    tmp_path: Any,
) -> None:
    ws = azureml_workspace
    ws.faults(path="runs/create$", action="status", status=429, retry_after="0.1", times=THROTTLES)
    server = start_tether_server(
        extra_args=[
            "--azureml-workspace",
            ws.arm_id,
            "--expose-prometheus",
            str(tmp_path / "prom"),
        ],
        env={
            **azureml_identity.env,
            **ws.env,
            "TETHER_AZUREML_ARM_ENDPOINT": ws.arm_endpoint,
            "TETHER_SYNC_BACKOFF_BASE_SECONDS": "0.05",
            "TETHER_SYNC_BACKOFF_MAX_SECONDS": "0.5",
            "TETHER_SYNC_POLL_SECONDS": "0.2",
            "TETHER_METRICS_CACHE_SECONDS": "0",
        },
    )
    with server.rest() as rest:
        exp = rest.post("experiments/create", {"name": unique_name()}).json["experiment_id"]
        run = rest.post("runs/create", {"experiment_id": exp}).json["run"]["info"]["run_id"]
        logged = rest.post(
            "runs/log-batch",
            {"run_id": run, "params": [{"key": "lr", "value": "0.1"}], "metrics": METRICS},
        )
        assert logged.status == 200
    _wait_synced(server)
    assert [rule["hits"] for rule in ws.fault_rules()] == [THROTTLES]

    samples = scrape(server.url)
    assert samples.get("tether_azureml_throttled_total", workspace="default") == THROTTLES
    assert (
        samples.get("tether_azureml_retries_total", workspace="default") >= THROTTLES - 1
    )  # the in-call ones
    assert samples.get("tether_azureml_requests_total", workspace="default") > THROTTLES
    assert samples.get("tether_sync_failures_total", entity_type="run", workspace="default") >= 1
    assert (
        samples.get("tether_sync_dead_letters_total", entity_type="run", workspace="default") == 0
    )
    for entity_type in ("experiment", "run"):
        assert (
            samples.get(
                "tether_sync_entities_synced_total", entity_type=entity_type, workspace="default"
            )
            >= 1
        )
        assert (
            samples.get(
                "tether_sync_rows_applied_total", entity_type=entity_type, workspace="default"
            )
            >= 1
        )
        assert samples.get("tether_sync_entities", entity_type=entity_type, status="synced") >= 1
    assert samples.total("tether_sync_entities", status="pending") == 0
    assert samples.total("tether_sync_entities", status="dead") == 0
    assert samples.get("tether_sync_lag_seconds") == 0
    # Per MLflow workspace (issue 17): everything here is in `default`.
    assert samples.get("tether_sync_workspace_entities", workspace="default", status="synced") >= 2
    assert samples.total("tether_sync_workspace_entities", status="pending") == 0
    assert samples.get("tether_sync_workspace_lag_seconds", workspace="default") == 0
    # Delivery: every point once, and the requests it took (create, params, points).
    assert samples.get(
        "tether_sync_points_delivered_total", entity_type="run", workspace="default"
    ) == len(METRICS)
    assert samples.get("tether_sync_requests_total", entity_type="run", workspace="default") >= 3
    assert samples.get("tether_sync_enabled") == 1

    ready = httpx.get(f"{server.url}/ready", timeout=30, trust_env=False)
    assert ready.status_code == 200
    assert ready.json()["sync"]["azureml_reachable"] is True
