"""The registry's filter / order_by parsing, checked against MLflow's own (the installed package).

MLflow's outcome is its parser (`SearchModelUtils` / `SearchModelVersionUtils`) followed by the
checks its SQL store makes while building the query; ours is `tether.registry.search`. Messages
are compared with set literals sorted (MLflow prints Python sets in hash order).
"""

from __future__ import annotations

import contextlib
import random
import warnings
from typing import Any

import pytest
from mlflow.utils.search_utils import SearchModelUtils, SearchModelVersionUtils

from support.oracle import (
    Outcome,
    assert_agrees,
    assert_fuzz_agrees,
    outcome,
    random_filter,
    random_texts,
)
from tether.errors import MlflowError
from tether.registry.search import (
    parse_model_filter,
    parse_model_order_by,
    parse_version_filter,
    parse_version_order_by,
)

with warnings.catch_warnings():
    # Importing MLflow's registry store configures its mappers (a SQLAlchemy deprecation).
    warnings.simplefilter("ignore")
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

# A store without a database: the query-building methods only need the class's helpers.
_STORE = object.__new__(SqlAlchemyStore)


def _mlflow_model_filter(filter_string: str) -> list[tuple[Any, ...]]:
    parsed = SearchModelUtils.parse_search_filter(filter_string)
    _STORE._get_search_registered_model_filter_query(None, parsed, "sqlite")
    return [(c["type"], c["key"], c["comparator"], c["value"]) for c in parsed]


def _mlflow_version_filter(filter_string: str) -> list[tuple[Any, ...]]:
    parsed = SearchModelVersionUtils.parse_search_filter(filter_string)
    _STORE._get_search_model_versions_filter_clauses(parsed, "sqlite")
    out = []
    for c in parsed:
        value = c["value"]
        if c["type"] == "attribute" and c["key"] == "version_number":
            value = int(value)
        out.append((c["type"], c["key"], c["comparator"], value))
    return out


def _ours(parse: Any, filter_string: str) -> list[tuple[Any, ...]]:
    return [(c.entity, c.key, c.comparator, c.value) for c in parse(filter_string)]


def model_filter(filter_string: str) -> tuple[Outcome, Outcome]:
    return (
        outcome(_mlflow_model_filter, filter_string),
        outcome(_ours, parse_model_filter, filter_string),
    )


def version_filter(filter_string: str) -> tuple[Outcome, Outcome]:
    return (
        outcome(_mlflow_version_filter, filter_string),
        outcome(_ours, parse_version_filter, filter_string),
    )


def _mlflow_order(method: Any, clauses: list[str]) -> list[tuple[str, bool]]:
    out = []
    for clause in method(clauses):
        column = clause.element.key
        out.append((column, clause.modifier.__name__ == "asc_op"))
    return out


def model_order_by(clauses: list[str]) -> tuple[Outcome, Outcome]:
    return (
        outcome(_mlflow_order, SqlAlchemyStore._parse_search_registered_models_order_by, clauses),
        outcome(parse_model_order_by, clauses),
    )


def version_order_by(clauses: list[str]) -> tuple[Outcome, Outcome]:
    return (
        outcome(
            _mlflow_order,
            SqlAlchemyStore._parse_search_model_versions_order_by,
            clauses or ["last_updated_timestamp DESC", "name ASC", "version_number DESC"],
        ),
        outcome(parse_version_order_by, clauses),
    )


# --------------------------------------------------------------------------------- filters

