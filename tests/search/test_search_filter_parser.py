"""The filter / order_by parsers, checked against MLflow's own parsers (the installed package)."""

from __future__ import annotations

import contextlib
import functools
import random

import pytest

from search import mlflow_oracle as oracle
from search.searchdb import error_of
from support.compare import sorted_sets
from support.oracle import (
    Outcome,
    assert_agrees,
    assert_fuzz_agrees,
    random_filter,
    random_texts,
)
from tether.errors import MlflowError
from tether.search.filter_parser import parse_experiment_filter, parse_search_filter
from tether.search.grammar import Comparison, OrderBy
from tether.search.order_by import (
    check_no_duplicates,
    parse_experiment_order_by,
    parse_order_by,
)

# ------------------------------------------------------------------- agreement with MLflow

VALID_RUN_FILTERS = [
    "metrics.acc > 0.5",
    "metric.acc >= -1",
    "metrics.acc > -1e3",
    "metrics.acc > 1E3",
    "metrics.acc > .5",
    "metrics.acc > 5.",
    "metrics.acc <= 1.5e-3",
    "metrics.acc != 0",
    "metrics.acc>1",
    "metrics.acc > 01",
    "metrics.`my metric` < 3",
    'metrics."my metric" < 3',
    'metrics."my-metric" = 1',
    "`metrics`.acc = 1",
    "metrics.'acc' = 1",
    "metrics.acc.b = 1",
    "params.a = 'x'",
    'params.a = "x"',
    "params.a='x'",
    "param.a.b = 'x'",
    "parameters.a != 'x'",
    'params.`a b` = "x y"',
    "params.\"a\" = 'x'",
    "params.1abc = 'x'",
    "params.select = 'x'",
    "params.a LIKE '%x_'",
    "params.a like 'x%'",
    "params.a ILIKE 'X%'",
    "params.a IS NULL",
    "params.`a` IS NOT NULL",
    "tags.a = 'x''y'",
    "tags.a = 'x\\'y'",
    'tags.a != "say \\"hi\\""',
    "tags.a = ''",
    "tags.a is null",
    "tags.a is not null",
    "tags.\"mlflow.runName\" = 'x'",
    "tags.mlflow.runName = 'x'",
    "tags.`mlflow.source.name` LIKE '%.py'",
    "tags.user = 'x'",
    "attributes.status = 'RUNNING'",
    'attributes.status = "RUNNING"',
    "status = 'RUNNING'",
    "attr.status != 'RUNNING'",
    "run.status LIKE 'RUN%'",
    "attribute.status ILIKE 'run%'",
    "attributes.run_id IN ('a','b')",
    "attributes.run_id IN ('a')",
    "attributes.run_id IN ('a',)",
    "run_id IN ('a', \"b\")",
    "attributes.run_id NOT IN ('a','b')",
    "attributes.run_id not in ('a','b')",
    "attributes.run_id in ('a','b')",
    "attributes.run_id = 'a'",
    "attributes.run_id LIKE 'a%'",
    "attributes.start_time > 5",
    "attributes.start_time > 5.5",
    "start_time >= 5",
    "start_time > 1e3",
    "start_time = -5",
    "created > 5",
    "Created > 5",
    "attributes.created > 5",
    "end_time < 10",
    "attributes.end_time != 10",
    "`run name` = 'x'",
    "\"run name\" = 'x'",
    "\"Run Name\" = 'x'",
    "`Run name` = 'x'",
    "run_name = 'x'",
    "attributes.run_name ILIKE '%x%'",
    "attributes.user_id = 'x'",
    "attributes.artifact_uri LIKE 's3://%'",
    "datasets.name = 'd'",
    "dataset.digest = 'd'",
    "datasets.context = 'train'",
    "datasets.name IN ('a','b')",
    "datasets.digest NOT IN ('a','b')",
    "datasets.context LIKE 'tr%'",
    "metrics.acc > 1 AND params.a = 'x'",
    "metrics.acc > 1 and params.a = 'x'",
    "metrics.acc > 1 And params.a = 'x' AND tags.b != 'y'",
    "  metrics.acc > 1  ",
    # MLflow (sqlparse) tolerates stray and missing ANDs; so do we.
    "metrics.acc > 1 AND",
    "AND metrics.acc > 1",
    "metrics.acc > 1 AND AND params.a = 'x'",
    "metrics.acc > 1 params.a = 'x'",
    "metrics. = 1",
    "metrics.acc > 1e400",
]

