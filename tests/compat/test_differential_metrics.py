"""Metric history API: Tether against the reference `mlflow server`.

Deliberate deviation asserted here:
- get-history with a max_results that is not an integer (GET `max_results=abc`): MLflow ignores
  it and returns everything; Tether refuses with 400 INVALID_PARAMETER_VALUE.
"""

from __future__ import annotations

from typing import Any

import pytest

from compat.diff import Pair, Ref

HISTORY = "metrics/get-history"
BULK = "metrics/get-history-bulk-interval"


def _log(pair: Pair, run: Ref, metrics: list[dict[str, Any]]) -> None:
    for start in range(0, len(metrics), 1000):
        chunk = metrics[start : start + 1000]
        pair.same("POST", "runs/log-batch", {"run_id": run, "metrics": chunk}, status=200)


@pytest.fixture
def runs(pair: Pair) -> dict[str, Ref]:
    """Three runs of one experiment with a "loss" history each.

    - long: 1000 points, steps 0..999, timestamps increasing
    - odd: 300 points on steps 0, 3, 6, ... with equal timestamps, plus NaN and +-Infinity
    - short: 3 points logged out of order, two on the same step
    """
    exp = pair.experiment()
    long, odd, short = (pair.run(exp, run_name=n) for n in ("long", "odd", "short"))
    _log(
        pair,
        long,
        [{"key": "loss", "value": i * 0.5, "timestamp": 1_000 + i, "step": i} for i in range(1000)],
    )
    odd_points = [{"key": "loss", "value": i, "timestamp": 5, "step": i * 3} for i in range(300)]
    odd_points += [
        {"key": "loss", "value": "NaN", "timestamp": 7, "step": 1},
        {"key": "loss", "value": "Infinity", "timestamp": 8, "step": 2},
        {"key": "loss", "value": "-Infinity", "timestamp": 9, "step": 4},
    ]
    _log(pair, odd, odd_points)
    _log(
        pair,
        short,
        [
            {"key": "loss", "value": 3, "timestamp": 30, "step": 2},
            {"key": "loss", "value": 1, "timestamp": 10, "step": 0},
            {"key": "loss", "value": 2, "timestamp": 20, "step": 2},
            {"key": "other", "value": 9, "timestamp": 20, "step": 0},
        ],
    )
    return {"long": long, "odd": odd, "short": short}


def test_full_history(pair: Pair, runs: dict[str, Ref]) -> None:
    body = pair.same("GET", HISTORY, {"run_id": runs["short"], "metric_key": "loss"}, status=200)
    assert [(m["step"], m["value"]) for m in body["metrics"]] == [(0, 1.0), (2, 2.0), (2, 3.0)]
    body = pair.same("GET", HISTORY, {"run_id": runs["odd"], "metric_key": "loss"}, status=200)
    assert len(body["metrics"]) == 303
    assert "NaN" in [m["value"] for m in body["metrics"]]
    body = pair.same("GET", HISTORY, {"run_id": runs["long"], "metric_key": "loss"}, status=200)
    assert len(body["metrics"]) == 1000 and "next_page_token" not in body
    # The latest value per key is what the run shows.
    snapshot = pair.snapshot(runs["short"])
    assert {m["key"]: m["value"] for m in snapshot["run"]["data"]["metrics"]} == {
        "loss": 3.0,
        "other": 9.0,
    }


def test_paging(pair: Pair, runs: dict[str, Ref]) -> None:
    run = runs["long"]
    tokens: dict[str, str | None] = {"ref": None, "tet": None}
    steps: list[int] = []
    pages = 0
    while True:
        answers = {}
        for side, rest in pair.rest.items():
            query = {"run_id": run.side(side), "metric_key": "loss", "max_results": 300}
            if tokens[side]:
                query["page_token"] = tokens[side]
            answers[side] = rest.get(HISTORY, query)
        bodies = {side: pair.norm[side](a.json) for side, a in answers.items()}
        assert (answers["ref"].status, bodies["ref"]) == (answers["tet"].status, bodies["tet"])
        steps += [m["step"] for m in bodies["tet"]["metrics"]]
        tokens = {side: a.json.get("next_page_token") for side, a in answers.items()}
        pages += 1
        if tokens["tet"] is None:
            break
    assert pages == 4 and steps == list(range(1000))
    assert tokens == {"ref": None, "tet": None}
    # Tokens are MLflow's format: one server's token works on the other.
    first = (
        pair.rest["ref"]
        .get(HISTORY, {"run_id": run.ref, "metric_key": "loss", "max_results": 2})
        .json["next_page_token"]
    )
    second = pair.same(
        "GET", HISTORY, {"run_id": run, "metric_key": "loss", "max_results": 2, "page_token": first}
    )
    assert [m["step"] for m in second["metrics"]] == [2, 3]