MODEL_FILTERS = [
    "name = 'a'",
    'name = "a b"',
    "name != 'a'",
    "name LIKE 'a%'",
    "name like 'a%'",
    "name ILIKE '%A_'",
    "name IN ('a', 'b')",
    "name IN ('a',)",
    "name NOT IN ('a')",
    "name not in ('a', \"b\")",
    "attribute.name = 'x'",
    "tags.t = 'v'",
    "tag.t != 'v'",
    "tags.`a b` LIKE 'v%'",
    "tags.\"a.b\" ILIKE 'v%'",
    'tags.t = "v"',
    "name = 'a' AND tags.t = 'v' and tags.u != 'w'",
    "tags.`mlflow.prompt.is_prompt` = 'true'",
    "name = 'it''s'",
    "",
    # Rejected:
    "name > 'a'",
    "name = 1",
    "name = a",
    "name = `a`",
    "tags.t = 1",
    "tags.t > 'v'",
    "tags.t IN ('a')",
    "tags.t = ('a')",
    "creation_timestamp > 1",
    "version_number = 1",
    "run_id = 'a'",
    "`name` = 'a'",
    "\"name\" = 'a'",
    "attributes.name = 'a'",
    "foo.bar = 'a'",
    "`tags`.t = 'a'",
    "name = 'a' OR name = 'b'",
    "name = 'a'; name = 'b'",
    "(name = 'a')",
    "NOT name = 'a'",
    "name RLIKE 'a'",
    "name == 'a'",
    "name <> 'a'",
    "name IN ()",
    "name IN (1, 2)",
    "   ",
    "name",
    "'name' = 'a'",
]


@pytest.mark.parametrize("filter_string", MODEL_FILTERS)
def test_model_filter_like_mlflow(filter_string: str) -> None:
    mlflow_outcome, ours = model_filter(filter_string)
    assert ours[0] != "CRASH", ours
    if mlflow_outcome[0] == "CRASH":
        assert ours[0] == "ERR"
        return
    assert_agrees(mlflow_outcome, ours)


VERSION_FILTERS = [
    "name = 'a'",
    "name IN ('a', 'b')",
    "name NOT IN ('a')",
    "run_id = 'abc'",
    "run_id IN ('a', 'b')",
    "run_id NOT IN ('a')",
    "run_id != 'a'",
    "source_path = 's3://x'",
    "source_path LIKE 's3://%'",
    "source_path ILIKE 'S3://%'",
    "version_number = 1",
    "version_number > 1",
    "version_number <= 10",
    "version_number != 3",
    "version_number = '3'",
    "version_number >= -1",
    "tags.t = 'v'",
    "tags.t LIKE '%v%'",
    "name = 'a' AND version_number > 2 AND tags.t = 'x'",
    "attribute.version_number = 2",
    # Rejected:
    "version_number = 1.5",
    "version_number = 1e3",
    "version_number = 'abc'",
    "version_number LIKE 1",
    "version_number IN ('1')",
    "version_number = '1.0'",
    "run_id > 'a'",
    "run_id = 1",
    "source_path IN ('a')",
    "source_path > 'a'",
    "name = 1",
    "creation_timestamp > 1",
    "last_updated_timestamp > 1",
    "current_stage = 'None'",
    "tags.t = 1",
    "tags.t IN ('a')",
    "foo.t = 'a'",
    "name = 'a' OR run_id = 'b'",
    "name IS NULL",
    "tags.t IS NOT NULL",
    "run_id = ('a', 'b')",
]


@pytest.mark.parametrize("filter_string", VERSION_FILTERS)
def test_version_filter_like_mlflow(filter_string: str) -> None:
    mlflow_outcome, ours = version_filter(filter_string)
    assert ours[0] != "CRASH", ours
    if mlflow_outcome[0] == "CRASH" or filter_string == "run_id = ('a', 'b')":
        # MLflow fails later (unpacking IS NULL clauses; binding a tuple in SQL).
        assert ours[0] == "ERR"
        return
    assert_agrees(mlflow_outcome, ours)


def test_huge_version_numbers_are_accepted() -> None:
    (clause,) = parse_version_filter("version_number = 99999999999999999999")
    assert clause.value == 99999999999999999999


# -------------------------------------------------------------------------------- order_by

