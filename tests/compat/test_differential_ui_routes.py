"""The routes only MLflow's web UI calls (ajax-api), Tether against the reference server:
metric history in bulk, the UI's artifact upload, dataset summaries, evaluation-dataset
search, and the answers of features Tether does not have (assistant, AI gateway, UI
telemetry, MCP registry), as `mlflow server` gives them when they are not set up.

Deliberate deviations asserted here:
- get-history-bulk's `max_results` that is not an integer: MLflow crashes (500, HTML); a
  negative one it passes on as the query's LIMIT (SQLite: no limit, then all points but the
  last few; PostgreSQL: 500). Tether answers 400 INVALID_PARAMETER_VALUE to both, keeping
  its 25,000-point bound.
- upload-artifact: MLflow reads a chunked body (no Content-Length) as empty ("Request must
  specify data."); Tether stores it, counting it against the same 10 MB limit. A path with an
  empty segment (`a//b`) MLflow stores as `a/b` and `dir/` crashes it (500); Tether refuses
  both (400 "Invalid path"), as every artifact route of Tether does.
- experiments/search-datasets: MLflow's query has no ORDER BY; its SQLite rows come by
  experiment, dataset name and digest, which Tether keeps, then the contexts of one dataset in
  the order its inputs were logged, which Tether sorts by name instead (it records no order
  of inputs): compared as sets where a dataset has two contexts.
- assistant/providers: MLflow lists the coding-agent CLIs and LLM servers it finds on its host
  (here: whatever the test machine has); Tether offers none.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from compat.diff import Pair, Ref, assert_error, assert_same
from support import unique_name

BULK = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
UPLOAD = "/ajax-api/2.0/mlflow/upload-artifact"
SEARCH_DATASETS = "/ajax-api/2.0/mlflow/experiments/search-datasets"
EVAL_DATASETS = "/ajax-api/3.0/mlflow/datasets/search"
MB10 = 10 * 1024 * 1024


def _nan_marked(value: Any) -> Any:
    """NaN (which MLflow writes as a bare `NaN` token) as a comparable marker."""
    if isinstance(value, float) and math.isnan(value):
        return "<NaN>"
    if isinstance(value, list):
        return [_nan_marked(v) for v in value]
    if isinstance(value, dict):
        return {k: _nan_marked(v) for k, v in value.items()}
    return value


def _bulk(pair: Pair, query: list[tuple[str, str | Ref]]) -> tuple[int, Any]:
    """GET get-history-bulk on both with the query as given (repeated keys kept).

    The points come ordered by run id, and the two servers' ids of the same runs need not
    sort alike: each side is checked to be in its own run-id order, then the runs' points are
    compared run by run (in symbol order)."""
    answers = {}
    for side, rest in pair.rest.items():
        params = [(k, v.side(side) if isinstance(v, Ref) else v) for k, v in query]
        answers[side] = rest.get(BULK, params)  # type: ignore[arg-type]
    ref, tet = answers["ref"], answers["tet"]
    bodies = []
    for side, answer in (("ref", ref), ("tet", tet)):
        points = (answer.json or {}).get("metrics") if answer.status == 200 else None
        if points:
            run_ids = [p["run_id"] for p in points]
            assert run_ids == sorted(run_ids), side
        body = _nan_marked(pair.norm[side](answer.json))
        if points:
            body["metrics"].sort(key=lambda p: p["run_id"])  # stable: each run's order kept
        bodies.append(body)
    assert (ref.status, bodies[0]) == (tet.status, bodies[1]), (ref.text[:2000], tet.text[:2000])
    return tet.status, bodies[1]


def _runs_with_points(pair: Pair) -> tuple[Ref, Ref]:
    exp = pair.experiment()
    first, second = pair.run(exp), pair.run(exp)
    points = [
        {"key": "loss", "value": v, "timestamp": ts, "step": step}
        for v, ts, step in ((1.0, 30, 0), (0.5, 10, 2), (0.25, 10, 1), ("NaN", 20, 3))
    ]
    points.append({"key": "loss", "value": "Infinity", "timestamp": 40, "step": 4})
    points.append({"key": "other", "value": 7, "timestamp": 1, "step": 0})
    pair.same("POST", "runs/log-batch", {"run_id": first, "metrics": points}, status=200)
    second_points = [{"key": "loss", "value": 3, "timestamp": 5, "step": 0}]
    pair.same("POST", "runs/log-batch", {"run_id": second, "metrics": second_points})
    return first, second


def test_get_history_bulk(pair: Pair) -> None:
    first, second = _runs_with_points(pair)
    status, body = _bulk(pair, [("run_id", first), ("metric_key", "loss")])
    assert status == 200
    # By timestamp, then step and value; NaN as MLflow writes it, infinity clamped.
    assert [(m["timestamp"], m["step"], m["value"]) for m in body["metrics"]] == [
        (10, 1, 0.25),
        (10, 2, 0.5),
        (20, 3, "<NaN>"),
        (30, 0, 1.0),
        (40, 4, 1.7976931348623157e308),
    ]
    assert {m["run_id"] for m in body["metrics"]} == {first.symbol}
    both = [("run_id", second), ("run_id", first), ("run_id", first), ("metric_key", "loss")]
    _, body = _bulk(pair, both)
    assert len(body["metrics"]) == 6  # by run id; a run asked for twice is answered once
    # The limit counts points over all runs (one run here: the runs' order differs by side).
    for limit in ("3", "0", " 2", "100000"):
        _bulk(pair, [("run_id", first), ("metric_key", "loss"), ("max_results", limit)])
    _bulk(pair, [("run_id", first), ("metric_key", "")])
    _bulk(pair, [("run_id", first), ("metric_key", "nope")])
    _bulk(pair, [("run_id", "0" * 32), ("metric_key", "loss")])
    _bulk(pair, [("run_id", ""), ("metric_key", "loss")])


def test_get_history_bulk_errors(pair: Pair) -> None:
    first, _ = _runs_with_points(pair)
    for query in (
        [("metric_key", "loss")],
        [("run_id", first)],
        [*(("run_id", f"{i:032x}") for i in range(101)), ("metric_key", "loss")],
    ):
        status, body = _bulk(pair, query)  # type: ignore[arg-type]
        assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"
    # Deliberate deviations: MLflow's int() raises (500, HTML); a negative limit is no limit
    # on its SQLite store (all 5 points but the last one). Tether refuses both.
    query = {"run_id": first, "metric_key": "loss"}
    out = pair.send("GET", BULK, {**query, "max_results": "2.5"})
    assert out.ref.status == 500
    assert (out.tet.status, out.tet.error_code) == (400, "INVALID_PARAMETER_VALUE")
    out = pair.send("GET", BULK, {**query, "max_results": "-1"})
    assert (out.ref.status, len(out.ref.json["metrics"])) == (200, 4)
    assert (out.tet.status, out.tet.error_code) == (400, "INVALID_PARAMETER_VALUE")
    # Served under ajax-api only, by both.
    out = pair.send("GET", "metrics/get-history-bulk", {"run_id": first, "metric_key": "loss"})
    assert out.ref.status == out.tet.status == 404


# upload-artifact ------------------------------------------------------------------------


def _upload(pair: Pair, run: Ref | str, path: str | None, content: Any) -> tuple[int, Any]:
    answers = {}
    for side, rest in pair.rest.items():
        params = {"run_uuid": run.side(side) if isinstance(run, Ref) else run}
        if path is not None:
            params["path"] = path
        answers[side] = rest.request("POST", UPLOAD, params=params, content=content)
    ref, tet = answers["ref"], answers["tet"]
    ref_body, tet_body = pair.norm["ref"](ref.json), pair.norm["tet"](tet.json)
    assert (ref.status, ref_body) == (tet.status, tet_body), (ref.text[:500], tet.text[:500])
    if tet.status == 200:
        assert tet.text == ref.text == ""
        assert tet.headers["content-type"] == "application/json"
    return tet.status, tet_body


def _files(pair: Pair, run: Ref, path: str = "") -> Any:
    """The run's artifact listing (its `files`), the same on both (`root_uri` holds the
    experiment's id, which differs)."""
    out = pair.send("GET", "artifacts/list", {"run_id": run, "path": path})
    assert out.ref.status == out.tet.status == 200
    assert out.ref_body.get("files") == out.tet_body.get("files")
    return out.tet_body


