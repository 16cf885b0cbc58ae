"""`search_experiments` in SQL, as MLflow's SQL store does it.

Default order `creation_time DESC, experiment_id ASC`; any other order_by gets the tie-breaker
`experiment_id DESC` unless it names experiment_id itself (MLflow's behaviour, kept as is).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from tether.db.int64 import bigint
from tether.db.models import Experiment, ExperimentTag
from tether.db.visibility import EVERYTHING, Visibility, conditions
from tether.search.filter_parser import parse_experiment_filter
from tether.search.grammar import TAG, Comparison
from tether.search.limits import check_order_by, validate_max_results
from tether.search.order_by import parse_experiment_order_by
from tether.search.page_token import create_page_token, parse_page_token
from tether.search.sql import compare, dialect_name, planned_cheaply, view_type_to_stages

_DEFAULT_ORDER_BY = ["creation_time DESC", "experiment_id ASC"]

_EXPERIMENT_COLUMNS: dict[str, Any] = {
    "name": Experiment.name,
    "experiment_id": Experiment.experiment_id,
    "creation_time": Experiment.creation_time,
    "last_update_time": Experiment.last_update_time,
}


def experiment_filter_clauses(
    comparisons: list[Comparison], dialect: str
) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    for comp in comparisons:
        if comp.entity == TAG:
            has_key = sa.exists().where(
                ExperimentTag.experiment_id == Experiment.experiment_id,
                ExperimentTag.key == comp.key,
            )
            if comp.comparator == "IS NULL":
                clauses.append(~has_key)
            elif comp.comparator == "IS NOT NULL":
                clauses.append(has_key)
            else:
                clauses.append(
                    has_key.where(
                        compare(ExperimentTag.value, comp.comparator, comp.value, dialect)
                    )
                )
            continue
        value: Any = comp.value
        if comp.key == "experiment_id":
            # The parser has checked these are int64s; the column is INTEGER (`db.int64`).
            if isinstance(value, tuple):
                value = [bigint(int(v)) for v in value]
            else:
                value = bigint(int(str(value)))
        clauses.append(compare(_EXPERIMENT_COLUMNS[comp.key], comp.comparator, value, dialect))
    return clauses


def search_experiment_ids(
    session: Session,
    *,
    view_type: str,
    filter_string: str,
    max_results: int,
    order_by: list[str],
    page_token: str | None,
    readable: Visibility = EVERYTHING,
) -> tuple[list[int], str | None]:
    """Experiment ids of one page of `search_experiments`, and the next page token; only
    experiments the caller may read (`readable`) are searched."""
    validate_max_results(max_results)
    stages = view_type_to_stages(view_type)
    comparisons = parse_experiment_filter(filter_string)
    check_order_by(order_by)
    parsed_order = [parse_experiment_order_by(c) for c in (order_by or _DEFAULT_ORDER_BY)]
    offset = parse_page_token(page_token)

    order: list[Any] = []
    for clause in parsed_order:
        column = _EXPERIMENT_COLUMNS[clause.key]
        order.append(column.asc() if clause.ascending else column.desc())
    if not any(clause.key == "experiment_id" for clause in parsed_order):
        order.append(Experiment.experiment_id.desc())

    dialect = dialect_name(session)
    stmt = (
        sa.select(Experiment.experiment_id)
        .where(
            Experiment.lifecycle_stage.in_(stages),
            *planned_cheaply(experiment_filter_clauses(comparisons, dialect), dialect),
            *conditions(readable.experiment_clause(Experiment.experiment_id)),
        )
        .order_by(*order)
        .offset(offset)
        .limit(max_results + 1)
    )
    ids = list(session.execute(stmt).scalars())
    if len(ids) > max_results:
        return ids[:max_results], create_page_token(offset + max_results)
    return ids, None
