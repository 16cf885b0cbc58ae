"""Apply Alembic migrations, one process at a time.

Several replicas (or `--workers` processes) may start together; each takes a lock before
migrating: a PostgreSQL advisory lock, or an exclusive file lock beside the SQLite file.

On SQLite, migrations run with foreign keys off, as Alembic's batch mode requires: rebuilding a
parent table (copy, drop, rename) would otherwise cascade the drop into its children's rows
(0009 rebuilds `experiments`, whose tags are ON DELETE CASCADE). Afterwards
`PRAGMA foreign_key_check` must find nothing, and foreign keys are on again.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from tether.db.engine import Database

# Arbitrary but fixed: the advisory lock id all Tether processes agree on.
_PG_MIGRATION_LOCK_ID = 7_311_990_412


def _script_location() -> Path:
    package_dir = Path(__file__).resolve().parent.parent
    for candidate in (package_dir / "_alembic", package_dir.parent.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise RuntimeError("Alembic migrations not found next to the tether package")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_script_location()))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database, revision: str = "head") -> None:
    """Migrate to `revision` (tests name older ones to build a store as it was)."""
    _run(db, command.upgrade, revision)


def downgrade(db: Database, revision: str) -> None:
    """Migrate back to `revision` (each migration's downgrade; for tests and recovery)."""
    _run(db, command.downgrade, revision)


def _run(db: Database, step: Callable[[Config, str], None], revision: str) -> None:
    with _migration_lock(db) as conn, _sqlite_foreign_keys_off(conn, db.is_sqlite):
        config = _config()
        config.attributes["connection"] = conn
        step(config, revision)
        conn.commit()


@contextmanager
def _sqlite_foreign_keys_off(conn: Connection, is_sqlite: bool) -> Iterator[None]:
    if not is_sqlite:
        yield
        return
    # Outside any transaction (the pragma is a no-op inside one): straight on the DB-API
    # connection, which runs in autocommit mode (tether.db.engine).
    raw = conn.connection.dbapi_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
        broken = raw.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"migration left rows violating foreign keys: {broken[:10]}")
    finally:
        if conn.in_transaction():  # a failed migration: the pragma needs no open transaction
            conn.rollback()
        raw.execute("PRAGMA foreign_keys=ON")


@contextmanager
def _migration_lock(db: Database) -> Iterator[Connection]:
    if db.is_sqlite:
        database = make_url(db.url).database or ":memory:"
        lock_path = Path(f"{database}.migrate-lock")
        if database == ":memory:":
            with db.engine.connect() as conn:
                yield conn
            return
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                with db.engine.connect() as conn:
                    yield conn
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
        return
    with db.engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _PG_MIGRATION_LOCK_ID})
        conn.commit()
        try:
            yield conn
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _PG_MIGRATION_LOCK_ID})
            conn.commit()