def test_upload_artifact(pair: Pair) -> None:
    run = pair.run(pair.experiment())
    assert _upload(pair, run, "notes/readme.txt", b"hello") == (200, None)
    assert _upload(pair, run, "chart.json", b'{"a": 1}') == (200, None)
    assert _upload(pair, run, "chart.json", b'{"a": 2}')[0] == 200  # replaced
    assert _upload(pair, run, "ünï cødé.txt", "✓".encode()) == (200, None)
    assert _upload(pair, run, "at-the-limit.bin", b"x" * MB10) == (200, None)
    listed = _files(pair, run)
    assert [f["path"] for f in listed["files"]] == [
        "at-the-limit.bin",
        "chart.json",
        "notes",
        "ünï cødé.txt",
    ]
    _files(pair, run, "notes")
    for path, expected in (("chart.json", b'{"a": 2}'), ("notes/readme.txt", b"hello")):
        for side, rest in pair.rest.items():
            got = rest.client.get("/get-artifact", params={"run_id": run.side(side), "path": path})
            assert (got.status_code, got.content) == (200, expected), side
    # A deleted run still takes uploads, as in MLflow.
    pair.same("POST", "runs/delete", {"run_id": run}, status=200)
    assert _upload(pair, run, "after-delete.txt", b"x") == (200, None)


