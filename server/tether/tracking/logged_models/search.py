"""`search_logged_models` in SQL: MLflow's filter, datasets, order_by and paging semantics.

Filters (see `filters`) are AND-ed: attributes compare columns; metrics, params and tags are
correlated EXISTS subqueries (a metric filter matches when ANY point of that metric -- any
step, run or dataset, restricted to the request's `datasets` when given -- satisfies it, as
in MLflow). `datasets` alone keeps the models with a metric on one of those datasets.

Ordering is MLflow's SQL store's: for each order_by field, models without a value last, then
the value ASC|DESC; then creation_timestamp DESC and model_id ASC unless ordered on already.
Ordering on `metrics.<key>` uses each model's latest point of that metric (newest timestamp,
then highest step, then lowest run id), restricted to the clause's dataset when one is given.

Page tokens are MLflow's (base64 JSON of the request's experiment ids, filter, order_by and the
offset), so a token is only valid for the request that produced it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from tether.db.int64 import INT64_MAX, bigint
from tether.db.models import LoggedModel, LoggedModelMetric, LoggedModelParam, LoggedModelTag
from tether.db.visibility import EVERYTHING, Visibility, conditions
from tether.errors import invalid_parameter
from tether.search.experiment_ids import parse_experiment_ids
from tether.search.limits import (
    MAX_FILTER_CLAUSES,
    check_order_by,
    check_page_token,
    check_size,
)
from tether.search.sql import compare, dialect_name, planned_cheaply
from tether.tracking.logged_models import filters
from tether.tracking.logged_models.repository import STATUS_NUMBER, STATUS_PROTO

DEFAULT_MAX_RESULTS = 100  # MLflow's SEARCH_LOGGED_MODEL_MAX_RESULTS_DEFAULT
_INT32_MAX = 2**31 - 1  # max_results is an int32 in the protocol


@dataclass(frozen=True)
class DatasetFilter:
    name: str
    digest: str | None


@dataclass(frozen=True)
class OrderBy:
    field_name: str
    ascending: bool
    dataset_name: str | None
    dataset_digest: str | None

    def as_token(self) -> dict[str, Any]:
        return {
            "field_name": self.field_name,
            "ascending": self.ascending,
            "dataset_name": self.dataset_name,
            "dataset_digest": self.dataset_digest,
        }


def _status_number_expr() -> Any:
    """The status as MLflow stores it (the enum number), as text: what its filters compare."""
    return sa.case(
        *((LoggedModel.status == name, str(n)) for name, n in STATUS_NUMBER.items()),
        else_="0",
    )


def _status_value(value: str) -> str:
    """A status filter value: an enum number (what MLflow matches) or, as a Tether extension,
    a status name (READY or LOGGED_MODEL_READY)."""
    upper = value.upper()
    for name, proto in STATUS_PROTO.items():
        if upper in (name, proto) or (name == "FAILED" and upper == "UPLOAD_FAILED"):
            return str(STATUS_NUMBER[name])
    return value


_COLUMNS: dict[str, Any] = {
    "model_id": LoggedModel.model_id,
    "name": LoggedModel.name,
    "artifact_location": LoggedModel.artifact_location,
    "creation_timestamp_ms": LoggedModel.creation_time,
    "last_updated_timestamp_ms": LoggedModel.last_updated_time,
    "lifecycle_stage": LoggedModel.lifecycle_stage,
    "model_type": LoggedModel.model_type,
    "source_run_id": LoggedModel.source_run_id,
    "status_message": LoggedModel.status_message,
}


def _filter_column(key: str) -> Any:
    if key == "status":
        return _status_number_expr()
    if key == "experiment_id":
        # MLflow's SQLite compares the integer column with the filter's text value.
        return sa.cast(LoggedModel.experiment_id, sa.String)
    return _COLUMNS[key]


def _order_column(key: str) -> Any:
    if key == "status":
        return sa.case(
            *((LoggedModel.status == name, n) for name, n in STATUS_NUMBER.items()), else_=0
        )
    if key == "experiment_id":
        return LoggedModel.experiment_id
    return _COLUMNS[key]


def _dataset_clause(datasets: list[DatasetFilter]) -> ColumnElement[bool] | None:
    if not datasets:
        return None
    clauses = []
    for ds in datasets:
        clause = LoggedModelMetric.dataset_name == ds.name
        if ds.digest:
            clause = sa.and_(clause, LoggedModelMetric.dataset_digest == ds.digest)
        clauses.append(clause)
    return sa.or_(*clauses)


def _where(
    comparisons: list[filters.Comparison], datasets: list[DatasetFilter], dialect: str
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    dataset_clause = _dataset_clause(datasets)
    has_metric_filter = False
    for comp in comparisons:
        if comp.entity == "attributes":
            value: Any = comp.value
            if comp.key == "status":
                value = (
                    tuple(_status_value(v) for v in value)
                    if isinstance(value, tuple)
                    else _status_value(str(value))
                )
            where.append(compare(_filter_column(comp.key), comp.op, value, dialect))
        elif comp.entity == "metrics":
            has_metric_filter = True
            m = LoggedModelMetric
            conditions = [
                m.model_id == LoggedModel.model_id,
                m.key == comp.key,
                compare(m.value, comp.op, comp.value, dialect),
            ]
            if dataset_clause is not None:
                conditions.append(dataset_clause)
            where.append(sa.exists().where(*conditions))
        else:
            table: Any = LoggedModelParam if comp.entity == "params" else LoggedModelTag
            where.append(
                sa.exists().where(
                    table.model_id == LoggedModel.model_id,
                    table.key == comp.key,
                    compare(table.value, comp.op, comp.value, dialect),
                )
            )
    if dataset_clause is not None and not has_metric_filter:
        where.append(
            sa.exists().where(LoggedModelMetric.model_id == LoggedModel.model_id, dataset_clause)
        )
    return where


def parse_order_by(order_by: list[OrderBy]) -> list[tuple[str, str, OrderBy]]:
    """(kind, key, clause) per clause: kind "attribute" (key a column) or "metric"."""
    parsed = []
    for clause in order_by:
        field = clause.field_name
        if "." not in field:
            key = filters.ALIASES.get(field, field)
            if key not in filters.ATTRIBUTES:
                raise invalid_parameter(f"Invalid order by field name: {field}")
            parsed.append(("attribute", key, clause))
            continue
        entity, key = field.split(".", 1)
        if entity != "metrics":
            raise invalid_parameter(
                f"Invalid order by field name: {field}. Only metrics are supported."
            )
        parsed.append(("metric", key, clause))
    return parsed


def _apply_order_by(stmt: Any, parsed: list[tuple[str, str, OrderBy]]) -> Any:
    order: list[Any] = []
    has_creation = has_model_id = False
    for index, (kind, key, clause) in enumerate(parsed):
        if kind == "attribute":
            has_creation = has_creation or key == "creation_timestamp_ms"
            has_model_id = has_model_id or key == "model_id"
            value: Any = _order_column(key)
        else:
            m = LoggedModelMetric
            conditions = [m.key == key]
            if clause.dataset_name:
                conditions.append(m.dataset_name == clause.dataset_name)
            if clause.dataset_digest:
                conditions.append(m.dataset_digest == clause.dataset_digest)
            ranked = (
                sa.select(
                    m.model_id,
                    m.value,
                    sa.func.row_number()
                    .over(
                        partition_by=m.model_id,
                        order_by=(m.timestamp.desc(), m.step.desc(), m.run_id.asc(), m.id.asc()),
                    )
                    .label("rn"),
                )
                .where(*conditions)
                .subquery(f"ranked_{index}")
            )
            latest = (
                sa.select(ranked.c.model_id, ranked.c.value)
                .where(ranked.c.rn == 1)
                .subquery(f"latest_{index}")
            )
            stmt = stmt.outerjoin(latest, latest.c.model_id == LoggedModel.model_id)
            value = latest.c.value
        order.append(sa.case((value.is_(None), 1), else_=0))
        order.append(value.asc() if clause.ascending else value.desc())
    if not has_creation:
        order.append(LoggedModel.creation_time.desc())
    if not has_model_id:
        order.append(LoggedModel.model_id.asc())
    return stmt.order_by(*order)


# ------------------------------------------------------------------------------ page tokens


def create_page_token(
    experiment_ids: list[str], filter_string: str | None, order_by: list[OrderBy], offset: int
) -> str:
    token = {
        "experiment_ids": experiment_ids,
        "filter_string": filter_string,
        "order_by": [o.as_token() for o in order_by] or None,
        "offset": offset,
    }
    return base64.b64encode(json.dumps(token).encode("utf-8")).decode("utf-8")


def parse_page_token(
    page_token: str, experiment_ids: list[str], filter_string: str | None, order_by: list[OrderBy]
) -> int:
    """The offset of a token from this very search (MLflow's checks and messages)."""
    check_page_token(page_token)
    try:
        token = json.loads(base64.b64decode(page_token.encode("utf-8"), validate=True))
    except (binascii.Error, ValueError, RecursionError):
        raise invalid_parameter(f"Invalid page token: {page_token}.") from None
    if not isinstance(token, dict):
        raise invalid_parameter(f"Invalid page token: {page_token}.")
    token_experiments = token.get("experiment_ids")
    if token_experiments != experiment_ids:
        raise invalid_parameter(
            "Experiment IDs in the page token do not match the requested experiment IDs. "
            f"Expected: {experiment_ids}. Found: {token_experiments}"
        )
    token_filter = token.get("filter_string") or None
    if token_filter != filter_string:
        raise invalid_parameter(
            "Filter string in the page token does not match the requested filter string. "
            f"Expected: {filter_string}. Found: {token_filter}"
        )
    token_order = token.get("order_by") or None
    requested_order = [o.as_token() for o in order_by] or None
    if token_order != requested_order:
        raise invalid_parameter(
            "Order by in the page token does not match the requested order by. "
            f"Expected: {requested_order}. Found: {token_order}"
        )
    offset = token.get("offset") or 0
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= INT64_MAX:
        raise invalid_parameter(f"Invalid page token: {page_token}.")
    return offset


# ----------------------------------------------------------------------------------- search


def search_model_ids(
    session: Session,
    *,
    experiment_ids: list[str],
    filter_string: str | None,
    datasets: list[DatasetFilter],
    max_results: int | None,
    order_by: list[OrderBy],
    page_token: str | None,
    readable: Visibility = EVERYTHING,
) -> tuple[list[str], str | None]:
    """Model ids of one page of `search_logged_models`, in MLflow's order, and the next token;
    models of experiments the caller may not read (`readable`) are left out."""
    if max_results is not None and not 0 <= max_results <= _INT32_MAX:
        raise invalid_parameter(
            f"Invalid value {max_results} for parameter 'max_results' supplied: it must be "
            f"between 0 and {_INT32_MAX} (0 means the default, {DEFAULT_MAX_RESULTS})."
        )
    limit = max_results or DEFAULT_MAX_RESULTS
    check_order_by(order_by)
    check_size("datasets", datasets, MAX_FILTER_CLAUSES, "entries")  # each an OR-ed condition
    offset = (
        parse_page_token(page_token, experiment_ids, filter_string, order_by) if page_token else 0
    )
    comparisons = filters.parse_filter(filter_string)
    exp_ids = parse_experiment_ids(experiment_ids)  # MLflow reads them before the order_by
    parsed_order = parse_order_by(order_by)
    if not exp_ids:
        return [], None
    dialect = dialect_name(session)
    stmt = sa.select(LoggedModel.model_id).where(
        LoggedModel.lifecycle_stage != "deleted",
        LoggedModel.experiment_id.in_([bigint(e) for e in exp_ids]),  # INTEGER: `db.int64`
        *planned_cheaply(_where(comparisons, datasets, dialect), dialect),
        *conditions(readable.experiment_clause(LoggedModel.experiment_id)),
    )
    stmt = _apply_order_by(stmt, parsed_order).offset(offset).limit(limit + 1)
    model_ids = list(session.execute(stmt).scalars())
    if len(model_ids) > limit:
        token = create_page_token(experiment_ids, filter_string, order_by, offset + limit)
        return model_ids[:limit], token
    return model_ids, None
