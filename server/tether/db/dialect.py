"""Dialect-specific statements both backends support with the same shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import String, any_, bindparam, column, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session


def upsert_insert(session: Session, model: Any) -> Any:
    """An INSERT that supports ON CONFLICT clauses on the session's backend."""
    return upsert_for(session.get_bind().dialect.name, model)


def upsert_for(dialect: str, model: Any) -> Any:
    """An INSERT that supports ON CONFLICT clauses on the backend named `dialect`."""
    if dialect == "postgresql":
        return pg_insert(model)
    return sqlite_insert(model)


def in_list(session: Session, col: Any, values: Sequence[str]) -> Any:
    """`col IN (values)` with the whole list as one parameter: a JSON array read by
    `json_each` on SQLite, an array with `= ANY` on PostgreSQL. The statement is the same for
    any number of values, so it is compiled once (SQLAlchemy renders an expanding IN list
    value by value, every call: ~15% of a 1000-run search page) and no backend limit on
    the number of bound parameters applies."""
    if session.get_bind().dialect.name == "postgresql":
        return col == any_(bindparam("ids", list(values), type_=ARRAY(String)))
    listed: Any = select(column("value")).select_from(
        func.json_each(bindparam("ids", orjson.dumps(list(values)).decode()))
    )
    return col.in_(listed.scalar_subquery())
