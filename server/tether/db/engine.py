"""Engine and sessions for SQLite (embedded default) and PostgreSQL (team store).

Writes go through `Database.write()`: one transaction per request on PostgreSQL. On SQLite
writers take turns on one connection, each transaction starting with BEGIN IMMEDIATE, so they
queue instead of failing with "database is locked" when a read transaction would otherwise
need upgrading; writers that queue up together share one commit (`group_commit`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Executable, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from tether.db import sqlite_functions
from tether.db.group_commit import GroupCommit
from tether.errors import invalid_parameter

_WRITE_OPTION = "tether_write"


def normalize_url(uri: str) -> str:
    """Accept the URIs `mlflow server` users type; choose psycopg 3 for PostgreSQL."""
    url = make_url(uri)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    elif url.drivername not in ("sqlite", "postgresql+psycopg"):
        raise invalid_parameter(
            f"Unsupported --backend-store-uri scheme '{url.drivername}': "
            "use sqlite:///path or postgresql://user:pass@host/db"
        )
    return url.render_as_string(hide_password=False)


class Database:
    def __init__(
        self,
        uri: str,
        *,
        sqlite_synchronous: str = "FULL",
        pool_size: int = 10,
        max_overflow: int = 20,
    ) -> None:
        self.url = normalize_url(uri)
        self.is_sqlite = self.url.startswith("sqlite")
        self.engine = self._make_engine(sqlite_synchronous, pool_size, max_overflow)
        self._writer = self.engine.execution_options(**{_WRITE_OPTION: True})
        # PostgreSQL reads in autocommit: under READ COMMITTED each statement takes its own
        # snapshot even inside a transaction, so BEGIN and ROLLBACK only added two round trips
        # to every read. SQLite keeps its read transaction (one snapshot for all statements).
        readers = (
            self.engine
            if self.is_sqlite
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._read_sessions = sessionmaker(readers, expire_on_commit=False)
        self._write_sessions = sessionmaker(self._writer, expire_on_commit=False)
        self._group_commit = GroupCommit(self._writer) if self.is_sqlite else None

    def _make_engine(self, synchronous: str, pool_size: int, max_overflow: int) -> Engine:
        if not self.is_sqlite:
            return create_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_pre_ping=True,
            )
        database = make_url(self.url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            self.url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            connect_args={"check_same_thread": False, "timeout": 60},
        )
        _install_sqlite_hooks(engine, synchronous)
        _raw_savepoints(engine.dialect)
        return engine

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read_sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction, committed when the block exits without an exception."""
        if self._group_commit is None:
            with self._write_sessions.begin() as session:
                yield session
            return
        with self._group_commit.write() as session:
            yield session

    def dispose(self) -> None:
        if self._group_commit is not None:
            self._group_commit.close()
        self.engine.dispose()


def fetch_tuples(session: Session, stmt: Executable) -> list[tuple[Any, ...]]:
    """The rows of `stmt` exactly as the DBAPI returns them, as plain tuples.

    Building SQLAlchemy Row objects costs microseconds per row, which dominated reads of
    thousands of metric points (10k ids: ~40 ms through Result, ~5 ms from the cursor). Only
    for columns whose raw values are what the caller needs: numbers and strings (a Boolean
    comes back as 0/1 from SQLite, as bool from PostgreSQL).
    """
    result = session.connection().execute(stmt)
    try:
        rows = result.cursor.fetchall()
    finally:
        result.close()
    return list(rows)


def _install_sqlite_hooks(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so BEGIN is ours to choose (see `_on_begin`).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()
        sqlite_functions.register(dbapi_conn)  # REGEXP and percentile (trace search, metrics)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Straight on the DBAPI connection, as the savepoints below: SQLAlchemy's execution
        # path for the one statement was ~30 us of every session (a search page's read, each
        # group of writes), more than SQLite takes to run it.
        begin = "BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE_OPTION) else "BEGIN"
        conn.connection.dbapi_connection.execute(begin)


def _raw_savepoints(dialect: Any) -> None:
    """Emit SAVEPOINT / RELEASE / ROLLBACK TO straight on the DBAPI connection. Every write
    that joins a group runs in a savepoint (db.group_commit), and SQLAlchemy's full execution
    path for the two statements cost ~60 us of the group's serialized time per write (5 us
    this way). The dialect's own hooks for savepoints, overridden on this engine only."""

    def execute(connection: Any, sql: str) -> None:
        connection.connection.dbapi_connection.execute(sql)

    dialect.do_savepoint = lambda connection, name: execute(connection, f'SAVEPOINT "{name}"')
    dialect.do_release_savepoint = lambda connection, name: execute(
        connection, f'RELEASE SAVEPOINT "{name}"'
    )
    dialect.do_rollback_to_savepoint = lambda connection, name: execute(
        connection, f'ROLLBACK TO SAVEPOINT "{name}"'
    )
