"""`search_runs` in SQL: MLflow's filter, order_by and paging semantics on our schema.

Filters on metrics / params / tags / datasets are correlated EXISTS subqueries keyed on the
primary keys; sorting on a metric / param / tag is a LEFT JOIN on (run_uuid, key), which the
primary keys make at most one row per run. Ordering is MLflow's SQL store's:

    for each order_by key:  <missing-last bucket>, value ASC|DESC
    then start_time DESC    (unless start_time was an order_by key)
    then run_uuid ASC

The bucket is `CASE WHEN value IS NULL THEN 1 ELSE 0 END` (0, then NULLs) for attributes,
params and tags, and for metrics `CASE WHEN is_nan THEN 1 WHEN value IS NULL THEN 2 ELSE 0`:
real values first, then NaN, then runs without the metric -- for ASC and DESC alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from tether.db.engine import fetch_tuples
from tether.db.int64 import bigint
from tether.db.models import Dataset as DatasetRow
from tether.db.models import InputTag, LatestMetric, Param, Run, RunInput, RunTag
from tether.db.visibility import EVERYTHING, Visibility, conditions
from tether.errors import invalid_parameter
from tether.search.experiment_ids import parse_experiment_ids
from tether.search.filter_parser import parse_search_filter
from tether.search.grammar import ATTRIBUTE, DATASET, METRIC, PARAM, TAG, Comparison, OrderBy
from tether.search.limits import check_order_by, validate_max_results
from tether.search.order_by import check_no_duplicates, parse_order_by
from tether.search.page_token import create_page_token, parse_page_token
from tether.search.sql import compare, dialect_name, planned_cheaply, view_type_to_stages

MLFLOW_DATASET_CONTEXT = "mlflow.data.context"

_RUN_COLUMNS: dict[str, Any] = {
    "run_id": Run.run_uuid,
    "run_name": Run.name,
    "status": Run.status,
    "user_id": Run.user_id,
    "artifact_uri": Run.artifact_uri,
    "start_time": Run.start_time,
    "end_time": Run.end_time,
}


def run_filter_clauses(comparisons: list[Comparison], dialect: str) -> list[ColumnElement[bool]]:
    """WHERE clauses (over `runs`) for parsed filter comparisons."""
    clauses: list[ColumnElement[bool]] = []
    for comp in comparisons:
        if comp.entity == ATTRIBUTE:
            clauses.append(compare(_RUN_COLUMNS[comp.key], comp.comparator, comp.value, dialect))
        elif comp.entity == METRIC:
            clauses.append(_metric_exists(comp, dialect))
        elif comp.entity in (PARAM, TAG):
            clauses.append(_key_value_exists(comp, dialect))
        elif comp.entity == DATASET:
            clauses.append(_dataset_exists(comp, dialect))
        else:  # pragma: no cover - the parser only produces the entities above
            raise invalid_parameter(f"Invalid search expression type '{comp.entity}'")
    return clauses


def _metric_exists(comp: Comparison, dialect: str) -> ColumnElement[bool]:
    value_match = compare(LatestMetric.value, comp.comparator, comp.value, dialect)
    # A NaN metric fails every comparison except "!=" (the stored value is a placeholder).
    if comp.comparator == "!=":
        value_match = sa.or_(value_match, LatestMetric.is_nan == sa.true())
    else:
        value_match = sa.and_(value_match, LatestMetric.is_nan == sa.false())
    return sa.exists().where(
        LatestMetric.run_uuid == Run.run_uuid,
        LatestMetric.key == comp.key,
        value_match,
    )


def _key_value_exists(comp: Comparison, dialect: str) -> ColumnElement[bool]:
    table: type[Param] | type[RunTag] = Param if comp.entity == PARAM else RunTag
    has_key = sa.exists().where(table.run_uuid == Run.run_uuid, table.key == comp.key)
    if comp.comparator == "IS NULL":
        return ~has_key
    if comp.comparator == "IS NOT NULL":
        return has_key
    return has_key.where(compare(table.value, comp.comparator, comp.value, dialect))


def _dataset_exists(comp: Comparison, dialect: str) -> ColumnElement[bool]:
    if comp.key == "context":
        return sa.exists().where(
            RunInput.run_uuid == Run.run_uuid,
            InputTag.input_uuid == RunInput.input_uuid,
            InputTag.name == MLFLOW_DATASET_CONTEXT,
            compare(InputTag.value, comp.comparator, comp.value, dialect),
        )
    column = DatasetRow.name if comp.key == "name" else DatasetRow.digest
    return sa.exists().where(
        RunInput.run_uuid == Run.run_uuid,
        DatasetRow.dataset_uuid == RunInput.dataset_uuid,
        compare(column, comp.comparator, comp.value, dialect),
    )


def _apply_order_by(stmt: sa.Select[str], parsed: list[OrderBy]) -> sa.Select[str]:
    order: list[Any] = []
    for index, clause in enumerate(parsed):
        if clause.entity == ATTRIBUTE:
            value: Any = _RUN_COLUMNS[clause.key]
            bucket: Any = sa.case((value.is_(None), 1), else_=0)
        elif clause.entity == METRIC:
            metric = aliased(LatestMetric, name=f"order_{index}")
            stmt = stmt.outerjoin(
                metric, sa.and_(metric.run_uuid == Run.run_uuid, metric.key == clause.key)
            )
            value = metric.value
            bucket = sa.case((metric.is_nan == sa.true(), 1), (value.is_(None), 2), else_=0)
        else:
            row: Any = aliased(Param if clause.entity == PARAM else RunTag, name=f"order_{index}")
            stmt = stmt.outerjoin(row, sa.and_(row.run_uuid == Run.run_uuid, row.key == clause.key))
            value = row.value
            bucket = sa.case((value.is_(None), 1), else_=0)
        order.append(bucket)
        order.append(value.asc() if clause.ascending else value.desc())
    if not any(c.entity == ATTRIBUTE and c.key == "start_time" for c in parsed):
        order.append(Run.start_time.desc())
    order.append(Run.run_uuid.asc())
    return stmt.order_by(*order)


def search_run_ids(
    session: Session,
    *,
    experiment_ids: Sequence[str | int],
    filter_string: str,
    run_view_type: str,
    max_results: int,
    order_by: list[str],
    page_token: str | None,
    readable: Visibility = EVERYTHING,
) -> tuple[list[str], str | None]:
    """Run ids of one page of `search_runs`, in MLflow's order, and the next page token.
    Runs of experiments the caller may not read (`readable`) are left out, as MLflow's
    auth app leaves those experiment ids out.

    The checks run in MLflow's store's order: max_results, view type, filter, order_by, page
    token, then the experiment ids."""
    validate_max_results(max_results)
    stages = view_type_to_stages(run_view_type)
    comparisons = parse_search_filter(filter_string)
    check_order_by(order_by)
    order_by = list(order_by or [])
    parsed_order = [parse_order_by(clause) for clause in order_by]
    check_no_duplicates(order_by, parsed_order)
    offset = parse_page_token(page_token)
    exp_ids = parse_experiment_ids(experiment_ids)
    if not exp_ids:
        return [], None

    dialect = dialect_name(session)
    stmt = sa.select(Run.run_uuid).where(
        Run.experiment_id.in_([bigint(e) for e in exp_ids]),  # INTEGER column: `db.int64`
        Run.lifecycle_stage.in_(stages),
        *planned_cheaply(run_filter_clauses(comparisons, dialect), dialect),
        *conditions(readable.experiment_clause(Run.experiment_id)),
    )
    stmt = _apply_order_by(stmt, parsed_order).offset(offset).limit(max_results + 1)
    # Plain DBAPI rows: SQLAlchemy Row objects for up to 50k ids cost more than the query.
    run_ids = [row[0] for row in fetch_tuples(session, stmt)]
    if len(run_ids) > max_results:
        return run_ids[:max_results], create_page_token(offset + max_results)
    return run_ids, None