INVALID_RUN_FILTERS = [
    "params.a = `x`",
    "params.a = x",
    "params.a = 1",
    "metrics.a IS NULL",
    "attributes.status IS NULL",
    "status IS NOT NULL",
    "datasets.name IS NULL",
    "attributes.status IN ('A','B')",
    "attributes.run_id IN ()",
    "attributes.run_id IN (1, 2)",
    "attributes.run_id IN (1)",
    "attributes.start_time > '5'",
    "attributes.start_time LIKE 5",
    "attributes.lifecycle_stage = 'active'",
    "attributes.deleted_time > 5",
    "attributes.experiment_id = '1'",
    "datasets.source = 'x'",
    "datasets.name = 1",
    "metrics.acc > 1 OR params.a = 'x'",
    "metrics.acc > 1; params.a = 'x'",
    "metrics.acc > 1;",
    "metrics.acc",
    "metrics.acc >",
    "= 1",
    "metrics.acc = '1'",
    "metrics.acc == 1",
    "metrics.acc <> 1",
    "metrics.acc LIKE 1",
    "metrics.acc > nan",
    "metrics.acc > - 1",
    "metrics.acc > +1",
    "params.a < 'x'",
    "params.a >= 'x'",
    "params.a IN ('x')",
    "params.a == 'x'",
    "tags.a RLIKE 'x'",
    "tags.a REGEXP 'x'",
    "foo.a = 'x'",
    ".acc = 1",
    "metrics.my-metric = 1",
    "(metrics.acc > 1)",
    "metrics.acc > 1 AND (params.a = 'x')",
    "NOT metrics.acc > 1",
    "metrics.acc BETWEEN 1 AND 2",
    "'params.a' = 'x'",
    "params.a = 'x' = 'y'",
    "params.a = 'unterminated",
    'params.a = "unterminated',
    "run_id IN ('a', 'b'",
    "   ",
    "metrics.",
    "metrics.acc IN ('1')",
    "start_time IN ('1')",
    "tags.a IS 'x'",
    "tags.a NOT LIKE 'x'",
]


@pytest.mark.parametrize("filter_string", VALID_RUN_FILTERS)
def test_run_filter_parses_like_mlflow(filter_string: str) -> None:
    mlflow_outcome, ours = oracle.run_filter(filter_string)
    assert mlflow_outcome[0] == "OK", mlflow_outcome
    assert ours == mlflow_outcome


@pytest.mark.parametrize("filter_string", INVALID_RUN_FILTERS)
def test_run_filter_rejected_like_mlflow(filter_string: str) -> None:
    mlflow_outcome, ours = oracle.run_filter(filter_string)
    assert mlflow_outcome[0] == "ERR", mlflow_outcome
    assert ours[0] == "ERR", ours


# Our message is MLflow's, word for word (up to the order MLflow prints set items in).
SAME_MESSAGE_RUN_FILTERS = [
    "params.a = `x`",
    "params.a = x",
    "params.a = 1",
    "tags.a = 1",
    "metrics.a IS NULL",
    "attributes.status IS NULL",
    "attributes.status IN ('A','B')",
    "attributes.run_id IN ()",
    "attributes.run_id IN (1, 2)",
    "attributes.start_time > '5'",
    "attributes.lifecycle_stage = 'active'",
    "datasets.source = 'x'",
    "datasets.name = 1",
    "metrics.acc > 1 OR params.a = 'x'",
    "metrics.acc > 1; params.a = 'x'",
    "metrics.acc > 1;",
    "metrics.acc = '1'",
    "metrics.acc == 1",
    "params.a < 'x'",
    "params.a IN ('x')",
    "tags.a RLIKE 'x'",
    "foo.a = 'x'",
    "(metrics.acc > 1)",
    "metrics.acc > 1 AND (params.a = 'x')",
    "NOT metrics.acc > 1",
    "'params.a' = 'x'",
    "params.a = 'x' = 'y'",
    "   ",
    "metrics.acc",
    "metrics.acc IN ('1')",
]


@pytest.mark.parametrize("filter_string", SAME_MESSAGE_RUN_FILTERS)
def test_run_filter_error_message_is_mlflows(filter_string: str) -> None:
    mlflow_outcome, ours = oracle.run_filter(filter_string)
    assert mlflow_outcome[0] == "ERR", mlflow_outcome
    assert_agrees(mlflow_outcome, ours)