def test_history_edge_cases(pair: Pair, runs: dict[str, Ref]) -> None:
    run = runs["short"]
    assert pair.same("GET", HISTORY, {"run_id": run, "metric_key": "nope"}, status=200) == {}
    missing_run = {"run_id": "0" * 32, "metric_key": "loss"}
    assert pair.same("GET", HISTORY, missing_run, status=200) == {}
    exact = pair.same("GET", HISTORY, {"run_id": run, "metric_key": "loss", "max_results": 3})
    assert "next_page_token" not in exact
    big = pair.same("GET", HISTORY, {"run_id": run, "metric_key": "loss", "max_results": 25001})
    assert len(big["metrics"]) == 3
    # POST is not how the client asks, and neither server allows it.
    for rest in pair.rest.values():
        assert rest.post(HISTORY, {"run_id": "x", "metric_key": "loss"}).status == 405


def test_history_errors(pair: Pair, runs: dict[str, Ref]) -> None:
    run = runs["short"]
    pair.same_error("GET", HISTORY, {"metric_key": "loss"})
    pair.same_error("GET", HISTORY, {"run_id": run})
    for max_results in (0, -1):
        pair.same_error(
            "GET", HISTORY, {"run_id": run, "metric_key": "loss", "max_results": max_results}
        )
    for token in ("garbage", "eyJmb28iOiAxfQ==", "bm90IGpzb24="):
        pair.same_error(
            "GET",
            HISTORY,
            {"run_id": run, "metric_key": "loss", "max_results": 1, "page_token": token},
        )


def test_history_non_integer_max_results(pair: Pair, runs: dict[str, Ref]) -> None:
    out = pair.send(
        "GET", HISTORY, {"run_id": runs["short"], "metric_key": "loss", "max_results": "abc"}
    )
    assert out.ref.status == 200 and len(out.ref.json["metrics"]) == 3
    assert (out.tet.status, out.tet.error_code) == (400, "INVALID_PARAMETER_VALUE")
    assert "max_results" in out.tet.json["message"]


def test_bulk_interval_sampling(pair: Pair, runs: dict[str, Ref]) -> None:
    long = runs["long"]
    body = pair.same("GET", BULK, {"run_ids": [long], "metric_key": "loss", "max_results": 50})
    steps = [m["step"] for m in body["metrics"]]
    # 1000 points sampled to 50 buckets: the first and the last step are always kept.
    assert len(steps) == 50 and steps[0] == 0 and steps[-1] == 999
    assert steps == sorted(steps)
    assert all(m["run_id"] == long.symbol for m in body["metrics"])
    for max_results in (1, 2, 7, 999, 1000, 1001, 2500):
        pair.same(
            "GET", BULK, {"run_ids": [long], "metric_key": "loss", "max_results": max_results}
        )
    everything = pair.same("GET", BULK, {"run_ids": [long], "metric_key": "loss"})
    assert len(everything["metrics"]) == 1000


def test_bulk_interval_step_ranges(pair: Pair, runs: dict[str, Ref]) -> None:
    long, odd = runs["long"], runs["odd"]
    for start, end, max_results in ((10, 100, 5), (0, 0, 5), (990, 5000, 50), (5, 5, 1)):
        query = {"run_ids": [long, odd], "metric_key": "loss", "max_results": max_results}
        body = pair.same("GET", BULK, {**query, "start_step": start, "end_step": end})
        assert all(start <= m["step"] <= end for m in body.get("metrics", []))
    empty = {"run_ids": [long], "metric_key": "loss", "start_step": 5000, "end_step": 6000}
    assert pair.same("GET", BULK, empty) == {}


def test_bulk_interval_several_runs(pair: Pair, runs: dict[str, Ref]) -> None:
    ordered = [runs["short"], runs["odd"], runs["long"]]
    body = pair.same("GET", BULK, {"run_ids": ordered, "metric_key": "loss", "max_results": 10})
    run_ids = [m["run_id"] for m in body["metrics"]]
    # Grouped by run, in the order the runs were asked for.
    assert list(dict.fromkeys(run_ids)) == [r.symbol for r in ordered]
    values = [m["value"] for m in body["metrics"] if m["run_id"] == runs["odd"].symbol]
    assert "NaN" in values or len(values) == 10
    with_missing = [runs["short"], "0" * 32, runs["short"]]
    pair.same("GET", BULK, {"run_ids": with_missing, "metric_key": "loss", "max_results": 10})
    pair.same("GET", BULK, {"run_ids": [runs["short"]], "metric_key": "other"})
    assert pair.same("GET", BULK, {"run_ids": ["0" * 32], "metric_key": "loss"}) == {}


def test_bulk_interval_errors(pair: Pair, runs: dict[str, Ref]) -> None:
    run = runs["short"]
    base = {"run_ids": [run], "metric_key": "loss"}
    pair.same_error("GET", BULK, {"metric_key": "loss"})
    pair.same_error("GET", BULK, {"run_ids": [run]})
    pair.same_error("GET", BULK, {**base, "max_results": 0})
    pair.same_error("GET", BULK, {**base, "max_results": 2501})
    pair.same_error("GET", BULK, {**base, "start_step": 10})
    pair.same_error("GET", BULK, {**base, "end_step": 10})
    pair.same_error("GET", BULK, {**base, "start_step": 10, "end_step": 5})
    too_many = {"run_ids": [f"{i:032x}" for i in range(101)], "metric_key": "loss"}
    pair.same_error("GET", BULK, too_many)
