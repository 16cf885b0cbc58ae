"""Apply Alembic migrations, one process at a time.

Several replicas (or `--workers` processes) may start together; each takes a lock before
migrating: a PostgreSQL advisory lock, or an exclusive file lock beside the SQLite file.
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
    with _migration_lock(db) as conn:
        config = _config()
        config.attributes["connection"] = conn
        step(config, revision)
        conn.commit()


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