MODEL_ORDER_BYS = [
    [],
    ["name"],
    ["name DESC"],
    ["name asc"],
    ["`name` DESC"],
    ['"name" DESC'],
    ["timestamp"],
    ["timestamp DESC"],
    ["last_updated_timestamp ASC"],
    ["timestamp DESC", "name ASC"],
    ["name DESC", "last_updated_timestamp"],
    # Rejected:
    ["creation_timestamp"],
    ["attributes.name"],
    ["tags.t"],
    ["name DESCENDING"],
    ["name DESC x"],
    ["'name'"],
    ['"name"'],
    ["`name`"],
    [""],
    ["name", "name DESC"],
    ["timestamp", "last_updated_timestamp"],
]


@pytest.mark.parametrize("clauses", MODEL_ORDER_BYS, ids=str)
def test_model_order_by_like_mlflow(clauses: list[str]) -> None:
    assert_agrees(*model_order_by(clauses))


VERSION_ORDER_BYS = [
    [],
    ["name"],
    ["version_number"],
    ["version_number ASC"],
    ["creation_timestamp DESC"],
    ["last_updated_timestamp"],
    ["attribute.name DESC"],
    ["tags.name"],  # MLflow checks only the key
    ["name DESC", "version_number ASC"],
    # Rejected:
    ["tags.t"],
    ["run_id"],
    ["timestamp"],
    ["foo.name"],
    ["name", "name DESC"],
    ["version_number x"],
    ['"a.b"'],
    ['"a.b" DESC'],
    ["`name`"],
    ['"version_number" DESC'],
]


@pytest.mark.parametrize("clauses", VERSION_ORDER_BYS, ids=str)
def test_version_order_by_like_mlflow(clauses: list[str]) -> None:
    assert_agrees(*version_order_by(clauses))


# --------------------------------------------------------------------------------- fuzzing

_IDENTS = [
    "name", "attribute.name", "tags.t", "tag.`a b`", 'tags."x.y"', "run_id", "source_path",
    "version_number", "creation_timestamp", "tags.`mlflow.prompt.is_prompt`", "foo.x", "`name`",
]  # fmt: skip
_COMPARATORS = [
    "=", "!=", "<", ">=", "LIKE", "ilike", "IN", "NOT IN", "IS NULL", "==", "<>", "RLIKE",
]  # fmt: skip
_VALUES = [
    "'x'", '"y z"', "'a%'", "''", "1", "-2", "2.5", "('a','b')", "('a')", "(1)", "'3'", "x",
]  # fmt: skip
_NOISE = ["AND", "OR", "(", ")", ",", ";", "'open", "`bt", "NOT", "NULL", ".", "()"]


def _allowed(mlflow_outcome: Outcome, ours: Outcome) -> bool:
    if mlflow_outcome[0] == "CRASH":
        return ours[0] == "ERR"
    if mlflow_outcome[0] == "OK" and ours[0] == "ERR":
        # A list with = / != / LIKE: MLflow fails binding the tuple in SQL.
        return str(ours[1]).startswith("Invalid comparison clause: comparator")
    return False


@pytest.mark.parametrize("seed", range(3))
def test_fuzz_against_mlflow(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(250):
        filter_string = random_filter(
            rng, idents=_IDENTS, comparators=_COMPARATORS, values=_VALUES, noise=_NOISE
        )
        for compare in (model_filter, version_filter):
            assert_fuzz_agrees(filter_string, *compare(filter_string), _allowed)


@pytest.mark.parametrize("seed", range(2))
def test_random_text_never_crashes(seed: int) -> None:
    alphabet = "ab.`'\"()=<>!-+,; \t01eE%_\\x\x00é"
    for text in random_texts(random.Random(seed), alphabet, 1500):
        for parse in (parse_model_filter, parse_version_filter):
            with contextlib.suppress(MlflowError):
                parse(text)
        for order in (parse_model_order_by, parse_version_order_by):
            with contextlib.suppress(MlflowError):
                order([text])
