"""Alembic migrations build exactly the schema of `tether.db.models`, on both backends."""

from __future__ import annotations

import subprocess
import sys
import threading

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from tether.db import migrate
from tether.db.engine import Database
from tether.db.models import Base


def test_upgrade_matches_models(backend_uri: str) -> None:
    db = Database(backend_uri)
    try:
        migrate.upgrade(db)
        assert migrate.current_revision(db) == migrate.head_revision()
        with db.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diffs == [], f"migrations and models disagree: {diffs}"
    finally:
        db.dispose()


def test_upgrade_is_idempotent_and_keeps_data(backend_uri: str) -> None:
    db = Database(backend_uri)
    try:
        migrate.upgrade(db)
        with db.write() as session:
            session.execute(
                text(
                    "INSERT INTO experiments (experiment_id, name, lifecycle_stage) "
                    "VALUES (42, 'kept', 'active')"
                )
            )
        migrate.upgrade(db)
        with db.read() as session:
            assert session.execute(text("SELECT name FROM experiments")).scalars().all() == ["kept"]
    finally:
        db.dispose()


def test_concurrent_upgrades_serialize(backend_uri: str) -> None:
    """Replicas starting together must not race each other through the migrations."""
    errors: list[BaseException] = []

    def upgrade() -> None:
        db = Database(backend_uri)
        try:
            migrate.upgrade(db)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=upgrade) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    db = Database(backend_uri)
    try:
        assert "sync_outbox" in inspect(db.engine).get_table_names()
        assert migrate.current_revision(db) == migrate.head_revision()
    finally:
        db.dispose()


def test_db_upgrade_command(backend_uri: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tether.cli", "db", "upgrade", "--backend-store-uri", backend_uri],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_unsupported_backend_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tether.cli", "db", "upgrade", "--backend-store-uri", "mysql://x/y"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Unsupported --backend-store-uri scheme" in result.stderr
