"""Spans over OTLP (`/v1/traces`) and reading them back (`traces/get`, `traces/batchGet`,
`get-trace-artifact`): Tether against the reference `mlflow server`, request by request.

Bodies are real OTLP protobuf (or OTLP JSON) requests; both servers get the same bytes, each
with its own experiment id in `x-mlflow-experiment-id`.

Deliberate deviations asserted here:
- `traces/get` of a trace whose spans are not in the tracking store (the client uploaded
  `traces.json`): MLflow answers 500 INTERNAL_ERROR; Tether 400 INVALID_STATE saying where the
  spans are.
- `traces/get` of an incomplete trace without `allow_partial`: MLflow retries for 3 s in the
  request before answering 404; Tether answers the same 404 at once.
"""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

import pytest

from compat.diff import assert_error, assert_same
from traces.tracediff import SpanSpec, TracePair, otlp_request, trace_info

BASE = 1_767_323_045_000_000_000  # 2026-01-02T03:04:05Z in ns


def _hex(n: int) -> str:
    return uuid.uuid4().hex[: n * 2]


def _tree(trace_hex: str, **root_attrs: Any) -> list[SpanSpec]:
    """A root with two children (one with a grandchild), in the order an SDK ends them."""
    root, a, b, c = (_hex(8) for _ in range(4))
    return [
        SpanSpec(
            trace_hex,
            c,
            "grandchild",
            BASE + 3_000_000,
            BASE + 4_000_000,
            parent_hex=b,
            attributes={"mlflow.spanType": "TOOL", "n": 1.5, "flags": [True, False]},
        ),
        SpanSpec(
            trace_hex,
            b,
            "second",
            BASE + 2_000_000,
            BASE + 5_000_000,
            parent_hex=root,
            attributes={"mlflow.spanType": "LLM", "mlflow.spanInputs": {"messages": [1]}},
            status=2,
            message="boom",
            events=[("exception", BASE + 4_500_000, {"exception.message": "boom", "n": 2})],
        ),
        SpanSpec(
            trace_hex,
            a,
            "first",
            BASE + 1_000_000,
            BASE + 1_500_000,
            parent_hex=root,
            attributes={"mlflow.spanType": "RETRIEVER", "json": '{"already": "encoded"}'},
        ),
        SpanSpec(
            trace_hex,
            root,
            "root",
            BASE,
            BASE + 6_000_000,
            attributes={
                "mlflow.spanType": "AGENT",
                "mlflow.spanInputs": {"question": "what?"},
                "mlflow.spanOutputs": "an answer",
                "mlflow.traceTag.team": "search",
                "session.id": "session-7",
                **root_attrs,
            },
        ),
    ]


def _trace_id(trace_hex: str) -> str:
    return f"tr-{trace_hex}"


def _sent(pair: TracePair, exp: Any, body: bytes, **kwargs: Any) -> None:
    ref, tet = pair.otlp(exp, body, **kwargs)
    assert (ref.status, tet.status) == (200, 200), (ref.text, tet.text)
    assert ref.text == tet.text == ""


def test_spans_create_the_trace(pair: TracePair) -> None:
    exp = pair.experiment()
    trace_hex = _hex(16)
    _sent(pair, exp, otlp_request(_tree(trace_hex), resource={"service.name": "agent", "k": 1}))
    trace_id = _trace_id(trace_hex)
    info = pair.same3("GET", f"traces/{trace_id}", status=200)["trace"]["trace_info"]
    assert info["tags"]["mlflow.trace.spansLocation"] == "TRACKING_STORE"
    assert info["tags"]["team"] == "search"
    assert info["state"] == "OK"
    trace = pair.same3("GET", "traces/get", {"trace_id": trace_id}, status=200)["trace"]
    assert [s["name"] for s in trace["spans"]] == ["root", "first", "second", "grandchild"]
    pair.same3("GET", "traces/batchGet", {"trace_ids": [trace_id]}, status=200)
    out = pair.send("GET", "/ajax-api/3.0/mlflow/get-trace-artifact", {"request_id": trace_id})
    assert out.ref.status == out.tet.status == 200
    assert json.loads(out.tet.text) == json.loads(out.ref.text)
    assert json.loads(out.tet.text)["spans"][0]["name"] == "root"


def test_spans_in_several_requests_then_start_trace(pair: TracePair) -> None:
    """The stock client's order: spans in batches as they end, then start_trace."""
    exp = pair.experiment()
    trace_hex = _hex(16)
    spans = _tree(trace_hex)
    _sent(pair, exp, otlp_request(spans[:2]))
    partial = pair.same3("GET", f"traces/{_trace_id(trace_hex)}", status=200)
    assert partial["trace"]["trace_info"]["state"] == "IN_PROGRESS"
    _sent(pair, exp, otlp_request(spans[2:]))
    stats = json.dumps({"total_size_bytes": 10, "num_spans": 4})
    body = trace_info(
        _trace_id(trace_hex),
        exp,
        metadata={"mlflow.trace.sizeStats": stats, "mlflow.traceInputs": "q"},
        tags={"mlflow.traceName": "root"},
        request_preview="q",
        response_preview="a",
    )
    out = pair.v3("POST", "traces", body)
    assert out.ref.status == out.tet.status == 200
    tags = out.tet.json["trace"]["trace_info"]["tags"]
    assert tags["mlflow.trace.spansLocation"] == "TRACKING_STORE"  # the client skips its upload
    pair.same3("GET", "traces/get", {"trace_id": _trace_id(trace_hex)}, status=200)
    pair.same3("GET", "traces/batchGet", {"trace_ids": [_trace_id(trace_hex)]}, status=200)