def test_upload_artifact_errors(pair: Pair) -> None:
    run = pair.run(pair.experiment())
    invalid = {"status": 400, "code": "INVALID_PARAMETER_VALUE"}
    cases: list[tuple[Ref | str, str | None, bytes, dict[str, Any]]] = [
        ("", "a.txt", b"x", invalid),  # no run_uuid
        (run, None, b"x", invalid),  # no path
        (run, "../escape.txt", b"x", invalid),
        (run, "/abs.txt", b"x", invalid),
        (run, "a/%2e%2e/b", b"x", invalid),
        (run, "empty.txt", b"", invalid),
        (run, "big.bin", b"x" * (MB10 + 1), invalid),
        ("0" * 32, "a.txt", b"x", {"status": 404, "code": "RESOURCE_DOES_NOT_EXIST"}),
        ("0" * 32, "a.txt", b"", invalid),  # no data is said before the run is looked up
    ]
    for target, path, content, error in cases:
        status, body = _upload(pair, target, path, content)
        assert (status, body["error_code"]) == (error["status"], error["code"]), (path, body)
    assert "files" not in _files(pair, run)  # nothing stored
    # Served under ajax-api only, by both.
    for rest in pair.rest.values():
        answer = rest.request(
            "POST", "upload-artifact", params={"run_uuid": run.ref, "path": "a"}, content=b"x"
        )
        assert answer.status == 404


def _chunks(total: int, size: int = 1024 * 1024) -> Iterator[bytes]:
    while total > 0:
        yield b"y" * min(size, total)
        total -= size


def test_upload_artifact_deviations(pair: Pair) -> None:
    run = pair.run(pair.experiment())
    ref, tet = pair.rest["ref"], pair.rest["tet"]

    def send(rest: Any, run_id: str, path: str, content: Any) -> Any:
        return rest.request(
            "POST", UPLOAD, params={"run_uuid": run_id, "path": path}, content=content
        )

    # A chunked body (no Content-Length): MLflow sees no data, Tether stores it...
    assert send(ref, run.ref, "chunked.bin", _chunks(3000, 1000)).status == 400
    assert send(tet, run.tet, "chunked.bin", _chunks(3000, 1000)).status == 200
    got = tet.client.get("/get-artifact", params={"run_id": run.tet, "path": "chunked.bin"})
    assert got.content == b"y" * 3000
    # ... up to the same 10 MB: beyond, nothing is stored (the earlier file stays).
    too_big = send(tet, run.tet, "chunked.bin", _chunks(MB10 + 1))
    assert (too_big.status, too_big.json["message"]) == (
        400,
        "Artifact size is too large. Max size is 10MB.",
    )
    got = tet.client.get("/get-artifact", params={"run_id": run.tet, "path": "chunked.bin"})
    assert got.content == b"y" * 3000
    # Empty segments: MLflow normalises `a//b` to `a/b` and crashes on `dir/`; Tether refuses.
    assert send(ref, run.ref, "a//b.txt", b"x").status == 200
    assert send(ref, run.ref, "dir/", b"x").status == 500
    for path in ("a//b.txt", "dir/"):
        answer = send(tet, run.tet, path, b"x")
        assert (answer.status, answer.json["message"]) == (400, "Invalid path")


