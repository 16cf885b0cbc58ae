"""Every search (runs, experiments, logged models, registered models, model versions) is
bounded, with a clear 400 INVALID_PARAMETER_VALUE beyond the bounds and an answer within them,
on SQLite and PostgreSQL.

Regressions: 1,001 AND-ed clauses answered 500 after seconds of CPU (SQLite's expression
depth); 31 order_by keys on runs with params made SQLite 3.40 segfault (the server died);
PostgreSQL spent minutes planning 100-250 EXISTS clauses; a 2-million-item IN list took 34 s;
40,000 experiment ids took seconds per request.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from support import MlflowRest, TetherServer, unique_name
from tether.db.models import Param, Run
from tether.search.limits import (
    MAX_EXPERIMENT_IDS,
    MAX_FILTER_CLAUSES,
    MAX_FILTER_LENGTH,
    MAX_FILTER_TOKENS,
    MAX_ORDER_BY_KEYS,
    MAX_PAGE_TOKEN_LENGTH,
    MAX_PATTERN_LENGTH,
)
from tether.search.sql import planned_cheaply


@pytest.fixture(scope="module")
def rest(tether_server: TetherServer) -> Iterator[MlflowRest]:
    # The limits are well above real use, so the requests at them are big: a generous timeout
    # (a stalled planner took minutes, far beyond it).
    with MlflowRest(tether_server.url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def experiment_id(rest: MlflowRest) -> str:
    """An experiment with a run that has params, metrics and tags (so every EXISTS clause and
    every order_by join has rows to look at)."""
    exp = rest.post("experiments/create", {"name": unique_name("bounds")}).json["experiment_id"]
    run_id = rest.post("runs/create", {"experiment_id": exp}).json["run"]["info"]["run_id"]
    status, _ = rest.post(
        "runs/log-batch",
        {
            "run_id": run_id,
            "params": [{"key": f"p{i}", "value": "x"} for i in range(40)],
            "metrics": [
                {"key": f"m{i}", "value": float(i), "timestamp": 1, "step": 0} for i in range(40)
            ],
            "tags": [{"key": f"t{i}", "value": "x"} for i in range(40)],
        },
    )
    assert status == 200
    return str(exp)


def _search(rest: MlflowRest, kind: str, experiment_id: str, **fields: Any) -> Any:
    """One search of `kind` with `filter` / `order_by` / `page_token` as MLflow sends them."""
    if kind in GET_SEARCHES:
        params = {k: v for k, v in fields.items() if k != "page_token"}
        return rest.get(f"{kind}/search", params=params)
    body = dict(fields)
    if kind == "experiments":
        return rest.post("experiments/search", body)
    body["experiment_ids"] = [experiment_id]
    if kind == "logged-models" and "order_by" in body:
        body["order_by"] = [{"field_name": key} for key in body["order_by"]]
    return rest.post(f"{kind}/search", body)


SEARCHES = ["runs", "experiments", "logged-models", "registered-models", "model-versions"]
GET_SEARCHES = ("registered-models", "model-versions")  # MLflow's registry searches are GETs
# A clause each search accepts, and order_by keys it accepts (distinct where it refuses
# duplicates: the registry has only two or four keys, so its long lists repeat and fail on
# the count before the duplicate).
CLAUSE = {
    "runs": "params.p{i} = 'x'",
    "experiments": "tags.t{i} = 'x'",
    "logged-models": "params.p{i} = 'x'",
    "registered-models": "tags.t{i} = 'x'",
    "model-versions": "tags.t{i} = 'x'",
}
ORDER_KEY = {
    "runs": "metrics.m{i}",
    "experiments": "name",
    "logged-models": "metrics.m{i}",
    "registered-models": "name",
    "model-versions": "name",
}


def _filter(kind: str, clauses: int) -> str:
    return " and ".join(CLAUSE[kind].format(i=i % 40) for i in range(clauses))


def _refused(response: Any, fragment: str) -> None:
    assert (response.status, response.error_code) == (400, "INVALID_PARAMETER_VALUE"), (
        response.status,
        response.text[:300],
    )
    assert fragment in response.json["message"]


@pytest.mark.parametrize("kind", SEARCHES)
def test_filter_clauses_are_bounded(rest: MlflowRest, experiment_id: str, kind: str) -> None:
    at_limit = _search(rest, kind, experiment_id, filter=_filter(kind, MAX_FILTER_CLAUSES))
    assert at_limit.status == 200, at_limit.text[:300]
    if kind == "runs":  # the run matches every clause: the SQL really ran them all
        assert len(at_limit.json["runs"]) == 1
    over = _search(rest, kind, experiment_id, filter=_filter(kind, MAX_FILTER_CLAUSES + 1))
    _refused(over, "too many clauses")
    if kind not in GET_SEARCHES:  # 1,001 clauses do not fit in a URL
        thousand = _search(rest, kind, experiment_id, filter=_filter(kind, 1001))
        _refused(thousand, "too many clauses")


@pytest.mark.parametrize("kind", SEARCHES)
def test_order_by_keys_are_bounded(rest: MlflowRest, experiment_id: str, kind: str) -> None:
    keys = [ORDER_KEY[kind].format(i=i) for i in range(200)]
    _refused(_search(rest, kind, experiment_id, order_by=keys[: MAX_ORDER_BY_KEYS + 1]), "order_by")
    # 31 keys crashed SQLite (a segfault: the whole server); 2,000 overflowed the recursion.
    _refused(_search(rest, kind, experiment_id, order_by=keys[:31]), "order_by")
    if kind not in GET_SEARCHES:
        _refused(_search(rest, kind, experiment_id, order_by=keys * 10), "order_by")
    if kind in ("runs", "logged-models"):
        at_limit = _search(rest, kind, experiment_id, order_by=keys[:MAX_ORDER_BY_KEYS])
        assert at_limit.status == 200, at_limit.text[:300]
    assert rest.get("/health").status == 200


@pytest.mark.parametrize("kind", ["runs", "experiments", "logged-models"])
def test_filter_length_and_tokens_are_bounded(
    rest: MlflowRest, experiment_id: str, kind: str
) -> None:
    key = CLAUSE[kind].split(" ", 1)[0].format(i=0)
    long_value = f"{key} = '{'x' * MAX_FILTER_LENGTH}'"
    _refused(_search(rest, kind, experiment_id, filter=long_value), "characters")
    items = ",".join(["'x'"] * (MAX_FILTER_TOKENS // 2 + 1))
    _refused(_search(rest, kind, experiment_id, filter=f"{key} IN ({items})"), "tokens")
    # Within the bounds: a long IN list is answered (MLflow's parser stops at 5,000 items).
    within = ",".join(f"'{i}'" for i in range(6000))
    in_list = {"runs": "attributes.run_id", "experiments": "experiment_id"}.get(kind, "name")
    answered = _search(rest, kind, experiment_id, filter=f"{in_list} IN ({within})")
    assert answered.status == 200, answered.text[:300]


def test_a_long_like_pattern_is_refused_and_one_at_the_limit_answered(
    rest: MlflowRest, experiment_id: str
) -> None:
    # SQLite refuses LIKE / GLOB patterns over 50,000 bytes (a 500 before); 4-byte characters
    # and GLOB's escaping of "*" are the worst cases of the limit.
    for char in ("\U0001f600", "*"):
        pattern = char * MAX_PATTERN_LENGTH
        answered = _search(rest, "runs", experiment_id, filter=f"params.p0 LIKE '{pattern}'")
        assert answered.status == 200, answered.text[:300]
        too_long = _search(rest, "runs", experiment_id, filter=f"params.p0 LIKE '{pattern}x'")
        _refused(too_long, "LIKE pattern")
    ilike = _search(
        rest, "experiments", "", filter=f"name ILIKE '{'%' * (MAX_PATTERN_LENGTH + 1)}'"
    )
    _refused(ilike, "ILIKE pattern")


@pytest.mark.parametrize("kind", ["runs", "logged-models"])
def test_experiment_ids_are_bounded(rest: MlflowRest, experiment_id: str, kind: str) -> None:
    ids = [str(i) for i in range(1, MAX_EXPERIMENT_IDS + 1)]
    ids[0] = experiment_id
    answered = rest.post(f"{kind}/search", {"experiment_ids": ids})
    assert answered.status == 200, answered.text[:300]
    over = rest.post(f"{kind}/search", {"experiment_ids": [*ids, "0"]})
    _refused(over, "experiment_ids")


@pytest.mark.parametrize("kind", ["runs", "experiments", "logged-models"])
def test_page_tokens_are_bounded(rest: MlflowRest, experiment_id: str, kind: str) -> None:
    payload = json.dumps({"offset": 1, "padding": "x" * MAX_PAGE_TOKEN_LENGTH}).encode()
    token = base64.b64encode(payload).decode()
    _refused(_search(rest, kind, experiment_id, page_token=token), "page token")


def _exists_count(statement: Any) -> tuple[int, int]:
    sql = str(statement.compile(dialect=postgresql.dialect()))
    return sql.count("EXISTS"), sql.count("IS true")


def test_many_exists_clauses_are_kept_out_of_postgresqls_join_search() -> None:
    """PostgreSQL turns each top-level EXISTS into a join and searches their best order
    (minutes for 100); beyond three, each is written `(EXISTS ...) IS true`, planned as a
    subplan. SQLite, and filters with few such clauses, keep their plans."""

    def clauses(n: int) -> list[Any]:
        exists = sa.exists().where(Param.run_uuid == Run.run_uuid, Param.key == "k")
        return [Run.status == "RUNNING", *([exists] * (n - 1)), ~exists]

    few = sa.select(Run.run_uuid).where(*planned_cheaply(clauses(3), "postgresql"))
    assert _exists_count(few) == (3, 0)
    many = sa.select(Run.run_uuid).where(*planned_cheaply(clauses(4), "postgresql"))
    assert _exists_count(many) == (4, 4)  # the NOT EXISTS too; the plain comparison is left
    unchanged = clauses(10)
    assert planned_cheaply(unchanged, "sqlite") is unchanged


def test_logged_model_datasets_are_bounded(rest: MlflowRest, experiment_id: str) -> None:
    datasets = [{"dataset_name": f"d{i}"} for i in range(MAX_FILTER_CLAUSES + 1)]
    body = {"experiment_ids": [experiment_id], "datasets": datasets[:-1]}
    assert rest.post("logged-models/search", body).status == 200
    body["datasets"] = datasets
    _refused(rest.post("logged-models/search", body), "datasets")


@pytest.mark.parametrize(
    ("filter_string", "matches"),
    [
        ("start_time = " + "9" * 400, 0),  # beyond a double: float() raised OverflowError
        ("start_time < -" + "9" * 400, 0),
        ("start_time > -" + "9" * 400, 1),
        ("metrics.m1 < " + "9" * 400, 1),
        ("attributes.end_time > " + "9" * 30, 0),  # beyond int64, within a double
    ],
)
def test_numbers_beyond_every_range_compare_as_infinities(
    rest: MlflowRest, experiment_id: str, filter_string: str, matches: int
) -> None:
    """Every int64 and finite double is below +huge and above -huge: the search answers."""
    answer = rest.post("runs/search", {"experiment_ids": [experiment_id], "filter": filter_string})
    assert answer.status == 200, answer.text
    assert len(answer.json.get("runs", [])) == matches, (filter_string, answer.text[:300])
