"""Parsed registry searches compiled to SQL, as MLflow's SQL store runs them, with its paging.

Prompts (models tagged `mlflow.prompt.is_prompt = 'true'`, and every version of a model that
has a version so tagged) are left out unless the filter asks for them, as MLflow does. Paging
is MLflow's offset token.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from tether.db.int64 import bindable
from tether.db.models import ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelTag
from tether.db.visibility import EVERYTHING, Visibility, conditions
from tether.errors import invalid_parameter
from tether.registry.search.filters import (
    Clause,
    check_model_comparators,
    is_querying_prompts,
    parse_model_filter_syntax,
    parse_version_filter,
    without_prompt_tag,
)
from tether.registry.search.order_by import parse_model_order_by, parse_version_order_by
from tether.registry.validation import IS_PROMPT_TAG_KEY
from tether.search.grammar import ATTRIBUTE
from tether.search.page_token import create_page_token, parse_page_token
from tether.search.sql import compare, dialect_name, planned_cheaply

MODEL_MAX_RESULTS_DEFAULT = 100
MODEL_MAX_RESULTS_THRESHOLD = 1000
VERSION_MAX_RESULTS_DEFAULT = 200_000
VERSION_MAX_RESULTS_THRESHOLD = 200_000

_MODEL_ORDER_COLUMNS: dict[str, Any] = {
    "name": RegisteredModel.name,
    "last_updated_time": RegisteredModel.last_updated_time,
}
_VERSION_ORDER_COLUMNS: dict[str, Any] = {
    "name": RegisteredModel.name,
    "version": ModelVersion.version,
    "creation_time": ModelVersion.creation_time,
    "last_updated_time": ModelVersion.last_updated_time,
}
_VERSION_FILTER_COLUMNS: dict[str, Any] = {
    "name": RegisteredModel.name,
    "run_id": ModelVersion.run_id,
    "source_path": ModelVersion.source,
    "version_number": ModelVersion.version,
}


def _model_where(clauses: list[Clause], dialect: str) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if not is_querying_prompts(clauses):
        clauses = without_prompt_tag(clauses)
        where.append(
            ~sa.exists().where(
                RegisteredModelTag.registered_model_id == RegisteredModel.id,
                RegisteredModelTag.key == IS_PROMPT_TAG_KEY,
                RegisteredModelTag.value == "true",
            )
        )
    for clause in clauses:
        if clause.entity == ATTRIBUTE:
            where.append(compare(RegisteredModel.name, clause.comparator, clause.value, dialect))
        else:
            where.append(
                sa.exists().where(
                    RegisteredModelTag.registered_model_id == RegisteredModel.id,
                    RegisteredModelTag.key == clause.key,
                    compare(RegisteredModelTag.value, clause.comparator, clause.value, dialect),
                )
            )
    return where


def _version_where(clauses: list[Clause], dialect: str) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [ModelVersion.deleted == sa.false()]
    if not is_querying_prompts(clauses):
        clauses = without_prompt_tag(clauses)
        prompt_tag = sa.orm.aliased(ModelVersionTag, name="prompt_tag")
        where.append(
            ~sa.exists().where(
                prompt_tag.registered_model_id == ModelVersion.registered_model_id,
                prompt_tag.key == IS_PROMPT_TAG_KEY,
                prompt_tag.value == "true",
            )
        )
    for clause in clauses:
        if clause.entity == ATTRIBUTE:
            column = _VERSION_FILTER_COLUMNS[clause.key]
            # A version number beyond int64 compares as a float rather than fail to bind.
            value = bindable(clause.value) if isinstance(clause.value, int) else clause.value
            where.append(compare(column, clause.comparator, value, dialect))
        else:
            where.append(
                sa.exists().where(
                    ModelVersionTag.registered_model_id == ModelVersion.registered_model_id,
                    ModelVersionTag.version == ModelVersion.version,
                    ModelVersionTag.key == clause.key,
                    compare(ModelVersionTag.value, clause.comparator, clause.value, dialect),
                )
            )
    return where


def _ordered(columns: dict[str, Any], order: list[tuple[str, bool]]) -> list[Any]:
    return [columns[c].asc() if asc else columns[c].desc() for c, asc in order]


def _page(rows: list[Any], offset: int, max_results: int) -> tuple[list[Any], str | None]:
    # One row more than the page was fetched: its presence is what says a next page exists.
    if len(rows) > max_results:
        return rows[:max_results], create_page_token(offset + max_results)
    return rows, None


def check_max_results(max_results: int, threshold: int) -> None:
    # The registry's messages, not `validate_max_results`' (runs / experiments) wording.
    if max_results < 1:
        raise invalid_parameter(
            f"Invalid value for max_results. It must be a positive integer, but got {max_results}"
        )
    if max_results > threshold:
        raise invalid_parameter(
            "Invalid value for request parameter max_results. It must be at most "
            f"{threshold}, but got value {max_results}"
        )


def search_model_ids(
    session: Session,
    *,
    filter_string: str,
    max_results: int,
    order_by: list[str],
    page_token: str | None,
    readable: Visibility = EVERYTHING,
) -> tuple[list[int], str | None]:
    """Registered model ids of one page of `search-registered-models`, and the next token;
    only models the caller may read (`readable`)."""
    # MLflow's order of checks: its parser, order_by, page token, then the store's comparators.
    check_max_results(max_results, MODEL_MAX_RESULTS_THRESHOLD)
    parsed = parse_model_filter_syntax(filter_string)
    order = parse_model_order_by(order_by)
    offset = parse_page_token(page_token)
    clauses = check_model_comparators(parsed)
    dialect = dialect_name(session)
    stmt = (
        sa.select(RegisteredModel.id)
        .where(
            *planned_cheaply(_model_where(clauses, dialect), dialect),
            *conditions(readable.registered_model_clause(RegisteredModel.name)),
        )
        .order_by(*_ordered(_MODEL_ORDER_COLUMNS, order))
        .offset(offset)
        .limit(max_results + 1)
    )
    return _page(list(session.execute(stmt).scalars()), offset, max_results)


def search_version_keys(
    session: Session,
    *,
    filter_string: str,
    max_results: int,
    order_by: list[str],
    page_token: str | None,
    readable: Visibility = EVERYTHING,
) -> tuple[list[tuple[int, int]], str | None]:
    """(registered model id, version) of one page of `search-model-versions`, and the token;
    only versions of models the caller may read (`readable`)."""
    check_max_results(max_results, VERSION_MAX_RESULTS_THRESHOLD)
    clauses = parse_version_filter(filter_string)
    order = parse_version_order_by(order_by)
    offset = parse_page_token(page_token)
    dialect = dialect_name(session)
    stmt = (
        sa.select(ModelVersion.registered_model_id, ModelVersion.version)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.registered_model_id)
        .where(
            *planned_cheaply(_version_where(clauses, dialect), dialect),
            *conditions(readable.registered_model_clause(RegisteredModel.name)),
        )
        .order_by(*_ordered(_VERSION_ORDER_COLUMNS, order))
        .offset(offset)
        .limit(max_results + 1)
    )
    rows = [(int(r[0]), int(r[1])) for r in session.execute(stmt)]
    return _page(rows, offset, max_results)
