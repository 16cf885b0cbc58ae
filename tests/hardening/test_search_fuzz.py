"""Generated hostile filters and order_by clauses at every search (hypothesis), on SQLite and
PostgreSQL: whatever the text (controls, NUL, right-to-left marks, 4-byte characters, huge
numbers, deep parentheses, long lists, many clauses), the answer is never a 5xx and the
server keeps serving.

(Lone surrogates are left out: the JSON body parser refuses them, which is another test's
subject.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import MlflowRest, TetherServer

# Text as hostile clients write it, without lone surrogates.
_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from("'\"`()%_\\\x00"),
    max_size=30,
)
_ENTITY = st.sampled_from(
    ["", "attributes.", "params.", "metrics.", "tags.", "dataset.", "datasets.", "x.", "`"]
)
_KEY = (
    st.sampled_from(
        [
            "name",
            "run_id",
            "status",
            "start_time",
            "experiment_id",
            "creation_time",
            "version_number",
            "source_path",
            "model_id",
            "p",
            "m",
            "t",
            "run_name",
            "user_id",
        ]
    )
    | _TEXT
)
_OP = st.sampled_from(
    [
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "==",
        "<>",
        "LIKE",
        "ILIKE",
        "RLIKE",
        "IN",
        "NOT IN",
        "IS NULL",
        "IS NOT NULL",
        "",
        "==",
    ]
)
_NUMBER = st.sampled_from(["0", "-1", "1.5", "1e400", "-1e400", "9" * 400, "0x10", "NaN", ".5e-3"])


@st.composite
def _value(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return "'" + draw(_TEXT).replace("'", "''") + "'"
    if kind == 1:
        return draw(_NUMBER)
    if kind == 2:
        items = draw(st.lists(_TEXT | _NUMBER, max_size=8))
        return "(" + ", ".join(f"'{i}'" for i in items) + ")"
    if kind == 3:
        depth = draw(st.integers(1, 300))
        return "(" * depth + "'x'" + ")" * draw(st.integers(0, depth))
    return draw(_TEXT)


@st.composite
def filters(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(_TEXT)
    clauses = [
        f"{draw(_ENTITY)}{draw(_KEY)} {draw(_OP)} {draw(_value())}"
        for _ in range(draw(st.integers(1, 6)))
    ]
    joiner = draw(st.sampled_from([" AND ", " and ", " OR ", " ", "; ", " AND AND "]))
    return joiner.join(clauses)


_ORDER_BY = st.lists(
    st.builds(
        lambda entity, key, direction: f"{entity}{key}{direction}",
        _ENTITY,
        _KEY,
        st.sampled_from(["", " ASC", " DESC", " desc", " sideways", " ASC DESC"]),
    ),
    max_size=4,
)


@pytest.fixture(scope="module")
def rest(tether_server: TetherServer) -> Iterator[MlflowRest]:
    with MlflowRest(tether_server.url, timeout=60) as client:
        exp = client.post("experiments/create", {"name": "fuzz-target"})
        assert exp.status in (200, 400)  # already there when the module's server is reused
        yield client


def _search(rest: MlflowRest, kind: str, filter_string: str, order_by: list[str]) -> Any:
    if kind in ("registered-models", "model-versions"):
        return rest.get(f"{kind}/search", params={"filter": filter_string, "order_by": order_by})
    body: dict[str, Any] = {"filter": filter_string, "order_by": order_by}
    if kind == "logged-models":
        body["order_by"] = [{"field_name": o} for o in order_by]
    if kind != "experiments":
        body["experiment_ids"] = ["0"]
    return rest.post(f"{kind}/search", body)


@pytest.mark.parametrize(
    "kind", ["runs", "experiments", "logged-models", "registered-models", "model-versions"]
)
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(filter_string=filters(), order_by=_ORDER_BY)
def test_hostile_searches_never_get_a_5xx(
    rest: MlflowRest, kind: str, filter_string: str, order_by: list[str]
) -> None:
    answer = _search(rest, kind, filter_string, order_by)
    assert answer.status < 500, (filter_string, order_by, answer.text[:500])
    assert answer.status in (200, 400), (filter_string, order_by, answer.text[:500])
    if answer.status == 400:
        assert answer.error_code == "INVALID_PARAMETER_VALUE", answer.json
