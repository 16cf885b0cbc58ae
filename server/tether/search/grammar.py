"""MLflow's search grammar: the vocabulary of run and experiment filters and order_by clauses.

Grammar (keywords case-insensitive):

    filter      := [AND]* clause ([AND]* clause)* [AND]*      (MLflow tolerates stray ANDs)
    clause      := ident comparator value
                 | ident IS [NOT] NULL
                 | ident [NOT] IN '(' string (',' string)* [','] ')'
    ident       := segment ('.' segment)*      -- `entity.key`; no prefix means attribute
    segment     := word | `backticked` | "double quoted" | 'single quoted' (not first)
    comparator  := = | != | <> | == | < | <= | > | >= | LIKE | ILIKE | RLIKE | REGEXP
    value       := 'string' | "string" | number
    order_by    := ident [ASC | DESC]

String values keep their text verbatim between the quotes (no unescaping), as MLflow does;
items of an IN list are Python string literals (MLflow reads the list with `ast.literal_eval`).

This module holds the entity names, the attribute sets and aliases, the comparator sets, and the
`Comparison` / `OrderBy` results; `tokenizer`, `filter_syntax`, `filter_parser` and `order_by`
do the parsing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

EntityType = Literal["metric", "parameter", "tag", "attribute", "dataset"]
Value = float | int | str | tuple[str, ...] | None

METRIC: EntityType = "metric"
PARAM: EntityType = "parameter"
TAG: EntityType = "tag"
ATTRIBUTE: EntityType = "attribute"
DATASET: EntityType = "dataset"


@dataclass(frozen=True)
class Comparison:
    """One `entity.key comparator value` clause of a filter.

    `comparator` is upper-case and one of the comparators allowed for the entity/key.
    `key` has attribute aliases resolved (`created` -> `start_time`, `run name` -> `run_name`).
    `value`: float for metrics, int or float for numeric attributes, tuple[str, ...] for
    IN / NOT IN, None for IS NULL / IS NOT NULL, str otherwise.
    """

    entity: EntityType
    key: str
    comparator: str
    value: Value


@dataclass(frozen=True)
class OrderBy:
    entity: EntityType
    key: str
    ascending: bool


# ------------------------------------------------------------------------------ vocabulary

ENTITY_ALIASES: dict[str, EntityType] = {
    "metric": METRIC,
    "metrics": METRIC,
    "parameter": PARAM,
    "parameters": PARAM,
    "param": PARAM,
    "params": PARAM,
    "tag": TAG,
    "tags": TAG,
    "attribute": ATTRIBUTE,
    "attributes": ATTRIBUTE,
    "attr": ATTRIBUTE,
    "run": ATTRIBUTE,
    "dataset": DATASET,
    "datasets": DATASET,
}
ENTITY_NAMES = ["metric", "parameter", "tag", "attribute", "dataset"]

ATTRIBUTE_ALIASES = {
    "created": "start_time",
    "Created": "start_time",
    "run name": "run_name",
    "Run name": "run_name",
    "Run Name": "run_name",
}
RUN_NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time", "created", "Created"})
RUN_SEARCH_ATTRIBUTES = frozenset(
    {"artifact_uri", "end_time", "run_id", "run_name", "start_time", "status", "user_id"}
    | set(ATTRIBUTE_ALIASES)
)
RUN_ORDER_BY_ATTRIBUTES = frozenset(
    {"artifact_uri", "end_time", "run_id", "run_name", "start_time", "status", "user_id"}
    | {"created", "Created"}
)
DATASET_KEYS = frozenset({"name", "digest", "context"})

METRIC_COMPARATORS = frozenset({">", ">=", "!=", "=", "<", "<="})
NUMERIC_ATTRIBUTE_COMPARATORS = METRIC_COMPARATORS
PARAM_COMPARATORS = frozenset({"!=", "=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL"})
TAG_COMPARATORS = PARAM_COMPARATORS
STRING_ATTRIBUTE_COMPARATORS = frozenset({"!=", "=", "LIKE", "ILIKE", "IN", "NOT IN"})
DATASET_COMPARATORS = STRING_ATTRIBUTE_COMPARATORS

EXPERIMENT_SEARCH_ATTRIBUTES = frozenset(
    {"name", "experiment_id", "creation_time", "last_update_time"}
)
EXPERIMENT_ORDER_BY_ATTRIBUTES = EXPERIMENT_SEARCH_ATTRIBUTES
EXPERIMENT_NUMERIC_ATTRIBUTES = frozenset({"creation_time", "last_update_time"})
EXPERIMENT_ENTITY_TYPES = ("attribute", "tag", "tags")


def fmt_set(values: Iterable[str]) -> str:
    """A deterministic rendering of a Python set literal, as MLflow's messages show them."""
    return "{" + ", ".join(repr(v) for v in sorted(values)) + "}"
