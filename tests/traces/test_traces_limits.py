"""Trace size limits (`TETHER_TRACE_MAX_SPANS`, `TETHER_TRACE_MAX_BYTES`): a span batch that
would take a trace beyond one is refused whole with 400 INVALID_PARAMETER_VALUE naming the
limit, and the trace keeps exactly what it had; delete-by-age bounds storage as MLflow's does
(oldest first, at most `max_traces`)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from support import unique_name
from traces.tracediff import SpanSpec, new_trace_id, otlp_request

START = 1_767_225_600_000_000_000


def _spans(trace_hex: str, first: int, count: int, size: int = 10) -> bytes:
    return otlp_request(
        [
            SpanSpec(
                trace_hex,
                f"{i + 1:016x}",
                f"s{i}",
                START + i,
                START + i + 1,
                parent_hex=None if i == 0 else f"{1:016x}",
                attributes={"mlflow.spanInputs": json.dumps("x" * size)},
            )
            for i in range(first, first + count)
        ]
    )


def _send(http: httpx.Client, experiment_id: str, body: bytes) -> httpx.Response:
    headers = {"content-type": "application/x-protobuf", "x-mlflow-experiment-id": experiment_id}
    return http.post("/v1/traces", content=body, headers=headers)


def _span_names(http: httpx.Client, trace_id: str) -> list[str]:
    answer = http.get("/api/3.0/mlflow/traces/get", params={"trace_id": trace_id})
    assert answer.status_code == 200, answer.text
    return sorted(s["name"] for s in answer.json()["trace"]["spans"])


@pytest.fixture
def limited(start_tether_server: Any) -> Any:
    env = {"TETHER_TRACE_MAX_SPANS": "5", "TETHER_TRACE_MAX_BYTES": "4096"}
    server = start_tether_server(env=env)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        created = http.post("/api/2.0/mlflow/experiments/create", json={"name": unique_name()})
        yield http, created.json()["experiment_id"]


@pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)
def test_span_count_and_size_limits_refuse_the_batch_whole(limited: Any) -> None:
    http, experiment_id = limited
    trace_hex = new_trace_id().removeprefix("tr-")
    assert _send(http, experiment_id, _spans(trace_hex, 0, 3)).status_code == 200
    refused = _send(http, experiment_id, _spans(trace_hex, 3, 3))
    assert refused.status_code == 400
    assert refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "at most 5 spans per trace (TETHER_TRACE_MAX_SPANS)" in refused.json()["message"]
    assert _span_names(http, f"tr-{trace_hex}") == ["s0", "s1", "s2"]
    assert _send(http, experiment_id, _spans(trace_hex, 3, 2)).status_code == 200
    assert _span_names(http, f"tr-{trace_hex}") == ["s0", "s1", "s2", "s3", "s4"]

    big = new_trace_id().removeprefix("tr-")
    assert _send(http, experiment_id, _spans(big, 0, 1, size=1000)).status_code == 200
    too_big = _send(http, experiment_id, _spans(big, 1, 1, size=5000))
    assert too_big.status_code == 400
    assert "(TETHER_TRACE_MAX_BYTES)" in too_big.json()["message"]
    assert _span_names(http, f"tr-{big}") == ["s0"]


@pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)
def test_delete_by_age_removes_the_oldest_first(limited: Any) -> None:
    http, experiment_id = limited
    ids = []
    for minute in range(4):  # traces at 00:00, 00:01, 00:02, 00:03
        trace_hex = new_trace_id().removeprefix("tr-")
        body = otlp_request(
            [
                SpanSpec(
                    trace_hex,
                    f"{1:016x}",
                    "root",
                    START + minute * 60 * 10**9,
                    START + minute * 60 * 10**9 + 1,
                )
            ]
        )
        assert _send(http, experiment_id, body).status_code == 200
        ids.append(f"tr-{trace_hex}")
    cutoff_ms = (START + 150 * 10**9) // 10**6  # 00:02:30: three traces are older
    deleted = http.post(
        "/api/3.0/mlflow/traces/delete-traces",
        json={"experiment_id": experiment_id, "max_timestamp_millis": cutoff_ms, "max_traces": 2},
    )
    assert deleted.json() == {"traces_deleted": 2}
    found = http.post(
        "/api/3.0/mlflow/traces/search",
        json={
            "locations": [
                {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}}
            ]
        },
    )
    assert sorted(t["trace_id"] for t in found.json()["traces"]) == sorted(ids[2:])


def _put_artifact(http: httpx.Client, path: str, content: Any) -> httpx.Response:
    return http.put(f"/api/2.0/mlflow-artifacts/artifacts/{path}", content=content)


@pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)
def test_trace_data_uploaded_through_the_proxy_is_bounded_by_the_size_limit(limited: Any) -> None:
    """A 2.x client uploads `traces.json` to the trace's artifact location through the proxy:
    the trace size limit bounds it (announced or counted), nothing is stored when refused;
    other artifacts are not bounded by it."""
    http, experiment_id = limited
    trace_dir = f"{experiment_id}/traces/{new_trace_id()}/artifacts"

    announced = _put_artifact(http, f"{trace_dir}/traces.json", b"x" * 5000)
    assert announced.status_code == 400, announced.text
    assert announced.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "(TETHER_TRACE_MAX_BYTES)" in announced.json()["message"]

    def chunked() -> Any:  # no Content-Length: counted as it arrives
        for _ in range(5):
            yield b"y" * 1000

    counted = _put_artifact(http, f"{trace_dir}/traces.json", chunked())
    assert counted.status_code == 400, counted.text
    assert "(TETHER_TRACE_MAX_BYTES)" in counted.json()["message"]
    missing = http.get(f"/api/2.0/mlflow-artifacts/artifacts/{trace_dir}/traces.json")
    assert missing.status_code == 404

    assert _put_artifact(http, f"{trace_dir}/traces.json", b"z" * 4000).status_code == 200
    stored = http.get(f"/api/2.0/mlflow-artifacts/artifacts/{trace_dir}/traces.json")
    assert stored.content == b"z" * 4000
    run_file = f"{experiment_id}/{'a' * 32}/artifacts/traces/big.json"
    assert _put_artifact(http, run_file, b"r" * 5000).status_code == 200