def test_start_trace_then_spans(pair: TracePair) -> None:
    exp = pair.experiment()
    trace_hex = _hex(16)
    pair.start(exp, _trace_id(trace_hex), state="IN_PROGRESS", execution_duration=None)
    _sent(pair, exp, otlp_request(_tree(trace_hex)))
    pair.same3("GET", f"traces/{_trace_id(trace_hex)}", status=200)
    pair.same3("GET", "traces/get", {"trace_id": _trace_id(trace_hex)}, status=200)


def test_incomplete_trace(pair: TracePair) -> None:
    exp = pair.experiment()
    trace_hex = _hex(16)
    stats = json.dumps({"num_spans": 5})
    pair.start(exp, _trace_id(trace_hex), metadata={"mlflow.trace.sizeStats": stats})
    _sent(pair, exp, otlp_request(_tree(trace_hex)))
    out = pair.v3("GET", "traces/get", {"trace_id": _trace_id(trace_hex)})
    assert_error(out, 404, "RESOURCE_DOES_NOT_EXIST")
    pair.same3("GET", "traces/get", {"trace_id": _trace_id(trace_hex), "allow_partial": "true"})
    assert pair.same3("GET", "traces/batchGet", {"trace_ids": [_trace_id(trace_hex)]}) == {}


def test_many_traces_in_one_request_and_json_encoding(pair: TracePair) -> None:
    exp = pair.experiment()
    first, second = _hex(16), _hex(16)
    spans = _tree(first) + _tree(second)
    gz = gzip.compress(otlp_request(spans))
    _sent(pair, exp, gz, headers={"content-encoding": "gzip"})
    ids = [_trace_id(first), _trace_id(second)]
    pair.same3("GET", "traces/batchGet", {"trace_ids": ids}, status=200)
    # OTLP/JSON: ids in hex, enums by number, camelCase fields.
    third = _hex(16)
    span = {
        "traceId": third,
        "spanId": _hex(8),
        "name": "json-root",
        "startTimeUnixNano": str(BASE),
        "endTimeUnixNano": str(BASE + 10),
        "attributes": [{"key": "x", "value": {"intValue": "7"}}],
        "status": {"code": 1},
    }
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    _sent(pair, exp, json.dumps(body).encode(), content_type="application/json")
    pair.same3("GET", "traces/get", {"trace_id": _trace_id(third)}, status=200)


def test_otlp_refusals(pair: TracePair) -> None:
    exp = pair.experiment()
    good = otlp_request(_tree(_hex(16)))
    cases: list[tuple[bytes, dict[str, str], str]] = [
        (good, {"content-type": "text/plain"}, "application/x-protobuf"),
        (b"\xff\xfe not protobuf", {}, "application/x-protobuf"),
        (b"{not json", {}, "application/json"),
        (otlp_request([]), {}, "application/x-protobuf"),
        (good, {"content-encoding": "br"}, "application/x-protobuf"),
        (b"not gzip", {"content-encoding": "gzip"}, "application/x-protobuf"),
    ]
    for body, headers, content_type in cases:
        merged = {"content-type": content_type, **headers}
        ref, tet = pair.otlp(exp, body, content_type=merged.pop("content-type"), headers=merged)
        assert (ref.status, ref.json) == (tet.status, tet.json), (headers, ref.text, tet.text)
    ref, tet = pair.otlp(None, good)  # no experiment header
    assert ref.status == tet.status == 422
    ref, tet = pair.otlp("987654321", good)  # no such experiment
    assert (ref.status, ref.json["error_code"]) == (tet.status, tet.json["error_code"])
    assert tet.status == 404


@pytest.mark.parametrize("route", ["traces/get", "traces/batchGet"])
def test_read_errors(pair: TracePair, route: str) -> None:
    if route == "traces/get":
        out = pair.v3("GET", route, {"trace_id": "tr-00000000000000000000000000000000"})
        assert_error(out, 404, "RESOURCE_DOES_NOT_EXIST")
        assert_error(pair.v3("GET", route, {}), 400, "INVALID_PARAMETER_VALUE")
    else:
        assert pair.same3("GET", route, {"trace_ids": ["tr-missing"]}, status=200) == {}


def test_artifact_mode_trace(pair: TracePair) -> None:
    """A client without span logging uploads traces.json itself: served as uploaded."""
    exp = pair.experiment()
    trace_id = pair.start(exp)
    location = pair.same3("GET", f"traces/{trace_id}")["trace"]["trace_info"]["tags"]
    del location
    data = {"spans": [{"name": "uploaded", "attributes": {"mlflow.traceRequestId": '"x"'}}]}
    for name, rest in pair.rest.items():
        exp_id = exp.side(name)
        path = (
            f"/api/2.0/mlflow-artifacts/artifacts/{exp_id}/traces/{trace_id}/artifacts/traces.json"
        )
        assert rest.request("PUT", path, content=json.dumps(data).encode()).status == 200
    out = pair.send("GET", "/ajax-api/2.0/mlflow/get-trace-artifact", {"request_id": trace_id})
    assert out.ref.status == out.tet.status == 200
    assert json.loads(out.tet.text) == json.loads(out.ref.text) == data
    out = pair.v3("GET", "traces/get", {"trace_id": trace_id})
    assert (out.ref.status, out.tet.status) == (500, 400)
    assert out.tet.error_code == "INVALID_STATE"
    missing = pair.send("GET", "/ajax-api/2.0/mlflow/get-trace-artifact", {})
    assert_same(missing)
