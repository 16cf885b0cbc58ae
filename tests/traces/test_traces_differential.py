"""Trace info routes, Tether against the reference `mlflow server`, request by request:
start (v3), get (v3 and v2), batch infos, tags, link-to-run, delete by ids / age / count.

Deliberate deviations asserted here:
- StartTraceV3 without an experiment location: MLflow fails in its store (500 or a foreign key
  error); Tether answers 400 with MLflow's missing-parameter wording.
- StartTraceV3 for a trace that exists (its spans came first): MLflow answers the trace with
  its tags as they were *before* the merge (a stale relationship; what it stored is merged);
  Tether answers what it stored. A later get answers the same on both.
- set-tag on a trace that does not exist: MLflow answers 400 BAD_REQUEST with the raw SQL
  foreign key error; Tether answers 404 RESOURCE_DOES_NOT_EXIST ("Trace with ID ... not found").
- link-to-run with a run that does not exist: MLflow links to it anyway (200); Tether answers
  404 "Run with id=... not found" and links nothing.
"""

from __future__ import annotations

from typing import Any

from compat.diff import assert_error, assert_same
from traces.tracediff import TracePair, new_trace_id, trace_info

META = {"mlflow.user": "alice", "mlflow.traceInputs": '{"q": 1}', "custom": "x" * 300}


