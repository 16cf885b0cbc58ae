"""Experiment ids on every endpoint that takes one: Tether reads them as `mlflow server` does.

MLflow reads every experiment id with Python's `int()` (so "+0" and " 0" are ids) and answers
a non-integer with the same 400; `runs/search` and `logged-models/search` read the ids late
(after the filter and page token; for runs after the order_by too), so a request with several
faults fails on the fault MLflow names.

Any int64 is an id (an unknown one answers 404 or matches nothing), on PostgreSQL too, where
the experiment id column holds only 32 bits.

Deliberate deviation asserted here: an id beyond int64 crashes MLflow's SQL store (500, "Python
int too large to convert to SQLite INTEGER"); Tether refuses it with MLflow's message for an
invalid id (400), before it reaches the database.
"""

from __future__ import annotations

from typing import Any

import pytest

from compat.diff import Pair
from support import unique_name

INT64_MAX = 2**63 - 1


def _requests(experiment_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Each endpoint that reads an experiment id, asked about `experiment_id`."""
    return [
        ("GET", "experiments/get", {"experiment_id": experiment_id}),
        ("POST", "experiments/delete", {"experiment_id": experiment_id}),
        ("POST", "experiments/restore", {"experiment_id": experiment_id}),
        (
            "POST",
            "experiments/update",
            {"experiment_id": experiment_id, "new_name": unique_name("never")},
        ),
        (
            "POST",
            "experiments/set-experiment-tag",
            {"experiment_id": experiment_id, "key": "k", "value": "v"},
        ),
        ("POST", "runs/create", {"experiment_id": experiment_id}),
        ("POST", "runs/search", {"experiment_ids": [experiment_id]}),
        ("POST", "logged-models", {"experiment_id": experiment_id}),
        ("POST", "logged-models/search", {"experiment_ids": [experiment_id]}),
        (
            "POST",
            "experiments/search",
            {"max_results": 10, "filter": f"experiment_id = '{experiment_id}'"},
        ),
    ]


@pytest.mark.parametrize("bad", ["abc", "1.0", "0x1", "1e3"])
def test_not_an_integer(pair: Pair, bad: str) -> None:
    for method, path, body in _requests(bad):
        pair.same_error(method, path, body)


@pytest.mark.parametrize("huge", [str(INT64_MAX + 1), str(-(2**63) - 1), str(2**70)])
def test_beyond_int64(pair: Pair, huge: str) -> None:
    for method, path, body in _requests(huge):
        out = pair.send(method, path, body)
        assert out.ref.status == 500, (path, out.ref.json)
        assert (out.tet.status, out.tet.error_code) == (400, "INVALID_PARAMETER_VALUE"), path
        assert out.tet.json["message"] == (
            f"Invalid experiment ID '{huge}'. Experiment ID must be a valid integer."
        )


@pytest.mark.parametrize("edge", [str(2**31), str(INT64_MAX), str(-(2**63))])
def test_any_int64_is_an_id(pair: Pair, edge: str) -> None:
    # No experiment has these ids; the column is INTEGER (32 bits on PostgreSQL, where a
    # parameter cast to it would fail), yet every endpoint answers as for any unknown id.
    exp = pair.experiment()
    for method, path, body in _requests(edge):
        if path.endswith("search"):
            pair.same(method, path, body, status=200)
        else:
            pair.same_error(method, path, body, status=404, code="RESOURCE_DOES_NOT_EXIST")
    # (The reference server outlives each backend's Tether: compare what both must hold.)
    for clause in (f"experiment_id != '{edge}'", f"experiment_id NOT IN ('{edge}')"):
        out = pair.send("POST", "experiments/search", {"max_results": 1000, "filter": clause})
        assert out.ref.status == out.tet.status == 200
        for body in (out.ref_body, out.tet_body):
            assert exp.symbol in {e["experiment_id"] for e in body["experiments"]}


def test_int_reads_them(pair: Pair) -> None:
    for lenient in ("+0", " 0", "0_0"):
        pair.same("GET", "experiments/get", {"experiment_id": lenient}, status=200)
        body = {"max_results": 10, "filter": f"experiment_id = '{lenient}'"}
        pair.same("POST", "experiments/search", body, status=200)


def test_search_reads_ids_where_mlflow_does(pair: Pair) -> None:
    runs, models = "runs/search", "logged-models/search"
    bad = {"experiment_ids": ["abc"]}
    # The filter and the page token come first in both searches...
    pair.same_error("POST", runs, {**bad, "filter": "metrics.m >"})
    pair.same_error("POST", runs, {**bad, "page_token": "garbage"})
    pair.same_error("POST", models, {**bad, "filter": "name ="})
    # ... the order_by before the ids of runs, after those of logged models.
    out = pair.same_error("POST", runs, {**bad, "order_by": ["bogus"]}, message=False)
    assert out.tet.json["message"].startswith("Invalid attribute key 'bogus' specified.")
    out = pair.same_error("POST", models, {**bad, "order_by": [{"field_name": "bogus"}]})
    assert out.tet.json["message"].startswith("Invalid experiment ID 'abc'.")