def test_run_filter_messages() -> None:
    assert error_of(lambda: parse_search_filter("params.a = 1")).message == (
        "Expected a quoted string value for parameter (e.g. 'my-value'). Got value 1"
    )
    assert error_of(lambda: parse_search_filter("foo.a = 'x'")).message == (
        "Invalid entity type 'foo'. Valid values are "
        "['metric', 'parameter', 'tag', 'attribute', 'dataset']"
    )
    assert error_of(lambda: parse_search_filter("a = 1 OR b = 2")).message == (
        "Invalid clause(s) in filter string: 'OR'"
    )
    assert error_of(lambda: parse_search_filter("metrics.m IS NULL")).message == (
        "IS NULL / IS NOT NULL is only supported for tags and params, not for 'metric' 'm'"
    )


VALID_EXPERIMENT_FILTERS = [
    "name = 'x'",
    "name LIKE 'x%'",
    "name ILIKE '%X'",
    "name != 'x'",
    "attribute.name = 'x'",
    "tags.a = 'x'",
    "tag.a != 'x'",
    "tags.a LIKE 'x%'",
    "tags.`a b` ILIKE 'x%'",
    "tags.a IS NULL",
    "tags.a is not null",
    "experiment_id = '1'",
    "experiment_id != '1'",
    "experiment_id IN ('1', '2')",
    "experiment_id NOT IN ('1', '2')",
    "creation_time > 5",
    "creation_time = -5",
    "last_update_time <= 5",
    "name = 'x' AND tags.a = 'y'",
    "name = 'x' and creation_time >= 0",
]

INVALID_EXPERIMENT_FILTERS = [
    "attributes.name = 'x'",
    "attr.name = 'x'",
    "name IS NULL",
    "experiment_id = 1",
    "experiment_id > '1'",
    "experiment_id = 'abc'",
    "experiment_id IN ('1', 'x')",
    "creation_time > 5.5",
    "creation_time > '5'",
    "name IN ('a')",
    "name > 'a'",
    "metrics.a > 1",
    "params.a = 'x'",
    "lifecycle_stage = 'active'",
    "tags.a > 'x'",
    "tags.a = 1",
    "name = 'x' OR tags.a = 'y'",
    "creation_time LIKE 5",
]


@pytest.mark.parametrize("filter_string", VALID_EXPERIMENT_FILTERS)
def test_experiment_filter_parses_like_mlflow(filter_string: str) -> None:
    mlflow_outcome, ours = oracle.experiment_filter(filter_string)
    assert mlflow_outcome[0] == "OK", mlflow_outcome
    assert ours == mlflow_outcome


@pytest.mark.parametrize("filter_string", INVALID_EXPERIMENT_FILTERS)
def test_experiment_filter_rejected_like_mlflow(filter_string: str) -> None:
    mlflow_outcome, ours = oracle.experiment_filter(filter_string)
    assert mlflow_outcome[0] == "ERR", mlflow_outcome
    assert ours[0] == "ERR", ours
    if not filter_string.startswith("creation_time LIKE"):  # MLflow names the wrong set there
        assert sorted_sets(ours[1]) == sorted_sets(mlflow_outcome[1])


RUN_ORDER_BYS = [
    "metrics.acc",
    "metrics.acc DESC",
    "metrics.acc desc",
    "metrics.acc ASC",
    "metrics.acc Desc",
    "metrics.acc  DESC",
    "metrics.`my metric` DESC",
    'metrics."my metric" DESC',
    "metric.acc",
    "metrics.a.b",
    "`metrics`.acc",
    "params.a",
    "param.a DESC",
    "tags.a",
    "tags.`mlflow.runName` ASC",
    "attributes.start_time",
    "attributes.start_time DESC",
    "start_time",
    "created DESC",
    "Created",
    "attributes.run_name",
    "run_name",
    "status DESC",
    "user_id",
    "artifact_uri",
    "run_id",
    "end_time",
    # invalid
    "metrics.acc DESCENDING",
    "metrics.acc DESC ASC",
    "`Run Name`",
    '"run name"',
    "attributes.lifecycle_stage",
    "experiment_id",
    "datasets.name",
    "foo.bar",
    "metrics.acc, params.a",
    "",
    " ",
    "metrics.acc DESC,",
    "metrics.acc;",
    "metrics.acc = 1",
    "metrics.my-metric",
    "timestamp",
    "name",
]


