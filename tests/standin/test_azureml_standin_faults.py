"""Fault injection (docs/azureml-protocol.md §7.1, §7.3, §8.2 item 6) and the request log."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from standin.helpers import AzClient, unique
from standin.workspace import AzuremlWorkspace

CREATE = r"/api/2\.0/mlflow/runs/create$"


def _runs_in(workspace: AzuremlWorkspace, experiment_id: str) -> list[dict[str, Any]]:
    """Runs as the inner MLflow has them (what was really applied)."""
    response = httpx.post(
        f"{workspace.mlflow_url}/api/2.0/mlflow/runs/search",
        json={"experiment_ids": [experiment_id], "max_results": 100},
    )
    runs: list[dict[str, Any]] = response.json().get("runs", [])
    return runs


def test_5xx_then_success_and_nothing_applied_meanwhile(
    az: AzClient, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    experiment_id = az.experiment()
    (rule,) = ws.faults(path=CREATE, method="POST", times=2, action="status", status=503)
    mark = ws.mark()
    body = {"experiment_id": experiment_id}
    first, second = az.post("runs/create", body), az.post("runs/create", body)
    for response in (first, second):
        assert response.status_code == 503
        assert response.json()["Error"]["Code"] == "ServiceUnavailable"
        assert "retry-after" not in response.headers
    assert _runs_in(ws, experiment_id) == []
    assert az.post("runs/create", body).status_code == 200
    log = ws.requests(since=mark, path="runs/create")
    assert [(e["status"], e["fault"]) for e in log] == [
        (503, "status:503"),
        (503, "status:503"),
        (200, None),
    ]
    assert len(_runs_in(ws, experiment_id)) == 1
    assert [r["hits"] for r in ws.fault_rules() if r["id"] == rule["id"]] == [2]


@pytest.mark.parametrize("retry_after", ["7", None])
def test_429_with_and_without_retry_after(
    az: AzClient, azureml_workspace: AzuremlWorkspace, retry_after: str | None
) -> None:
    ws = azureml_workspace
    run_id = az.run()["info"]["run_id"]
    ws.faults(path="runs/log-batch$", action="status", status=429, retry_after=retry_after)
    metrics = [{"key": "m", "value": 1.0, "timestamp": 1, "step": 0}]
    throttled = az.post("runs/log-batch", {"run_id": run_id, "metrics": metrics})
    assert throttled.status_code == 429
    assert throttled.headers.get("retry-after") == retry_after
    body = throttled.json()
    assert body["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert body["Error"]["Code"] == "TooManyRequests"
    assert az.post("runs/log-batch", {"run_id": run_id, "metrics": metrics}).status_code == 200


def test_fault_shapes_follow_the_route_family(
    az: AzClient, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    run = az.run()
    ws.faults(path="/history/", action="status", status=504)
    history = az.http.get(az.artifacts_url(run))
    assert history.status_code == 504
    assert history.json()["error"]["code"] == "GatewayTimeout"
    ws.faults(path=r"^/subscriptions/", action="status", status=500, body="")
    arm = az.http.get(ws.scope, params={"api-version": "1"})
    assert (arm.status_code, arm.content) == (500, b"")


def test_dropped_connection_applies_nothing(
    az: AzClient, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    experiment_id = az.experiment()
    ws.faults(path=CREATE, action="drop")
    mark = ws.mark()
    with pytest.raises(httpx.TransportError):  # RemoteProtocolError: no response at all
        az.post("runs/create", {"experiment_id": experiment_id})
    assert _runs_in(ws, experiment_id) == []
    (entry,) = ws.requests(since=mark)
    assert entry["dropped"] is True and entry["status"] is None and entry["fault"] == "drop"
    # The client (and the server) carry on: the next request is served normally.
    assert az.post("runs/create", {"experiment_id": experiment_id}).status_code == 200


def test_response_lost_after_the_write_committed(
    az: AzClient, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    experiment_id = az.experiment()
    source_tag = unique("src")
    ws.faults(path=CREATE, action="lost_response")
    mark = ws.mark()
    body = {"experiment_id": experiment_id, "tags": [{"key": "tether.source", "value": source_tag}]}
    with pytest.raises(httpx.TransportError):
        az.post("runs/create", body)
    (applied,) = _runs_in(ws, experiment_id)  # the run exists although the client never heard
    (entry,) = ws.requests(since=mark)
    assert (entry["status"], entry["dropped"], entry["fault"]) == (200, True, "lost_response")
    # What a careful worker does next (§7.3): look for its source tag before retrying.
    found = az.ok(
        "POST",
        "runs/search",
        {
            "experiment_ids": [experiment_id],
            "filter": f"tags.`tether.source` = '{source_tag}'",
            "max_results": 10,
        },
    )
    assert [r["info"]["run_id"] for r in found["runs"]] == [applied["info"]["run_id"]]


def test_lost_response_on_model_version_create(
    az: AzClient, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    run_id = az.run()["info"]["run_id"]
    name = unique("model")
    az.ok("POST", "registered-models/create", {"name": name})
    ws.faults(path="model-versions/create$", action="lost_response")
    with pytest.raises(httpx.TransportError):
        az.post(
            "model-versions/create",
            {"name": name, "source": f"runs:/{run_id}/m", "run_id": run_id},
        )
    versions = az.ok("GET", "model-versions/search", {"filter": f"name = '{name}'"})
    assert [v["version"] for v in versions["model_versions"]] == ["1"]
    assert ws.requests(path="model-versions/create$")[-1]["status"] == 200


def test_delay_then_normal_handling(az: AzClient, azureml_workspace: AzuremlWorkspace) -> None:
    ws = azureml_workspace
    experiment_id = az.experiment()
    ws.faults(path=CREATE, action="delay", seconds=3.0)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        az.http.post(f"{az.api}/runs/create", json={"experiment_id": experiment_id}, timeout=0.2)
    assert time.monotonic() - started < 2.5  # gave up before the stand-in answered
    # The timed-out request was still applied: a client timeout is an ambiguous outcome.
    deadline = time.monotonic() + 20
    while not _runs_in(ws, experiment_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(_runs_in(ws, experiment_id)) == 1


def test_rules_match_method_and_path_and_reset_clears_them(
    az: AzClient, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    ws.faults(path="experiments/", method="POST", times=None, action="status", status=500)
    assert az.get("experiments/get", {"experiment_id": "0"}).status_code == 200
    assert az.post("experiments/search", {"max_results": 1}).status_code == 500
    assert az.post("experiments/search", {"max_results": 1}).status_code == 500
    ws.reset()
    assert ws.fault_rules() == []
    assert az.post("experiments/search", {"max_results": 1}).status_code == 200


def test_bad_fault_plans_are_refused(azureml_workspace: AzuremlWorkspace) -> None:
    with pytest.raises(AssertionError, match="unknown fault action"):
        azureml_workspace.faults(action="explode")
    with pytest.raises(AssertionError):
        azureml_workspace.faults(action="drop", path="(unclosed")


def test_request_log_counts_calls(az: AzClient, azureml_workspace: AzuremlWorkspace) -> None:
    ws = azureml_workspace
    mark = ws.mark()
    experiment_id = az.experiment()
    run_id = az.run(experiment_id)["info"]["run_id"]
    az.ok("GET", "runs/get", {"run_id": run_id})
    log = ws.requests(since=mark)
    assert [e["path"].rsplit("/mlflow/", 1)[1] for e in log] == [
        "experiments/create",
        "runs/create",
        "runs/get",
    ]
    assert log[1]["json"] == {"experiment_id": experiment_id}
    assert log[2]["query"] == f"run_id={run_id}"
    assert all(e["auth"] == "ok" and e["family"] == "mlflow" for e in log)
    assert ws.requests(since=mark, method="POST", path="runs/") == [log[1]]
    assert [e["seq"] for e in log] == sorted({e["seq"] for e in log})


def test_every_nth_request_rules_keep_their_own_rhythm(
    az: AzClient, azureml_workspace: AzuremlWorkspace
) -> None:
    """ "A 429 every 7th request and a 503 every 11th" (the throttling benchmark): each rule
    counts every request it matches, also the ones the other rule answered."""
    ws = azureml_workspace
    ws.faults(
        {
            "path": "experiments/get$",
            "every": 7,
            "action": "status",
            "status": 429,
            "retry_after": "1",
            "times": None,
        },
        {"path": "experiments/get$", "every": 11, "action": "status", "status": 503, "times": None},
    )
    statuses = [az.get("experiments/get", {"experiment_id": "0"}).status_code for _ in range(22)]
    expected = [429 if n % 7 == 0 else 503 if n % 11 == 0 else 200 for n in range(1, 23)]
    assert statuses == expected
    with pytest.raises(AssertionError, match="every"):
        ws.faults(action="drop", every=0)


def test_latency_is_injected_before_every_azure_request(
    az: AzClient, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    ws.latency(400)
    started = time.monotonic()
    assert az.get("experiments/get", {"experiment_id": "0"}).status_code == 200
    assert time.monotonic() - started >= 0.4
    # Also a fault's answer and a refused token wait: the round trip comes first.
    ws.faults(path="experiments/get$", action="status", status=503)
    started = time.monotonic()
    assert az.get("experiments/get", {"experiment_id": "0"}).status_code == 503
    assert time.monotonic() - started >= 0.4
    ws.reset()  # back to the start-up value: no latency
    assert ws.quirks()["latency_ms"] == 0.0
    # The control API never waits.
    started = time.monotonic()
    ws.quirks(latency_ms=5000.0)
    ws.mark()
    assert time.monotonic() - started < 4.0


def test_requests_are_counted_by_kind(az: AzClient, azureml_workspace: AzuremlWorkspace) -> None:
    ws = azureml_workspace
    run_id = az.run()["info"]["run_id"]
    mark = ws.mark()
    metrics = [{"key": "m", "value": i, "timestamp": 1, "step": i} for i in range(30)]
    params = [{"key": f"p{i}", "value": "v"} for i in range(3)]
    tags = [{"key": "t", "value": "v"}]
    az.ok("POST", "runs/log-batch", {"run_id": run_id, "metrics": metrics, "params": params})
    az.ok("POST", "runs/log-batch", {"run_id": run_id, "tags": tags})
    az.ok("POST", "runs/log-metric", {"run_id": run_id, "key": "x", "value": 1, "timestamp": 1})
    az.ok("POST", "runs/set-tag", {"run_id": run_id, "key": "u", "value": "w"})
    ws.faults(path="runs/log-batch$", action="status", status=429)
    assert az.post("runs/log-batch", {"run_id": run_id, "metrics": metrics}).status_code == 429
    az.ok("GET", "runs/get", {"run_id": run_id})

    counts = ws.counts(mark)

    assert {k: v for k, v in counts.items() if k != "last_seq"} == {
        "requests": 6,
        "applied": 5,
        "throttled": 1,
        "unavailable": 0,
        "metric_requests": 2,
        "metric_points": 31,
        "param_requests": 1,
        "params": 3,
        "tag_requests": 2,
        "tags": 2,
    }
    entries = ws.requests(mark, path="runs/log-batch$", brief=True)
    assert [e["counts"] for e in entries] == [
        {"run_id": run_id, "metrics": 30, "params": 3, "tags": 0},
        {"run_id": run_id, "metrics": 0, "params": 0, "tags": 1},
        {"run_id": run_id, "metrics": 30, "params": 0, "tags": 0},
    ]
    assert all("json" not in e and e["done"] >= e["time"] for e in entries)