def _info(body: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = body["trace"]["trace_info"]
    return info


def test_start_and_get(pair: TracePair) -> None:
    exp = pair.experiment()
    trace_id = new_trace_id()
    body = trace_info(
        trace_id,
        exp,
        metadata={
            **META,
            "mlflow.trace.tokenUsage": '{"input_tokens": 3, "output_tokens": 4.0, "x": 1}',
            "mlflow.trace.cost": '{"total_cost": 0.25}',
            "mlflow.trace.session": "s-1",
        },
        tags={"mlflow.traceName": "predict", "team": "genai", "long": "v" * 5000},
        client_request_id="client-1",
        request_preview='{"q": 1}',
        response_preview="42",
    )
    started = pair.same3("POST", "traces", body, status=200)
    info = _info(started)
    assert info["tags"]["mlflow.traceName"] == "predict"
    assert info["trace_metadata"]["mlflow.trace.infoFinalized"] == "true"
    assert len(info["trace_metadata"]["custom"]) == 250  # answers cut metadata to 250
    assert len(info["tags"]["long"]) == 4096
    got = pair.same3("GET", f"traces/{trace_id}", {"trace_id": trace_id}, status=200)
    assert got == started
    v2 = pair.same("GET", f"traces/{trace_id}/info", status=200)
    assert v2["trace_info"]["request_id"] == trace_id
    batch = pair.same3("POST", "traces/batchGetInfos", {"trace_ids": [trace_id, "tr-missing"]})
    assert [t["trace_id"] for t in batch["trace_infos"]] == [trace_id]


def test_start_minimal_and_states(pair: TracePair) -> None:
    exp = pair.experiment()
    for state in ("OK", "ERROR", "IN_PROGRESS", "STATE_UNSPECIFIED"):
        trace_id = new_trace_id()
        body = trace_info(trace_id, exp, state=state, execution_duration=None)
        pair.same3("POST", "traces", body, status=200)
        pair.same3("GET", f"traces/{trace_id}", status=200)


def test_start_again_merges(pair: TracePair) -> None:
    exp = pair.experiment()
    trace_id = pair.start(exp, tags={"a": "1"}, metadata={"m": "1"}, state="IN_PROGRESS")
    again = trace_info(
        trace_id,
        exp,
        tags={"b": "2"},
        metadata={"n": "2"},
        state="OK",
        request_time="2026-01-02T03:04:06Z",
    )
    out = pair.v3("POST", "traces", again)
    assert out.ref.status == out.tet.status == 200
    assert set(_info(out.tet_body)["tags"]) == {"a", "b", "mlflow.artifactLocation"}
    assert set(_info(out.ref_body)["tags"]) == {"a", "mlflow.artifactLocation"}  # stale
    merged = pair.same3("GET", f"traces/{trace_id}", status=200)
    assert _info(merged) == _info(out.tet_body)


def test_start_errors(pair: TracePair) -> None:
    exp = pair.experiment()
    out = pair.v3("POST", "traces", trace_info(new_trace_id(), "987654321"))
    assert_error(out, 404, "RESOURCE_DOES_NOT_EXIST")
    deleted = pair.experiment()
    pair.same("POST", "experiments/delete", {"experiment_id": deleted}, status=200)
    out = pair.v3("POST", "traces", trace_info(new_trace_id(), deleted))
    assert_error(out, 400, "INVALID_PARAMETER_VALUE")
    out = pair.v3("POST", "traces", {})
    assert_error(out, 400, "INVALID_PARAMETER_VALUE")
    long_name = trace_info(new_trace_id(), exp, tags={"mlflow.traceName": "n" * 4097})
    assert_error(pair.v3("POST", "traces", long_name), 400, "INVALID_PARAMETER_VALUE")
    long_session = trace_info(new_trace_id(), exp, metadata={"mlflow.trace.session": "s" * 251})
    assert_error(pair.v3("POST", "traces", long_session), 400, "INVALID_PARAMETER_VALUE")


def test_get_missing(pair: TracePair) -> None:
    out = pair.v3("GET", "traces/tr-00000000000000000000000000000000")
    assert_error(out, 404, "RESOURCE_DOES_NOT_EXIST")
    out = pair.send("GET", "traces/tr-00000000000000000000000000000000/info")
    assert_error(out, 404, "RESOURCE_DOES_NOT_EXIST")


def test_tags(pair: TracePair) -> None:
    exp = pair.experiment()
    trace_id = pair.start(exp, tags={"mlflow.traceName": "first"})
    pair.same3("PATCH", f"traces/{trace_id}/tags", {"key": "k", "value": "v"}, status=200)
    pair.same3("PATCH", f"traces/{trace_id}/tags", {"key": "mlflow.traceName", "value": "renamed"})
    pair.same("PATCH", f"traces/{trace_id}/tags", {"key": "v2", "value": "two"}, status=200)
    got = pair.same3("GET", f"traces/{trace_id}")
    assert _info(got)["tags"]["mlflow.traceName"] == "renamed"
    pair.same3("DELETE", f"traces/{trace_id}/tags", {"key": "k"}, status=200)
    pair.same("DELETE", f"traces/{trace_id}/tags", {"key": "v2"}, status=200)
    pair.same3("DELETE", f"traces/{trace_id}/tags", {"key": "mlflow.traceName"}, status=200)
    after = pair.same3("GET", f"traces/{trace_id}")
    assert "mlflow.traceName" not in _info(after)["tags"]
    for key in ("k", "mlflow.traceName"):
        out = pair.v3("DELETE", f"traces/{trace_id}/tags", {"key": key})
        assert_error(out, 404, "RESOURCE_DOES_NOT_EXIST")
    out = pair.v3(
        "PATCH", f"traces/{trace_id}/tags", {"key": "mlflow.trace.spansLocation", "value": "x"}
    )
    assert_error(out, 400, "INVALID_PARAMETER_VALUE")
    out = pair.v3("PATCH", f"traces/{trace_id}/tags", {"key": "bad/../key", "value": "x"})
    assert_error(out, 400, "INVALID_PARAMETER_VALUE")
    out = pair.v3("PATCH", f"traces/{trace_id}/tags", {"value": "x"})
    assert_error(out, 400, "INVALID_PARAMETER_VALUE")
    out = pair.v3("PATCH", "traces/tr-missing/tags", {"key": "k", "value": "v"})
    assert (out.ref.status, out.ref.error_code) == (400, "BAD_REQUEST")  # a raw FK error
    assert (out.tet.status, out.tet.error_code) == (404, "RESOURCE_DOES_NOT_EXIST")
    long_value = pair.same3("PATCH", f"traces/{trace_id}/tags", {"key": "l", "value": "z" * 9000})
    assert long_value == {}
    assert len(_info(pair.same3("GET", f"traces/{trace_id}"))["tags"]["l"]) == 4096


def test_link_to_run(pair: TracePair) -> None:
    exp = pair.experiment()
    run = pair.run(exp)
    traces = [pair.start(exp) for _ in range(2)]
    pair.same("POST", "traces/link-to-run", {"trace_ids": traces, "run_id": run}, status=200)
    pair.same("POST", "traces/link-to-run", {"trace_ids": traces, "run_id": run}, status=200)
    out = pair.v3_each(
        "POST",
        "traces/search",
        lambda side: {"locations": [_loc(exp)], "filter": f"run_id = '{run.side(side)}'"},
    )
    assert_same(out, 200)
    assert len(out.tet_body["traces"]) == 2
    out = pair.send("POST", "traces/link-to-run", {"trace_ids": traces, "run_id": "0" * 32})
    assert out.ref.status == 200
    assert (out.tet.status, out.tet.error_code) == (404, "RESOURCE_DOES_NOT_EXIST")
    too_many = {"trace_ids": [new_trace_id() for _ in range(101)], "run_id": run}
    assert_error(pair.send("POST", "traces/link-to-run", too_many), 400, "INVALID_PARAMETER_VALUE")
    pair.same("POST", "traces/link-to-run", {"trace_ids": [], "run_id": run}, status=200)


def _loc(exp: Any) -> dict[str, Any]:
    return {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}}