@pytest.mark.parametrize("clause", RUN_ORDER_BYS)
def test_run_order_by_like_mlflow(clause: str) -> None:
    mlflow_outcome, ours = oracle.run_order_by(clause)
    assert mlflow_outcome[0] in ("OK", "ERR")
    assert_agrees(mlflow_outcome, ours)


EXPERIMENT_ORDER_BYS = [
    "name",
    "name DESC",
    "creation_time",
    "attribute.creation_time ASC",
    "last_update_time DESC",
    "experiment_id ASC",
    "experiment_id desc",
    # invalid
    "tags.a",
    "attributes.name",
    "metrics.acc",
    "start_time",
    "name DESCENDING",
    "name, creation_time",
    "",
]


@pytest.mark.parametrize("clause", EXPERIMENT_ORDER_BYS)
def test_experiment_order_by_like_mlflow(clause: str) -> None:
    assert_agrees(*oracle.experiment_order_by(clause))


# --------------------------------------------------------------------- our own decisions


def test_typed_comparisons() -> None:
    parsed = parse_search_filter(
        "metrics.`m 1` >= -2 AND params.p LIKE 'a%' AND tags.t IS NOT NULL "
        "AND created > 10 AND `Run Name` = 'r' AND run_id NOT IN ('x', 'y') "
        "AND datasets.context = 'train' AND end_time < 1.5"
    )
    assert parsed == [
        Comparison("metric", "m 1", ">=", -2.0),
        Comparison("parameter", "p", "LIKE", "a%"),
        Comparison("tag", "t", "IS NOT NULL", None),
        Comparison("attribute", "start_time", ">", 10),
        Comparison("attribute", "run_name", "=", "r"),
        Comparison("attribute", "run_id", "NOT IN", ("x", "y")),
        Comparison("dataset", "context", "=", "train"),
        Comparison("attribute", "end_time", "<", 1.5),
    ]
    assert isinstance(parsed[0].value, float)
    assert isinstance(parsed[3].value, int)


def test_empty_filter() -> None:
    assert parse_search_filter("") == []
    assert parse_search_filter(None) == []
    assert parse_experiment_filter("") == []


def test_list_items_are_python_string_literals() -> None:
    # MLflow reads the list with ast.literal_eval: escapes are processed inside lists...
    (clause,) = parse_search_filter("run_id IN ('a\\'b', \"c\")")
    assert clause.value == ("a'b", "c")
    # ...while a plain string value keeps its text verbatim.
    (clause,) = parse_search_filter("tags.t = 'a\\'b'")
    assert clause.value == "a\\'b"


def test_huge_integers_become_floats() -> None:
    (clause,) = parse_search_filter("start_time > 99999999999999999999999")
    assert clause.value == pytest.approx(1e23)
    assert isinstance(clause.value, float)


@pytest.mark.parametrize(
    ("filter_string", "message_start"),
    [
        # MLflow accepts these, then fails binding a tuple in SQL (an internal error).
        ("run_id = ('a','b')", "Invalid comparison clause: comparator '='"),
        ("datasets.name LIKE ('a')", "Invalid comparison clause: comparator 'LIKE'"),
        # MLflow crashes in ast.literal_eval.
        ("run_id IN (a, b)", "While parsing a list in the query"),
        # MLflow concatenates adjacent literals ('ab'); we call the list ill-formed.
        ("run_id IN ('a' 'b')", "While parsing a list in the query"),
        ("tags.a = 'x\x00'", "Invalid filter: the NUL character"),
        ("metrics.acc IN ('1')", "Expected numeric value type for metric. Found ('1')"),
    ],
)
def test_rejections_where_mlflow_fails_later(filter_string: str, message_start: str) -> None:
    assert error_of(lambda: parse_search_filter(filter_string)).message.startswith(message_start)


def test_experiment_ids_out_of_range() -> None:
    error = error_of(lambda: parse_experiment_filter("experiment_id = '99999999999999999999'"))
    assert "Experiment ID must be a valid integer" in error.message


def test_lowercase_comparators_in_experiment_filters() -> None:
    # MLflow's experiment search rejects `like` in lower case (it does not upper-case there);
    # we accept it, as its run search does.
    assert parse_experiment_filter("name like 'a%' and tags.t ilike 'b'") == [
        Comparison("attribute", "name", "LIKE", "a%"),
        Comparison("tag", "t", "ILIKE", "b"),
    ]


