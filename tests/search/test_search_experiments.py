"""search_experiment_ids on a hand-made store; expected orders worked out by hand."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mlflow.utils.search_utils import SearchUtils
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from search.searchdb import Loader, error_of
from tether.tracking.experiments.search import search_experiment_ids

NAMES = {1: "alpha", 2: "Beta", 3: "gamma", 4: "delta", 5: "alpha_2", 6: "nulls"}


@pytest.fixture(scope="module")
def store(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        load = Loader(session)
        load.experiment(
            "alpha", experiment_id=1, creation_time=100, last_update_time=500, tags={"env": "prod"}
        )
        load.experiment(
            "Beta",
            experiment_id=2,
            creation_time=300,
            last_update_time=400,
            tags={"env": "dev", "owner": "x"},
        )
        load.experiment("gamma", experiment_id=3, creation_time=200, last_update_time=None)
        load.experiment("delta", experiment_id=4, creation_time=300, lifecycle_stage="deleted")
        load.experiment(
            "alpha_2", experiment_id=5, creation_time=50, last_update_time=500, tags={"env": "Prod"}
        )


@pytest.fixture
def session(engine: Engine, store: None) -> Iterator[Session]:
    with Session(engine) as sess:
        yield sess


def names(
    session: Session,
    filter_string: str = "",
    order_by: list[str] | None = None,
    view: str = "ACTIVE_ONLY",
) -> list[str]:
    ids, token = search_experiment_ids(
        session,
        view_type=view,
        filter_string=filter_string,
        max_results=1000,
        order_by=order_by or [],
        page_token=None,
    )
    assert token is None
    return [NAMES[i] for i in ids]


def test_default_order(session: Session) -> None:
    # creation_time DESC, experiment_id ASC: Beta (300, id 2) before delta (300, id 4).
    assert names(session) == ["Beta", "gamma", "alpha", "alpha_2"]
    assert names(session, view="ALL") == ["Beta", "delta", "gamma", "alpha", "alpha_2"]
    assert names(session, view="DELETED_ONLY") == ["delta"]


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("name = 'alpha'", ["alpha"]),
        ("name != 'alpha'", ["Beta", "gamma", "alpha_2"]),
        ("name LIKE 'a%'", ["alpha", "alpha_2"]),
        ("name LIKE 'A%'", []),
        ("name ILIKE 'b%'", ["Beta"]),
        ("name LIKE 'alpha_2'", ["alpha_2"]),
        ("name LIKE 'alpha_'", []),
        ("attribute.name LIKE '%a'", ["Beta", "gamma", "alpha"]),
        ("tags.env = 'prod'", ["alpha"]),
        ("tags.env ILIKE 'prod'", ["alpha", "alpha_2"]),
        ("tags.env != 'prod'", ["Beta", "alpha_2"]),
        ("tags.env LIKE 'P%'", ["alpha_2"]),
        ("tags.owner IS NULL", ["gamma", "alpha", "alpha_2"]),
        ("tags.owner IS NOT NULL", ["Beta"]),
        ("creation_time > 100", ["Beta", "gamma"]),
        ("creation_time >= 100 AND creation_time < 300", ["gamma", "alpha"]),
        ("last_update_time > 450", ["alpha", "alpha_2"]),
        ("last_update_time != 500", ["Beta"]),
        ("experiment_id = '3'", ["gamma"]),
        ("experiment_id != '3'", ["Beta", "alpha", "alpha_2"]),
        ("experiment_id IN ('1', '2')", ["Beta", "alpha"]),
        ("experiment_id NOT IN ('1')", ["Beta", "gamma", "alpha_2"]),
        ("name LIKE 'alpha%' AND tags.env = 'Prod'", ["alpha_2"]),
    ],
)
def test_filters(session: Session, filter_string: str, expected: list[str]) -> None:
    assert names(session, filter_string) == expected


def test_order_by(session: Session, db_kind: str) -> None:
    # Binary string order; ties (and every clause without experiment_id) end with
    # experiment_id DESC, as in MLflow.
    assert names(session, order_by=["name"]) == ["Beta", "alpha", "alpha_2", "gamma"]
    assert names(session, order_by=["name DESC"]) == ["gamma", "alpha_2", "alpha", "Beta"]
    assert names(session, order_by=["experiment_id DESC"]) == ["alpha_2", "gamma", "Beta", "alpha"]
    assert names(session, order_by=["attribute.experiment_id"]) == [
        "alpha",
        "Beta",
        "gamma",
        "alpha_2",
    ]
    assert names(session, order_by=["creation_time"], view="ALL") == [
        "alpha_2",
        "alpha",
        "gamma",
        "delta",
        "Beta",
    ]
    # last_update_time 500 ties (alpha id 1, alpha_2 id 5): experiment_id DESC. gamma's NULL
    # sorts as the database sorts NULL: smallest on SQLite, largest on PostgreSQL.
    expected = ["Beta", "alpha_2", "alpha"]
    expected = ["gamma", *expected] if db_kind == "sqlite" else [*expected, "gamma"]
    assert names(session, order_by=["last_update_time ASC"]) == expected


def test_paging(session: Session) -> None:
    ids, token = search_experiment_ids(
        session, view_type="ALL", filter_string="", max_results=2, order_by=[], page_token=None
    )
    assert [NAMES[i] for i in ids] == ["Beta", "delta"]
    assert token == SearchUtils.create_page_token(2).decode()
    ids, token = search_experiment_ids(
        session, view_type="ALL", filter_string="", max_results=2, order_by=[], page_token=token
    )
    assert [NAMES[i] for i in ids] == ["gamma", "alpha"]
    assert token is not None
    ids, token = search_experiment_ids(
        session, view_type="ALL", filter_string="", max_results=2, order_by=[], page_token=token
    )
    assert [NAMES[i] for i in ids] == ["alpha_2"]
    assert token is None
    # Exactly a full last page: no token.
    ids, token = search_experiment_ids(
        session, view_type="ACTIVE_ONLY", filter_string="", max_results=4, order_by=[],
        page_token=None,
    )  # fmt: skip
    assert len(ids) == 4
    assert token is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_results": 0}, "Invalid value 0 for parameter 'max_results' supplied."),
        ({"max_results": 50001}, "Invalid value 50001 for parameter 'max_results' supplied."),
        ({"page_token": "!!"}, "Invalid page token"),
        ({"order_by": ["tags.a"]}, "Invalid order_by entity: tag"),
        ({"order_by": ["start_time"]}, "Invalid attribute key 'start_time' specified."),
        ({"filter_string": "metrics.a > 1"}, "Invalid entity type 'metrics'."),
        ({"filter_string": "experiment_id = 'x'"}, "Invalid experiment ID 'x'."),
        ({"filter_string": "creation_time > 1.5"}, "Invalid value for numeric attribute"),
        ({"view_type": "nope"}, "Invalid view type 'nope'"),
    ],
)
def test_errors(session: Session, overrides: Any, message: str) -> None:
    kwargs: dict[str, Any] = {
        "view_type": "ACTIVE_ONLY",
        "filter_string": "",
        "max_results": 10,
        "order_by": [],
        "page_token": None,
    }
    kwargs.update(overrides)
    assert error_of(lambda: search_experiment_ids(session, **kwargs)).message.startswith(message)