# experiments/search-datasets ----------------------------------------------------------------


def _dataset(name: str, digest: str, context: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "dataset": {"name": name, "digest": digest, "source_type": "local", "source": "{}"}
    }
    if context is not None:
        item["tags"] = [{"key": "mlflow.data.context", "value": context}]
    return item


def test_search_datasets(pair: Pair) -> None:
    exp, other = pair.experiment(), pair.experiment()
    runs = [pair.run(exp), pair.run(exp), pair.run(other)]
    logged = [
        [_dataset("zeta", "d1", "train"), _dataset("alpha", "d2", "eval"), _dataset("mid", "d3")],
        [_dataset("zeta", "d1", "train"), _dataset("beta", "d4", "train")],
        [_dataset("zeta", "d1", "train"), _dataset("zeta", "d9", "test")],
    ]
    for run, datasets in zip(runs, logged, strict=True):
        pair.same("POST", "runs/log-inputs", {"run_id": run, "datasets": datasets}, status=200)
    body = pair.same("POST", SEARCH_DATASETS, {"experiment_ids": [exp]}, status=200)
    assert [(s["name"], s["digest"], s.get("context")) for s in body["dataset_summaries"]] == [
        ("alpha", "d2", "eval"),
        ("beta", "d4", "train"),
        ("mid", "d3", None),
        ("zeta", "d1", "train"),
    ]
    both = pair.same("POST", SEARCH_DATASETS, {"experiment_ids": [other, exp]}, status=200)
    assert [s["experiment_id"] for s in both["dataset_summaries"]] == [exp.symbol] * 4 + [
        other.symbol
    ] * 2
    assert pair.same("POST", SEARCH_DATASETS, {"experiment_ids": ["987654"]}, status=200) == {}
    pair.same("POST", "runs/delete", {"run_id": runs[0]}, status=200)  # still listed, as MLflow
    assert pair.same("POST", SEARCH_DATASETS, {"experiment_ids": [exp]}) == body


def test_search_datasets_contexts_of_one_dataset(pair: Pair) -> None:
    exp = pair.experiment()
    for context in ("train", "eval"):
        run = pair.run(exp)
        datasets = [_dataset("shared", "d1", context)]
        pair.same("POST", "runs/log-inputs", {"run_id": run, "datasets": datasets}, status=200)
    out = pair.send("POST", SEARCH_DATASETS, {"experiment_ids": [exp]})
    assert out.ref.status == out.tet.status == 200

    def contexts(body: Any) -> list[str]:
        return [s["context"] for s in body["dataset_summaries"]]

    # Deliberate deviation (see the module docstring): the same summaries, in another order.
    assert contexts(out.ref_body) == ["train", "eval"]  # the inputs' order
    assert contexts(out.tet_body) == ["eval", "train"]  # by name


def test_search_datasets_errors(pair: Pair) -> None:
    for body in (
        {},
        {"experiment_ids": []},
        {"experiment_ids": ["abc"]},
        {"experiment_ids": [str(i) for i in range(21)]},
    ):
        pair.same_error("POST", SEARCH_DATASETS, body)
    for headers in ({"Content-Type": "text/plain"}, {}):
        out = pair.send_raw(SEARCH_DATASETS, lambda _: b'{"experiment_ids": ["0"]}', **headers)
        assert_error(out, 400, "INVALID_PARAMETER_VALUE")
    # POST only, under ajax-api only.
    assert pair.send("GET", SEARCH_DATASETS, {"experiment_ids": ["0"]}).tet.status == 405
    out = pair.send("POST", "experiments/search-datasets", {"experiment_ids": ["0"]})
    assert out.ref.status == out.tet.status == 404


# datasets/search (MLflow 3's evaluation datasets) --------------------------------------------


