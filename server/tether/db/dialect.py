"""Dialect-specific statements both backends support with the same shape."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session


def upsert_insert(session: Session, model: Any) -> Any:
    """An INSERT that supports ON CONFLICT clauses on the session's backend."""
    if session.get_bind().dialect.name == "postgresql":
        return pg_insert(model)
    return sqlite_insert(model)
