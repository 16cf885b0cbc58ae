"""Assessments (feedback, expectations) and the v2 legacy trace routes (MLflow 2.x clients):
Tether against the reference `mlflow server`, request by request."""

from __future__ import annotations

from typing import Any

import pytest

from compat.diff import assert_error
from support.compare import differences
from traces.tracediff import TracePair, assert_same

T0 = "2026-01-03T00:00:00Z"


def _feedback(value: Any, **extra: Any) -> dict[str, Any]:
    return {
        "assessment_name": "quality",
        "source": {"source_type": "LLM_JUDGE", "source_id": "gpt"},
        "create_time": T0,
        "last_update_time": T0,
        "feedback": {"value": value},
        **extra,
    }


def _expectation(value: Any, **extra: Any) -> dict[str, Any]:
    return {
        "assessment_name": "expected",
        "source": {"source_type": "HUMAN", "source_id": "me"},
        "create_time": T0,
        "last_update_time": T0,
        "expectation": {"value": value},
        **extra,
    }


@pytest.mark.parametrize(
    "body",
    [
        _feedback(0.8, rationale="good enough", metadata={"k": "v"}),
        _feedback(5),
        _feedback(True),
        _feedback("yes"),
        _feedback(None),
        _feedback({"a": [1, "b", None]}),
        _feedback([1, 2]),
        _feedback(
            None,
            rationale="failed",
        )
        | {"feedback": {"error": {"error_code": "E", "error_message": "m", "stack_trace": "s"}}},
        _expectation("42"),
        _expectation(7),
        _expectation({"nested": {"list": [1, 2]}}),
        _expectation(["a"]),
        _expectation("x", rationale="ignored for expectations", span_id="abc"),
        {
            "assessment_name": "serialized",
            "source": {"source_type": "CODE"},
            "create_time": T0,
            "last_update_time": T0,
            "expectation": {
                "serialized_value": {"serialization_format": "JSON_FORMAT", "value": '{"x": 1}'}
            },
        },
        _feedback(1, source={"source_type": "HUMAN"}),
    ],
)
def test_create_and_get(pair: TracePair, body: dict[str, Any]) -> None:
    exp = pair.experiment()
    trace_id = pair.start(exp)
    out = pair.v3("POST", f"traces/{trace_id}/assessments", {"assessment": body})
    assert_same(out, 200)
    assessment = pair.register(
        "assessment",
        out.ref.json["assessment"]["assessment_id"],
        out.tet.json["assessment"]["assessment_id"],
    )
    got = pair.same("GET", ("/api/3.0/mlflow/traces/", trace_id, "/assessments/", assessment))
    assert got["assessment"] == pair.norm["tet"](out.tet.json)["assessment"]
    info = pair.same3("GET", f"traces/{trace_id}", status=200)
    assert info["trace"]["trace_info"]["assessments"] == [got["assessment"]]


def test_get_update_delete_and_overrides(pair: TracePair) -> None:
    exp = pair.experiment()
    trace_id = pair.start(exp)
    first = pair.assessment(trace_id, _feedback(0.2, rationale="r1", metadata={"a": "1"}))
    path = ("/api/3.0/mlflow/traces/", trace_id, "/assessments/", first)
    pair.same("GET", path, status=200)
    update = {
        "assessment": {"assessment_name": "renamed", "feedback": {"value": 0.9}, "rationale": "r2"},
        "update_mask": "assessmentName,feedback,rationale",
    }
    updated = pair.same("PATCH", path, update, status=200)
    assert updated["assessment"]["feedback"]["value"] == 0.9
    metadata = {"assessment": {"metadata": {"b": "2"}}, "update_mask": "metadata"}
    merged = pair.same("PATCH", path, metadata, status=200)
    assert merged["assessment"]["metadata"] == {"a": "1", "b": "2"}
    wrong_kind = {"assessment": {"expectation": {"value": 1}}, "update_mask": "expectation"}
    assert_error(pair.send("PATCH", path, wrong_kind), 400, "INVALID_PARAMETER_VALUE")
    # An override marks the first invalid; deleting it restores the first.
    second = pair.assessment(trace_id, _feedback(1.0, overrides=first))
    pair.same("GET", path, status=200)
    assert not pair.same("GET", path)["assessment"]["valid"]
    second_path = ("/api/3.0/mlflow/traces/", trace_id, "/assessments/", second)
    pair.same("DELETE", second_path, status=200)
    assert pair.same("GET", path)["assessment"]["valid"]
    pair.same("DELETE", second_path, status=200)  # idempotent
    out = pair.send("GET", second_path)
    assert_error(out, 404, "RESOURCE_DOES_NOT_EXIST")