def test_evaluation_datasets_search_finds_none(pair: Pair) -> None:
    exp = pair.experiment()
    # What the Datasets tab and the Traces tab send.
    for body in (
        {
            "experiment_ids": [exp],
            "filter_string": "name ILIKE '%toy%'",
            "order_by": ["created_time DESC"],
            "max_results": 50,
        },
        {"experiment_ids": [exp], "order_by": ["name ASC"], "max_results": 25},
        {},
        {"experiment_ids": ["not-a-number"]},
        {"max_results": 50000},
    ):
        for prefix in ("/ajax-api/3.0/mlflow", "/api/3.0/mlflow"):
            assert pair.same("POST", f"{prefix}/datasets/search", body, status=200) == {}
    assert pair.same("GET", EVAL_DATASETS, {"max_results": "5"}, status=200) == {}


def test_evaluation_datasets_search_errors(pair: Pair) -> None:
    for body in (
        {"max_results": 0},
        {"max_results": -1},
        {"max_results": 50001},
        {"max_results": "abc"},
        {"page_token": "abc"},
        {"experiment_ids": "1"},
    ):
        pair.same_error("POST", EVAL_DATASETS, body)
    out = pair.send_raw(EVAL_DATASETS, lambda _: b"{}", **{"Content-Type": "text/plain"})
    assert_error(out, 400, "INVALID_PARAMETER_VALUE")


# Features Tether does not have ---------------------------------------------------------------


def test_gateway_proxy_ui_telemetry_and_mcp_registry(pair: Pair) -> None:
    for method, path, body in (
        ("GET", "/ajax-api/2.0/mlflow/gateway-proxy", {}),
        ("GET", "/ajax-api/2.0/mlflow/gateway-proxy", {"gateway_path": "api/2.0/endpoints/"}),
        ("POST", "/ajax-api/2.0/mlflow/gateway-proxy", {"gateway_path": "gateway/x/invocations"}),
        ("GET", "/ajax-api/3.0/mlflow/ui-telemetry", {}),
        ("POST", "/ajax-api/3.0/mlflow/ui-telemetry", {"records": [{"event_name": "x"}]}),
        ("POST", "/ajax-api/3.0/mlflow/ui-telemetry", {}),
    ):
        pair.same(method, path, body, status=200)
    for query in ({}, {"max_results": "10"}):  # raw: its page token is null
        ref, tet = (
            rest.get("/ajax-api/3.0/mlflow/mcp-servers", query) for rest in pair.rest.values()
        )
        assert (ref.status, ref.json) == (tet.status, tet.json)
        assert tet.json == {"mcp_servers": [], "next_page_token": None}
    # Not JSON: neither reads it.
    for path in ("/ajax-api/2.0/mlflow/gateway-proxy", "/ajax-api/3.0/mlflow/ui-telemetry"):
        out = pair.send_raw(path, lambda _: b"not json")
        assert_same(out, 200)


def test_assistant_is_not_set_up(pair: Pair) -> None:
    config = "/ajax-api/3.0/mlflow/assistant/config"
    out = pair.send("GET", config)
    assert out.tet.status == out.ref.status == 200
    assert out.tet_body == {"providers": {}, "projects": {}, "remote_access_allowed": False}
    if not out.ref_body["providers"]:  # no coding-agent CLI on this machine
        assert out.ref_body == out.tet_body
    out = pair.send("GET", "/ajax-api/3.0/mlflow/assistant/providers")
    assert out.tet.status == out.ref.status == 200
    assert out.tet_body == {"providers": [], "resolved": None, "gateway_vendor_options": {}}
    assert set(out.ref_body) == set(out.tet_body)


def test_current_user_is_unknown_without_auth(pair: Pair) -> None:
    out = pair.send("GET", "/ajax-api/2.0/mlflow/users/current")
    assert out.ref.status == out.tet.status == 404


def test_new_experiments_are_in_the_default_workspace(pair: Pair) -> None:
    name = unique_name("diff-ws")
    exp = pair.experiment(name)
    for body in (
        pair.same("GET", "experiments/get", {"experiment_id": exp}, status=200),
        pair.same("GET", "experiments/get-by-name", {"experiment_name": name}, status=200),
    ):
        assert body["experiment"]["workspace"] == "default"
    found = pair.same(
        "POST", "experiments/search", {"filter": f"name = '{name}'", "max_results": 1}
    )
    assert found["experiments"][0]["workspace"] == "default"
    # experiments/create answers the id only, on both.
    created = pair.same("POST", "experiments/create", {"name": unique_name("diff-ws")})
    assert set(created) == {"experiment_id"}
