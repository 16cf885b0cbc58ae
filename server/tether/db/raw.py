"""Constant SQL statements run straight on the DBAPI cursor: the small writes' fast lane.

SQLAlchemy's execution path (execution context, events, parameter processing, result
wrapping) costs ~30 us per statement on this machine, more than SQLite takes to run it, and a
single log-metric or runs/create is four or five such statements. A `Statement` is compiled
by SQLAlchemy once per dialect (its parameter style and quoting), then executed on the
session's own DBAPI connection, inside the session's transaction.

Only for statements whose parameters need no type processing (str, int, float, bool, None)
and whose results are read as plain tuples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ClauseElement, Dialect, text
from sqlalchemy.orm import Session

_DBAPI_KEY = "tether.dbapi_connection"


class Statement:
    """`sql`: statement text with `:name` parameters, or a Core construct (e.g. a select that
    renders FOR UPDATE on PostgreSQL only)."""

    def __init__(self, sql: str | ClauseElement) -> None:
        self.clause = text(sql) if isinstance(sql, str) else sql
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None]] = {}

    def first(self, session: Session, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row, as the DBAPI returns it (None: no row)."""
        cursor = self._cursor(session, params)
        try:
            row: tuple[Any, ...] | None = cursor.fetchone()
        finally:
            cursor.close()
        return row

    def all(self, session: Session, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row, as the DBAPI returns them."""
        cursor = self._cursor(session, params)
        try:
            rows: list[tuple[Any, ...]] = cursor.fetchall()
        finally:
            cursor.close()
        return rows

    def scalar(self, session: Session, params: Mapping[str, Any]) -> Any:
        row = self.first(session, params)
        return None if row is None else row[0]

    def run(self, session: Session, params: Mapping[str, Any]) -> int:
        """Run once for its effect; returns the rows affected."""
        cursor = self._cursor(session, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def executemany(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        connection, dialect = _dbapi(session)
        sql, order = self._for(dialect)
        cursor = connection.cursor()
        try:
            cursor.executemany(sql, [_bind(row, order) for row in rows])
        finally:
            cursor.close()

    def _cursor(self, session: Session, params: Mapping[str, Any]) -> Any:
        connection, dialect = _dbapi(session)
        sql, order = self._for(dialect)
        cursor = connection.cursor()
        cursor.execute(sql, _bind(params, order))
        return cursor

    def _for(self, dialect: Dialect) -> tuple[str, tuple[str, ...] | None]:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            done: Any = self.clause.compile(dialect=dialect)  # a SQLCompiler
            order = tuple(done.positiontup or ()) if done.positional else None
            compiled = self._compiled[dialect.name] = (done.string, order)
        return compiled


class Compiled:
    """A select built at run time (e.g. from a search filter), compiled once for `dialect`
    with its bound values, then run on the DBAPI cursor like a `Statement`, with the values
    of some parameters replaced per call (a page's LIMIT and OFFSET): for a statement that
    repeats, as a search page does, SQLAlchemy's execution path (~0.15 ms for a 100-row
    page) is paid once. `usable` is False when a bound value would need type processing
    (then run it through SQLAlchemy as usual)."""

    def __init__(self, clause: ClauseElement, dialect: Dialect) -> None:
        done: Any = clause.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        self.sql: str = done.string
        self.order: tuple[str, ...] | None = (
            tuple(done.positiontup or ()) if done.positional else None
        )
        self.params: dict[str, Any] = dict(done.params)
        self.usable = all(
            bind.type._cached_bind_processor(dialect) is None for bind in done.binds.values()
        )

    def all(self, session: Session, replaced: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        connection, _ = _dbapi(session)
        cursor = connection.cursor()
        try:
            cursor.execute(self.sql, _bind({**self.params, **replaced}, self.order))
            rows: list[tuple[Any, ...]] = cursor.fetchall()
        finally:
            cursor.close()
        return rows


def _bind(params: Mapping[str, Any], order: tuple[str, ...] | None) -> Any:
    return params if order is None else tuple(params[name] for name in order)


def _dbapi(session: Session) -> tuple[Any, Dialect]:
    """The session's DBAPI connection (its transaction begun, pending ORM changes flushed
    first, as SQLAlchemy's own execute would autoflush)."""
    # A no-op when nothing is pending (0.2 us; testing new/dirty/deleted built three sets: 0.8+)
    session.flush()
    transaction = session.get_transaction()
    cached = session.info.get(_DBAPI_KEY)
    if cached is None or cached[0] is not transaction:
        connection = session.connection()  # begins the session's transaction if needed
        cached = session.info[_DBAPI_KEY] = (
            session.get_transaction(),
            connection.connection.dbapi_connection,
            connection.dialect,
        )
    return cached[1], cached[2]
