"""Span content kept in both places at once: a trace whose small OTLP batches went into the
database (inline segments, `trace_span_segments`) and whose large batch went to a segment file
is read back whole and in MLflow's order by every read path (`traces/get`, `batchGet`,
`get-trace-artifact`, search by span content and by span attributes), on SQLite and
PostgreSQL; deleting the trace removes its inline segments and its file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from support import unique_name
from support.outbox import open_store
from tether.db.models import TraceSpanSegment
from traces.tracediff import SpanSpec, new_trace_id, otlp_request

START = 1_767_225_600_000_000_000
INLINE_LIMIT = 4096  # bytes of span lines per request kept in the database


def _batch(trace_hex: str, indices: range, payload: int) -> bytes:
    return otlp_request(
        [
            SpanSpec(
                trace_hex,
                f"{i + 1:016x}",
                "root" if i == 0 else f"s{i}",
                START + i * 1000,
                START + i * 1000 + 500 if i else START + 100_000,
                parent_hex=None if i == 0 else f"{1:016x}",
                attributes={"mlflow.spanInputs": json.dumps(f"word{i} " + "x" * payload)},
            )
            for i in indices
        ]
    )


def _send(http: httpx.Client, experiment_id: str, body: bytes) -> None:
    headers = {"content-type": "application/x-protobuf", "x-mlflow-experiment-id": experiment_id}
    answer = http.post("/v1/traces", content=body, headers=headers)
    assert answer.status_code == 200, answer.text


def _search(http: httpx.Client, experiment_id: str, filter_string: str) -> list[str]:
    answer = http.post(
        "/api/3.0/mlflow/traces/search",
        json={
            "locations": [
                {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}}
            ],
            "filter": filter_string,
        },
    )
    assert answer.status_code == 200, answer.text
    return [t["trace_id"] for t in answer.json().get("traces", [])]


def _segment_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.jsonl") if p.parent.name == "spans"]


def test_inline_and_file_segments_read_back_by_every_path(start_tether_server: Any) -> None:
    server = start_tether_server(env={"TETHER_TRACE_INLINE_SEGMENT_BYTES": str(INLINE_LIMIT)})
    trace_hex = new_trace_id().removeprefix("tr-")
    trace_id = f"tr-{trace_hex}"
    expected = ["root", *(f"s{i}" for i in range(1, 9))]
    with httpx.Client(base_url=server.url, timeout=60) as http:
        created = http.post("/api/2.0/mlflow/experiments/create", json={"name": unique_name()})
        experiment_id = created.json()["experiment_id"]
        # Arrival order differs from span order: small (inline), large (file), small, root.
        _send(http, experiment_id, _batch(trace_hex, range(5, 9), 20))
        _send(http, experiment_id, _batch(trace_hex, range(2, 5), 3 * INLINE_LIMIT))
        _send(http, experiment_id, _batch(trace_hex, range(1, 2), 20))
        _send(http, experiment_id, _batch(trace_hex, range(0, 1), 20))

        with open_store(server.backend_uri) as db, db.read() as session:
            inline = session.scalar(
                select(func.count()).where(TraceSpanSegment.trace_id == trace_id)
            )
        assert inline == 3
        assert len(_segment_files(Path(server.artifacts_destination))) == 1

        got = http.get("/api/3.0/mlflow/traces/get", params={"trace_id": trace_id})
        assert got.status_code == 200, got.text
        spans = got.json()["trace"]["spans"]
        assert [s["name"] for s in spans] == expected

        batch = http.get("/api/3.0/mlflow/traces/batchGet", params={"trace_ids": trace_id})
        assert batch.status_code == 200, batch.text
        assert [s["name"] for s in batch.json()["traces"][0]["spans"]] == expected

        data = http.get("/ajax-api/3.0/mlflow/get-trace-artifact", params={"request_id": trace_id})
        assert data.status_code == 200, data.text
        assert [s["name"] for s in data.json()["spans"]] == expected

        # Content in an inline segment, in the file, and nowhere.
        assert _search(http, experiment_id, "trace.text LIKE '%word7 %'") == [trace_id]
        assert _search(http, experiment_id, "trace.text LIKE '%word3 %'") == [trace_id]
        assert _search(http, experiment_id, "trace.text LIKE '%word99 %'") == []
        assert _search(http, experiment_id, "span.name = 's6'") == [trace_id]

        deleted = http.post(
            "/api/3.0/mlflow/traces/delete-traces",
            json={"experiment_id": experiment_id, "request_ids": [trace_id]},
        )
        assert deleted.status_code == 200, deleted.text
        assert deleted.json().get("traces_deleted") == 1
    with open_store(server.backend_uri) as db, db.read() as session:
        assert session.scalar(select(func.count()).select_from(TraceSpanSegment)) == 0
    assert _segment_files(Path(server.artifacts_destination)) == []
