"""search_run_ids on a small hand-made store; expected orders are worked out by hand from the
rules in MLflow's SQL store (see each test), on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from mlflow.utils.search_utils import SearchUtils
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from search.searchdb import Loader, error_of
from tether.tracking.runs.search import search_run_ids

# Run uuids chosen so the run_uuid tie-breaker order is known: r1 < r2 < r4 < r3.
UUIDS = {
    "r1": "a1" + "0" * 30,
    "r2": "a2" + "0" * 30,
    "r3": "c3" + "0" * 30,
    "r4": "b4" + "0" * 30,
    "r5": "d5" + "0" * 30,
    "r6": "e6" + "0" * 30,
    "r7": "f7" + "0" * 30,
}
NAMES = {uuid: name for name, uuid in UUIDS.items()}


@pytest.fixture(scope="module")
def store(engine: Engine) -> dict[str, int]:
    """Experiments e1 (runs r1-r5, r5 deleted) and e2 (r6 without start_time, r7)."""
    with Session(engine) as session, session.begin():
        load = Loader(session)
        e1 = load.experiment("e1")
        e2 = load.experiment("e2")
        load.run(
            e1,
            "r1",
            run_uuid=UUIDS["r1"],
            start_time=100,
            user_id="alice",
            metrics={"acc": 0.9, "loss": 0.1},
            params={"opt": "Adam", "lr": "0.1", "pat": "a*b"},
            tags={"team": "red"},
            datasets=[("train_ds", "d1", "training")],
        )
        load.run(
            e1,
            "r2",
            run_uuid=UUIDS["r2"],
            start_time=200,
            status="RUNNING",
            user_id="bob",
            metrics={"acc": math.nan, "loss": 0.5},
            params={"opt": "adam", "lr": "0.01", "pat": "axb"},
            tags={"team": "Red"},
            datasets=[("eval_ds", "d2", "evaluation")],
        )
        load.run(
            e1,
            "r3",
            run_uuid=UUIDS["r3"],
            start_time=300,
            end_time=350,
            status="FAILED",
            user_id="alice",
            metrics={"acc": -math.inf},
            params={"opt": "SGD", "pat": "a[1]"},
            tags={"team": "blue"},
            datasets=[("train_ds", "d1", "training"), ("eval_ds", "d2", None)],
        )
        load.run(e1, "r4", run_uuid=UUIDS["r4"], start_time=300, user_id=None, metrics={"acc": 0.5})
        load.run(
            e1,
            "r5",
            run_uuid=UUIDS["r5"],
            start_time=50,
            lifecycle_stage="deleted",
            metrics={"acc": 0.99},
        )
        load.run(e2, "r6", run_uuid=UUIDS["r6"], start_time=None)
        load.run(e2, "r7", run_uuid=UUIDS["r7"], start_time=10)
    return {"e1": e1, "e2": e2}


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as sess:
        yield sess


def names(
    session: Session,
    experiment_ids: list[int],
    filter_string: str = "",
    order_by: list[str] | None = None,
    view: str = "ACTIVE_ONLY",
) -> list[str]:
    ids, token = search_run_ids(
        session,
        experiment_ids=experiment_ids,
        filter_string=filter_string,
        run_view_type=view,
        max_results=1000,
        order_by=order_by or [],
        page_token=None,
    )
    assert token is None
    return [NAMES[i] for i in ids]


def test_default_order_and_view_types(session: Session, store: dict[str, int]) -> None:
    # start_time DESC; r3 and r4 tie at 300 and are ordered by run_uuid (b4 < c3).
    e1 = store["e1"]
    assert names(session, [e1]) == ["r4", "r3", "r2", "r1"]
    assert names(session, [e1], view="ALL") == ["r4", "r3", "r2", "r1", "r5"]
    assert names(session, [e1], view="DELETED_ONLY") == ["r5"]
    assert names(session, [e1], view="deleted_only") == ["r5"]
    assert names(session, []) == []


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        # Metrics: NaN (r2) matches only "!="; -inf is stored as -max double.
        ("metrics.acc > 0.5", ["r1"]),
        ("metrics.acc >= 0.5", ["r4", "r1"]),
        ("metrics.acc != 0.5", ["r3", "r2", "r1"]),
        ("metrics.acc < 0", ["r3"]),
        ("metrics.acc = 0", []),  # the NaN placeholder value must not match
        ("metrics.acc > -1e309", ["r4", "r3", "r1"]),  # -inf < -max double
        ("metrics.loss < 1 AND params.opt ILIKE 'adam'", ["r2", "r1"]),
        ("metrics.missing > 0", []),
        # Params: LIKE is case-sensitive, ILIKE is not; %, _ are the only wildcards.
        ("params.opt = 'adam'", ["r2"]),
        ("params.opt LIKE 'a%'", ["r2"]),
        ("params.opt ILIKE 'a%'", ["r2", "r1"]),
        ("params.opt like 'A%'", ["r1"]),
        ("params.pat LIKE 'a*b'", ["r1"]),
        ("params.pat LIKE 'a_b'", ["r2", "r1"]),
        ("params.pat LIKE 'a[%'", ["r3"]),
        ("params.pat LIKE 'a?b'", []),
        ("params.pat LIKE '%'", ["r3", "r2", "r1"]),
        ("params.lr IS NULL", ["r4", "r3"]),
        ("params.lr IS NOT NULL", ["r2", "r1"]),
        ("params.lr != '0.1'", ["r2"]),
        # Tags (every run also has mlflow.runName).
        ("tags.team = 'red'", ["r1"]),
        ("tags.team != 'red'", ["r3", "r2"]),
        ("tags.team ILIKE 'RED'", ["r2", "r1"]),
        ("tags.`mlflow.runName` = 'r4'", ["r4"]),
        ("tags.team IS NULL", ["r4"]),
        # Attributes.
        ("attributes.status = 'FINISHED'", ["r4", "r1"]),
        ("status != 'FINISHED'", ["r3", "r2"]),
        ("status = 'finished'", []),
        ("attributes.status ILIKE 'fin%'", ["r4", "r1"]),
        ("attributes.user_id = 'alice'", ["r3", "r1"]),
        ("user_id != 'alice'", ["r2"]),  # r4's NULL user matches neither
        ("run_name = 'r2'", ["r2"]),
        ("attributes.run_name LIKE 'r%'", ["r4", "r3", "r2", "r1"]),
        ("`Run Name` ILIKE 'R1'", ["r1"]),
        (f"run_id IN ('{UUIDS['r1']}', '{UUIDS['r3']}')", ["r3", "r1"]),
        (f"attributes.run_id NOT IN ('{UUIDS['r1']}', '{UUIDS['r3']}')", ["r4", "r2"]),
        (f"run_id = '{UUIDS['r2']}'", ["r2"]),
        ("created >= 200", ["r4", "r3", "r2"]),
        ("attributes.start_time < 200", ["r1"]),
        ("start_time > 100.5", ["r4", "r3", "r2"]),
        ("end_time > 0", ["r3"]),
        ("attributes.artifact_uri LIKE 'file:///artifacts/a%'", ["r2", "r1"]),
        # Datasets: a run matches when any of its inputs does.
        ("datasets.name = 'train_ds'", ["r3", "r1"]),
        ("datasets.digest IN ('d2')", ["r3", "r2"]),
        ("datasets.context = 'training'", ["r3", "r1"]),
        ("datasets.context = 'evaluation'", ["r2"]),  # r3's eval input has no context
        ("datasets.name != 'train_ds'", ["r3", "r2"]),
        ("datasets.name NOT IN ('eval_ds')", ["r3", "r1"]),
        ("datasets.name LIKE 'TRAIN%'", []),
        ("datasets.name ILIKE 'TRAIN%'", ["r3", "r1"]),
        ("metrics.acc > 0 and tags.team = 'red' and datasets.context = 'training'", ["r1"]),
    ],
)
def test_filters(
    session: Session, store: dict[str, int], filter_string: str, expected: list[str]
) -> None:
    assert names(session, [store["e1"]], filter_string) == expected


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        # Metrics: values, then NaN (r2), then runs without the metric; for ASC and DESC.
        (["metrics.acc ASC"], ["r3", "r4", "r1", "r2"]),
        (["metrics.acc"], ["r3", "r4", "r1", "r2"]),
        (["metrics.acc DESC"], ["r1", "r4", "r3", "r2"]),
        # Missing values last; their ties by start_time DESC, run_uuid (r4 before r3).
        (["metrics.loss DESC"], ["r2", "r1", "r4", "r3"]),
        (["metrics.loss ASC"], ["r1", "r2", "r4", "r3"]),
        # Params and tags sort as strings (upper case before lower case), missing last.
        (["params.opt ASC"], ["r1", "r3", "r2", "r4"]),
        (["params.opt DESC"], ["r2", "r3", "r1", "r4"]),
        (["tags.team DESC"], ["r1", "r3", "r2", "r4"]),
        (["tags.team"], ["r2", "r3", "r1", "r4"]),
        # Attributes: NULL last for ASC and DESC.
        (["attributes.user_id ASC"], ["r3", "r1", "r2", "r4"]),
        (["user_id DESC"], ["r2", "r3", "r1", "r4"]),
        (["end_time DESC"], ["r3", "r4", "r2", "r1"]),
        (["end_time ASC"], ["r3", "r4", "r2", "r1"]),
        # Ordering by start_time replaces the default start_time DESC: ties by run_uuid only.
        (["start_time ASC"], ["r1", "r2", "r4", "r3"]),
        (["created DESC"], ["r4", "r3", "r2", "r1"]),
        (["run_name DESC"], ["r4", "r3", "r2", "r1"]),
        (["attributes.run_id DESC"], ["r3", "r4", "r2", "r1"]),
        (["status ASC", "metrics.acc DESC"], ["r3", "r1", "r4", "r2"]),
        (["metrics.loss DESC", "run_id DESC"], ["r2", "r1", "r3", "r4"]),
    ],
)
def test_order_by(
    session: Session, store: dict[str, int], order_by: list[str], expected: list[str]
) -> None:
    assert names(session, [store["e1"]], order_by=order_by) == expected


def test_filter_and_order_together(session: Session, store: dict[str, int]) -> None:
    got = names(session, [store["e1"]], "params.opt ILIKE 'adam'", ["metrics.acc DESC"])
    assert got == ["r1", "r2"]


def test_null_start_time(session: Session, store: dict[str, int], db_kind: str) -> None:
    e2 = store["e2"]
    # An explicit order_by puts NULL last on every backend...
    assert names(session, [e2], order_by=["start_time ASC"]) == ["r7", "r6"]
    assert names(session, [e2], order_by=["start_time DESC"]) == ["r7", "r6"]
    # ...the default `start_time DESC` is the database's: NULL is the smallest value on SQLite
    # and the largest on PostgreSQL (MLflow's SQL store behaves the same way).
    expected = ["r7", "r6"] if db_kind == "sqlite" else ["r6", "r7"]
    assert names(session, [e2]) == expected
    assert names(session, [store["e1"], e2], "start_time < 150") == ["r1", "r7"]


def test_several_experiments(session: Session, store: dict[str, int]) -> None:
    got = names(session, [store["e1"], store["e2"]], "attributes.status = 'FINISHED'")
    assert set(got) == {"r4", "r1", "r6", "r7"}


def _pages(
    session: Session, experiment_ids: list[int], max_results: int, **kwargs: Any
) -> list[tuple[list[str], str | None]]:
    pages = []
    token = None
    while True:
        ids, token = search_run_ids(
            session,
            experiment_ids=experiment_ids,
            filter_string=kwargs.get("filter_string", ""),
            run_view_type=kwargs.get("view", "ALL"),
            max_results=max_results,
            order_by=kwargs.get("order_by", []),
            page_token=token,
        )
        pages.append(([NAMES[i] for i in ids], token))
        if token is None:
            return pages
        assert len(pages) < 20


def test_paging(session: Session, store: dict[str, int]) -> None:
    pages = _pages(session, [store["e1"]], 2)
    assert [p[0] for p in pages] == [["r4", "r3"], ["r2", "r1"], ["r5"]]
    # Tokens are MLflow's: base64 of {"offset": N}, and MLflow can read them.
    assert [p[1] for p in pages] == [
        SearchUtils.create_page_token(2).decode(),
        SearchUtils.create_page_token(4).decode(),
        None,
    ]
    assert json.loads(base64.b64decode(pages[0][1] or "")) == {"offset": 2}
    assert SearchUtils.parse_start_offset_from_page_token(pages[1][1]) == 4
    # A page that ends exactly at the last run has no next token.
    assert [p[0] for p in _pages(session, [store["e1"]], 5)] == [["r4", "r3", "r2", "r1", "r5"]]
    ordered = _pages(session, [store["e1"]], 3, order_by=["metrics.acc DESC"])
    assert [p[0] for p in ordered] == [["r5", "r1", "r4"], ["r3", "r2"]]


def test_one_query_with_limit(session: Session, store: dict[str, int], engine: Engine) -> None:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        search_run_ids(
            session,
            experiment_ids=[store["e1"]],
            filter_string="metrics.acc > 0 AND params.opt LIKE 'A%' AND datasets.context = 'x'",
            run_view_type="ALL",
            max_results=2,
            order_by=["metrics.acc DESC", "params.lr", "tags.team DESC"],
            page_token=None,
        )
    finally:
        event.remove(engine, "before_cursor_execute", record)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1
    assert "LIMIT" in selects[0].upper()


def _search(session: Session, **overrides: Any) -> tuple[list[str], str | None]:
    kwargs: dict[str, Any] = {
        "experiment_ids": [1],
        "filter_string": "",
        "run_view_type": "ACTIVE_ONLY",
        "max_results": 10,
        "order_by": [],
        "page_token": None,
    }
    kwargs.update(overrides)
    return search_run_ids(session, **kwargs)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"max_results": 0},
            "Invalid value 0 for parameter 'max_results' supplied. It must be a positive integer",
        ),
        (
            {"max_results": 50001},
            "Invalid value 50001 for parameter 'max_results' supplied. It must be at most 50000",
        ),
        ({"page_token": "abc"}, "Invalid page token, could not base64-decode"),
        ({"page_token": base64.b64encode(b"[1]").decode()}, "Invalid page token, parsed value="),
        (
            {"page_token": base64.b64encode(b'{"offset": -3}').decode()},
            "Invalid page token, parsed value=",
        ),
        (
            {"order_by": ["metrics.a", "metrics.a DESC"]},
            "`order_by` contains duplicate fields: ['metrics.a', 'metrics.a DESC']",
        ),
        ({"order_by": ["datasets.name"]}, "Invalid identifier type 'dataset'"),
        ({"run_view_type": "SOME"}, "Invalid view type 'SOME'"),
        ({"filter_string": "metrics.a ~ 1"}, "Invalid clause(s) in filter string"),
        ({"experiment_ids": ["x"]}, "Invalid experiment ID 'x'"),
        ({"experiment_ids": [2**70]}, "Invalid experiment ID"),
    ],
)
def test_errors(session: Session, store: dict[str, int], overrides: Any, message: str) -> None:
    assert error_of(lambda: _search(session, **overrides)).message.startswith(message)


def test_like_pattern_with_trailing_backslash(
    session: Session, store: dict[str, int], db_kind: str
) -> None:
    # PostgreSQL treats backslash as LIKE's escape character (MLflow too, there): a pattern
    # ending in one is an error we report instead of a database exception.
    def search() -> tuple[list[str], str | None]:
        return _search(session, experiment_ids=[store["e1"]], filter_string="params.opt LIKE 'a\\'")

    if db_kind == "postgres":
        assert "escape character" in error_of(search).message
    else:
        assert search() == ([], None)


def test_huge_values_do_not_break_the_query(session: Session, store: dict[str, int]) -> None:
    e1 = store["e1"]
    assert names(session, [e1], "start_time < 99999999999999999999999") == [
        "r4",
        "r3",
        "r2",
        "r1",
    ]
    assert names(session, [e1], "metrics.acc < 1e400") == ["r4", "r3", "r1"]
    big_offset = base64.b64encode(json.dumps({"offset": 2**62}).encode()).decode()
    assert _search(session, experiment_ids=[e1], page_token=big_offset) == ([], None)
