"""MLflow's own parsers, normalized to our `Comparison` / `OrderBy` shapes, as test oracles.

Each function returns (MLflow's outcome, ours); see support/oracle.py for the outcome shapes.
"""

from __future__ import annotations

from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.store.tracking.sqlalchemy_store import _get_search_experiments_filter_clauses
from mlflow.utils.search_utils import SearchExperimentsUtils, SearchUtils

from support.oracle import Outcome, outcome
from tether.search.filter_parser import parse_experiment_filter, parse_search_filter
from tether.search.order_by import parse_experiment_order_by, parse_order_by


def _mlflow_run_filter(filter_string: str) -> list[tuple[Any, ...]]:
    out = []
    for clause in SearchUtils.parse_search_filter(filter_string):
        comparator = clause["comparator"].upper()
        key = SearchUtils.translate_key_alias(clause["key"])
        kind = clause["type"]
        # The comparator checks `_get_sqlalchemy_filter_clauses` makes, in its order.
        if not (
            SearchUtils.is_string_attribute(kind, key, comparator)
            or SearchUtils.is_numeric_attribute(kind, key, comparator)
            or SearchUtils.is_metric(kind, comparator)
            or SearchUtils.is_param(kind, comparator)
            or SearchUtils.is_tag(kind, comparator)
            or SearchUtils.is_dataset(kind, comparator)
        ):
            raise MlflowException(f"Invalid search expression type '{kind}'")
        value = clause["value"]
        if kind == "metric":
            value = float(value)
        out.append((kind, key, comparator, value))
    return out


def _ours_run_filter(filter_string: str) -> list[tuple[Any, ...]]:
    return [(c.entity, c.key, c.comparator, c.value) for c in parse_search_filter(filter_string)]


def _mlflow_experiment_filter(filter_string: str) -> list[tuple[Any, ...]]:
    parsed = SearchExperimentsUtils.parse_search_filter(filter_string)
    _get_search_experiments_filter_clauses(parsed, "sqlite")
    out = []
    for clause in parsed:
        value = clause["value"]
        if clause["key"] == "experiment_id" and clause["type"] == "attribute":
            value = (
                tuple(str(int(v)) for v in value) if isinstance(value, tuple) else str(int(value))
            )
        out.append((clause["type"], clause["key"], clause["comparator"].upper(), value))
    return out


def _ours_experiment_filter(filter_string: str) -> list[tuple[Any, ...]]:
    return [
        (c.entity, c.key, c.comparator, c.value) for c in parse_experiment_filter(filter_string)
    ]


def _mlflow_run_order_by(clause: str) -> tuple[Any, ...]:
    kind, key, ascending = SearchUtils.parse_order_by_for_search_runs(clause)
    key = SearchUtils.translate_key_alias(key)
    if kind == "dataset":  # `_get_orderby_clauses` rejects it
        raise MlflowException(f"Invalid identifier type '{kind}'")
    return (kind, key, ascending)


def _ours_run_order_by(clause: str) -> tuple[Any, ...]:
    parsed = parse_order_by(clause)
    return (parsed.entity, parsed.key, parsed.ascending)


def _mlflow_experiment_order_by(clause: str) -> tuple[Any, ...]:
    kind, key, ascending = SearchExperimentsUtils.parse_order_by_for_search_experiments(clause)
    if kind != "attribute":
        raise MlflowException(f"Invalid order_by entity: {kind}")
    return (kind, key, ascending)


def _ours_experiment_order_by(clause: str) -> tuple[Any, ...]:
    parsed = parse_experiment_order_by(clause)
    return (parsed.entity, parsed.key, parsed.ascending)


def run_filter(filter_string: str) -> tuple[Outcome, Outcome]:
    """(MLflow's outcome, ours) for a search_runs filter."""
    return outcome(_mlflow_run_filter, filter_string), outcome(_ours_run_filter, filter_string)


def experiment_filter(filter_string: str) -> tuple[Outcome, Outcome]:
    return (
        outcome(_mlflow_experiment_filter, filter_string),
        outcome(_ours_experiment_filter, filter_string),
    )


def run_order_by(clause: str) -> tuple[Outcome, Outcome]:
    return outcome(_mlflow_run_order_by, clause), outcome(_ours_run_order_by, clause)


def experiment_order_by(clause: str) -> tuple[Outcome, Outcome]:
    return outcome(_mlflow_experiment_order_by, clause), outcome(_ours_experiment_order_by, clause)
