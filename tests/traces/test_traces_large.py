"""A large trace (30,000 spans, about 150 MB of span data) round-trips with the server's
memory flat: sent over OTLP in batches (as a client's span exporter sends them), read back
whole through `traces/get` and `get-trace-artifact`, on a local store and on Azure Blob.

The server's peak resident set (VmHWM of its process) may grow by PEAK_GROWTH_LIMIT at
most, well below the trace's size: the answers are written span by span, never built whole.
The client streams each answer to a file and checks every span came back once, in order.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from artifacts.conftest import server_args
from support import unique_name
from support.procs import peak_rss
from traces.tracediff import SpanSpec, new_trace_id, otlp_request

SPANS = 30_000
PER_REQUEST = 500
PAYLOAD = 5_000  # characters of span input each: 30,000 spans = 150 MB
PEAK_GROWTH_LIMIT = 80 * 1024**2


def _batch(trace_hex: str, first: int) -> bytes:
    start = 1_767_225_600_000_000_000  # 2026-01-01
    specs = []
    for i in range(first, min(SPANS, first + PER_REQUEST)):
        filler = f"{i:08d}" * (PAYLOAD // 8)
        specs.append(
            SpanSpec(
                trace_hex,
                f"{i + 1:016x}",
                "root" if i == 0 else f"step-{i}",
                start + i * 1000,
                start + i * 1000 + 500 if i else start + SPANS * 1000,
                parent_hex=None if i == 0 else f"{1:016x}",
                attributes={"mlflow.spanInputs": json.dumps(filler)},
            )
        )
    return otlp_request(specs)


def _download(http: httpx.Client, url: str, params: dict[str, str], into: Path) -> int:
    size = 0
    with http.stream("GET", url, params=params) as answer, into.open("wb") as out:
        assert answer.status_code == 200, answer.read()
        for chunk in answer.iter_bytes():
            out.write(chunk)
            size += len(chunk)
    return size


def _span_names(spans: list[dict[str, Any]]) -> list[str]:
    return [s["name"] for s in spans]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)
@pytest.mark.parametrize("kind", ["local", "azurite"])
def test_a_large_trace_round_trips_in_flat_memory(
    kind: str, start_tether_server: Any, request: pytest.FixtureRequest
) -> None:
    extra_args, env = server_args(kind, request)
    server = start_tether_server(extra_args=extra_args, env=env)
    pid = server.process.pid
    trace_hex = new_trace_id().removeprefix("tr-")
    trace_id = f"tr-{trace_hex}"
    expected = ["root", *(f"step-{i}" for i in range(1, SPANS))]
    with httpx.Client(base_url=server.url, timeout=300) as http:
        created = http.post(
            "/api/2.0/mlflow/experiments/create", json={"name": unique_name("large")}
        )
        experiment_id = created.json()["experiment_id"]
        baseline = peak_rss(pid)
        for first in range(0, SPANS, PER_REQUEST):
            sent = http.post(
                "/v1/traces",
                content=_batch(trace_hex, first),
                headers={
                    "content-type": "application/x-protobuf",
                    "x-mlflow-experiment-id": experiment_id,
                },
            )
            assert sent.status_code == 200, sent.text
        with tempfile.TemporaryDirectory() as tmp:
            full = Path(tmp) / "trace.json"
            size = _download(http, "/api/3.0/mlflow/traces/get", {"trace_id": trace_id}, full)
            assert size > SPANS * PAYLOAD
            trace = json.loads(full.read_text())["trace"]
            assert trace["trace_info"]["state"] == "OK"
            assert _span_names(trace["spans"]) == expected
            del trace
            data = Path(tmp) / "traces.json"
            size = _download(
                http, "/ajax-api/3.0/mlflow/get-trace-artifact", {"request_id": trace_id}, data
            )
            assert size > SPANS * PAYLOAD
            assert _span_names(json.loads(data.read_text())["spans"]) == expected
        growth = peak_rss(pid) - baseline
    assert growth < PEAK_GROWTH_LIMIT, f"server peak RSS grew by {growth / 1024**2:.0f} MiB"