def test_order_by_duplicates() -> None:
    clauses = ["metrics.a", "metric.a DESC"]
    error = error_of(lambda: check_no_duplicates(clauses, [parse_order_by(c) for c in clauses]))
    assert error.message == f"`order_by` contains duplicate fields: {clauses}"
    clauses = ["created", "attributes.start_time DESC"]
    error_of(lambda: check_no_duplicates(clauses, [parse_order_by(c) for c in clauses]))
    check_no_duplicates(
        ["metrics.a", "params.a"], [parse_order_by("metrics.a"), parse_order_by("params.a")]
    )


def test_order_by_parsing() -> None:
    assert parse_order_by("created DESC") == OrderBy("attribute", "start_time", False)
    assert parse_order_by('tags."a.b"') == OrderBy("tag", "a.b", True)
    assert parse_experiment_order_by("name desc") == OrderBy("attribute", "name", False)
    assert error_of(lambda: parse_order_by("datasets.name")).message == (
        "Invalid identifier type 'dataset'"
    )


# ------------------------------------------------------------------------------- fuzzing

_IDENTS = [
    "metrics.acc", "metric.`a b`", 'metrics."x-y"', "params.p", 'param."p q"', "parameters.`k`",
    "tags.t", "tag.`mlflow.runName`", 'tags."a.b"', "attributes.status", "status", "run_id",
    "attr.run_id", "run.user_id", "start_time", "created", "`run name`", '"Run Name"', "run_name",
    "attribute.artifact_uri", "end_time", "datasets.name", "dataset.context", "datasets.digest",
    "name", "experiment_id", "creation_time", "last_update_time", "attribute.name", "tags.x",
]  # fmt: skip
_COMPARATORS = [
    "=", "!=", "<", "<=", ">", ">=", "LIKE", "like", "ILIKE", "IN", "NOT IN", "not in",
    "IS NULL", "IS NOT NULL", "is not null",
]  # fmt: skip
_VALUES = [
    "'x'", '"y z"', "'a%'", "'%_%'", "''", "1", "-2.5", "1e3", ".5", "0", "('a','b')", "('a')",
    '("1", "2",)', "('3')", "123",
]  # fmt: skip
_NOISE = [
    "AND", "and", "OR", "(", ")", ",", ";", "'open", "`bt", "-", "+", "IS", "NOT", "NULL", "abc",
    "metrics.", ".", "()", "(1)", "==", "<>",
]  # fmt: skip


def _allowed_divergence(kind: str, mlflow_outcome: Outcome, ours: Outcome) -> bool:
    if mlflow_outcome[0] == "OK" and ours[0] == "ERR":
        # A list compared with = / != / LIKE: MLflow fails when binding the tuple in SQL.
        return str(ours[1]).startswith("Invalid comparison clause: comparator")
    if mlflow_outcome[0] == "ERR" and ours[0] == "OK":
        # Lower-case LIKE / ILIKE in experiment filters (see the test above).
        return (
            kind == "experiment"
            and "comparator" in mlflow_outcome[1].lower()
            and ("like" in mlflow_outcome[1])
        )
    return mlflow_outcome[0] == "CRASH" and ours[0] == "ERR"


@pytest.mark.parametrize("seed", range(4))
def test_fuzz_against_mlflow(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(300):
        filter_string = random_filter(
            rng,
            idents=_IDENTS,
            comparators=_COMPARATORS,
            values=_VALUES,
            noise=_NOISE,
            joiners=(" AND ", " and "),
        )
        for kind, compare in (("run", oracle.run_filter), ("experiment", oracle.experiment_filter)):
            mlflow_outcome, ours = compare(filter_string)
            allowed = functools.partial(_allowed_divergence, kind)
            assert_fuzz_agrees(filter_string, mlflow_outcome, ours, allowed)


@pytest.mark.parametrize("seed", range(2))
def test_random_text_never_crashes(seed: int) -> None:
    alphabet = "ab.`'\"()=<>!-+,; \t\n01eE%_\\x\x00é"
    for text in random_texts(random.Random(seed), alphabet, 2000):
        for parse in (parse_search_filter, parse_experiment_filter, parse_order_by):
            with contextlib.suppress(MlflowError):  # anything else fails the test
                parse(text)