def test_errors(pair: TracePair) -> None:
    exp = pair.experiment()
    trace_id = pair.start(exp)
    missing = "tr-00000000000000000000000000000000"
    out = pair.v3("POST", f"traces/{missing}/assessments", {"assessment": _feedback(1)})
    assert_error(out, 404, "RESOURCE_DOES_NOT_EXIST")
    out = pair.v3("GET", f"traces/{missing}/assessments/a-1")
    assert_error(out, 404, "RESOURCE_DOES_NOT_EXIST")
    out = pair.v3("GET", f"traces/{trace_id}/assessments/a-1")
    assert_error(out, 404, "RESOURCE_DOES_NOT_EXIST")
    out = pair.v3("POST", f"traces/{trace_id}/assessments", {})
    assert_error(out, 400, "INVALID_PARAMETER_VALUE")
    override_missing = _feedback(1, overrides="a-00000000000000000000000000000000")
    out = pair.v3("POST", f"traces/{trace_id}/assessments", {"assessment": override_missing})
    assert_error(out, 404, "RESOURCE_DOES_NOT_EXIST")
    out = pair.v3("PATCH", f"traces/{trace_id}/assessments/a-1", {"assessment": {}})
    assert_error(out, 400, "INVALID_PARAMETER_VALUE")
    no_value = {**_expectation("x"), "expectation": {}}
    out = pair.v3("POST", f"traces/{trace_id}/assessments", {"assessment": no_value})
    assert_error(out, 400, "INVALID_PARAMETER_VALUE")
    null_value = _expectation(None)
    out = pair.v3("POST", f"traces/{trace_id}/assessments", {"assessment": null_value})
    assert_error(out, 400, "INVALID_PARAMETER_VALUE")


def test_v2_start_end_search_and_tags(pair: TracePair) -> None:
    exp = pair.experiment()
    body = {
        "experiment_id": exp,
        "timestamp_ms": 1_767_323_045_000,
        "request_metadata": [{"key": "mlflow.traceInputs", "value": "in"}],
        "tags": [{"key": "mlflow.traceName", "value": "legacy"}, {"key": "t", "value": "1"}],
    }
    out = pair.send("POST", "traces", body)
    assert out.ref.status == out.tet.status == 200, (out.ref.text, out.tet.text)
    request = pair.register(
        "trace", out.ref.json["trace_info"]["request_id"], out.tet.json["trace_info"]["request_id"]
    )
    assert out.ref.status == out.tet.status == 200
    diffs = differences(pair.norm["tet"](out.tet.json), pair.norm["ref"](out.ref.json))
    assert not diffs, diffs
    end = {
        "timestamp_ms": 1_767_323_046_500,
        "status": "OK",
        "request_metadata": [{"key": "mlflow.traceOutputs", "value": "out"}],
        "tags": [{"key": "mlflow.traceName", "value": "renamed"}, {"key": "u", "value": "2"}],
    }
    ended = pair.same("PATCH", ("traces/", request), end, status=200)
    assert ended["trace_info"]["execution_time_ms"] == 1500
    pair.same("GET", ("traces/", request, "/info"), status=200)
    pair.same("GET", "traces", {"experiment_ids": exp}, status=200)
    pair.same("PATCH", ("traces/", request, "/tags"), {"key": "k", "value": "v"}, status=200)
    pair.same("DELETE", ("traces/", request, "/tags"), {"key": "k"}, status=200)
    out = pair.send("PATCH", "traces/nope", end)
    assert_error(out, 404, "RESOURCE_DOES_NOT_EXIST", message=False)
    bad = pair.send("POST", "traces", {"experiment_id": "987654321", "timestamp_ms": 1})
    assert_error(bad, 404, "RESOURCE_DOES_NOT_EXIST")