def test_delete_by_ids_age_and_count(pair: TracePair) -> None:
    exp = pair.experiment()
    times = [f"2026-01-0{d}T00:00:00Z" for d in range(1, 7)]
    ids = [pair.start(exp, request_time=t) for t in times]
    one = pair.same3(
        "POST", "traces/delete-traces", {"experiment_id": exp, "request_ids": [ids[0], "tr-x"]}
    )
    assert one == {"traces_deleted": 1}
    # By age: everything at or before Jan 3rd (ids 1 and 2 left), at most 1 (the oldest).
    cutoff = 1767398400000  # 2026-01-03T00:00:00Z
    body = {"experiment_id": exp, "max_timestamp_millis": cutoff, "max_traces": 1}
    assert pair.same3("POST", "traces/delete-traces", body) == {"traces_deleted": 1}
    out = pair.v3("GET", f"traces/{ids[1]}")
    assert_error(out, 404, "RESOURCE_DOES_NOT_EXIST")
    pair.same3("GET", f"traces/{ids[2]}", status=200)
    everything = {"experiment_id": exp, "max_timestamp_millis": 1767398400000 * 2}
    assert pair.same("POST", "traces/delete-traces", everything) == {"traces_deleted": 4}
    assert pair.same("POST", "traces/delete-traces", everything) == {"traces_deleted": 0}


def test_delete_errors(pair: TracePair) -> None:
    exp = pair.experiment()
    for body in (
        {"experiment_id": exp},
        {"experiment_id": exp, "max_timestamp_millis": 1, "request_ids": ["tr-1"]},
        {"experiment_id": exp, "max_traces": 1, "request_ids": ["tr-1"]},
        {"experiment_id": exp, "max_timestamp_millis": 1, "max_traces": 0},
        {"max_timestamp_millis": 1},
    ):
        assert_error(pair.v3("POST", "traces/delete-traces", body), 400, "INVALID_PARAMETER_VALUE")


def test_answers_are_the_same_on_ajax_paths(pair: TracePair) -> None:
    exp = pair.experiment()
    trace_id = pair.start(exp)
    out = pair.send("GET", f"/ajax-api/3.0/mlflow/traces/{trace_id}")
    assert_same(out, 200)
