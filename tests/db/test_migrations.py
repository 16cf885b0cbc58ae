"""Alembic migrations build exactly the schema of `tether.db.models`, on both backends."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

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


def test_insertion_order_migration_numbers_existing_rows_by_key(backend_uri: str) -> None:
    """0007 gives params, latest metrics and the tags of runs, experiments, registered models
    and model versions an `id`: rows that exist get their key order (what Tether showed
    before), new rows come after them; its downgrade restores the (owner, key) primary keys
    with the data."""
    db = Database(backend_uri)
    try:
        migrate.upgrade(db, "0006")
        with db.write() as session:
            session.execute(
                text(
                    "INSERT INTO experiments (experiment_id, name, lifecycle_stage)"
                    " VALUES (7, 'e', 'active')"
                )
            )
            session.execute(
                text(
                    "INSERT INTO runs (run_uuid, experiment_id, status, lifecycle_stage) "
                    "VALUES ('r1', 7, 'RUNNING', 'active'), ('r0', 7, 'RUNNING', 'active')"
                )
            )
            session.execute(
                text("INSERT INTO registered_models (id, name, creation_time) VALUES (3, 'm', 1)")
            )
            session.execute(
                text(
                    "INSERT INTO model_versions (registered_model_id, version, creation_time,"
                    " current_stage, status, deleted) VALUES (3, 1, 1, 'None', 'READY', false)"
                )
            )
            for key in ("solver", "alpha", "mid"):
                for statement in (
                    "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (7, :k, 'v')",
                    "INSERT INTO registered_model_tags (registered_model_id, key, value)"
                    " VALUES (3, :k, 'v')",
                    "INSERT INTO model_version_tags (registered_model_id, version, key, value)"
                    " VALUES (3, 1, :k, 'v')",
                ):
                    session.execute(text(statement), {"k": key})
                for run in ("r1", "r0"):
                    for table in ("params", "tags"):
                        session.execute(
                            text(
                                f"INSERT INTO {table} (run_uuid, key, value) VALUES (:r, :k, 'v')"
                            ),
                            {"r": run, "k": key},
                        )
                    session.execute(
                        text(
                            "INSERT INTO latest_metrics (run_uuid, key, value, timestamp, step,"
                            " is_nan) VALUES (:r, :k, 1.5, 2, 3, false)"
                        ),
                        {"r": run, "k": key},
                    )
        migrate.upgrade(db)
        owners = {
            "experiment_tags": ("experiment_id", 3),
            "params": ("run_uuid", 6),
            "tags": ("run_uuid", 6),
            "latest_metrics": ("run_uuid", 6),
            "registered_model_tags": ("registered_model_id", 3),
            "model_version_tags": ("registered_model_id, version", 3),
        }
        with db.write() as session:
            for table, (owner, count) in owners.items():
                rows = session.execute(text(f"SELECT {owner}, key FROM {table} ORDER BY id")).all()
                assert len(rows) == count, table
                assert [tuple(r) for r in rows] == sorted(tuple(r) for r in rows), table
            # A new row comes after the migrated ones (the sequence starts past them).
            session.execute(
                text("INSERT INTO params (run_uuid, key, value) VALUES ('r0', 'aaa', 'v')")
            )
            last = session.execute(text("SELECT key FROM params ORDER BY id DESC LIMIT 1")).scalar()
            assert last == "aaa"
        migrate.downgrade(db, "0006")
        with db.read() as session:
            keys = session.execute(
                text("SELECT key FROM params WHERE run_uuid = 'r0' ORDER BY key")
            ).scalars()
            assert list(keys) == ["aaa", "alpha", "mid", "solver"]
            value = session.execute(
                text("SELECT value FROM latest_metrics WHERE key = 'mid' AND run_uuid = 'r1'")
            ).scalar()
            assert value == 1.5
        migrate.upgrade(db)
        assert migrate.current_revision(db) == migrate.head_revision()
    finally:
        db.dispose()


def test_workspaces_migration_puts_everything_in_default(backend_uri: str) -> None:
    """0009 (issue 17): a store written before workspaces keeps every id, name, tag, run,
    version and sync row, all in `default`; names become unique per workspace only."""
    db = Database(backend_uri)
    rows = {
        "experiments": "SELECT experiment_id, name, artifact_location FROM experiments",
        "experiment_tags": "SELECT experiment_id, key, value FROM experiment_tags",
        "runs": "SELECT run_uuid, experiment_id FROM runs",
        "registered_models": "SELECT id, name FROM registered_models",
        "registered_model_tags": "SELECT registered_model_id, key FROM registered_model_tags",
        "model_versions": "SELECT registered_model_id, version FROM model_versions",
        "sync_entities": "SELECT entity_type, entity_id, cursor, status FROM sync_entities",
    }
    try:
        migrate.upgrade(db, "0008")
        with db.write() as session:
            for statement in (
                "INSERT INTO experiments (experiment_id, name, lifecycle_stage, artifact_location)"
                " VALUES (7, 'kept', 'active', 'mlflow-artifacts:/7')",
                "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (7, 'k', 'v')",
                "INSERT INTO runs (run_uuid, experiment_id, lifecycle_stage, status)"
                " VALUES ('" + "a" * 32 + "', 7, 'active', 'RUNNING')",
                "INSERT INTO registered_models (id, name, creation_time) VALUES (3, 'model', 1)",
                "INSERT INTO registered_model_tags (registered_model_id, key, value)"
                " VALUES (3, 't', 'v')",
                "INSERT INTO model_versions (registered_model_id, version, creation_time,"
                " current_stage, status, deleted) VALUES (3, 1, 1, 'None', 'READY', false)",
                "INSERT INTO sync_entities (entity_type, entity_id, cursor, metric_hwm, status,"
                " attempts, next_attempt_at, updated_at, state)"
                " VALUES ('experiment', '7', 41, 0, 'synced', 0, 0, 1, '{}')",
            ):
                session.execute(text(statement))
        with db.read() as session:
            before = {t: session.execute(text(q)).all() for t, q in rows.items()}
        assert all(before.values())
        migrate.upgrade(db)
        with db.read() as session:
            assert {t: session.execute(text(q)).all() for t, q in rows.items()} == before
            for table in ("experiments", "registered_models"):
                workspaces = session.execute(text(f"SELECT DISTINCT workspace FROM {table}"))
                assert workspaces.scalars().all() == ["default"]
            assert session.execute(text("SELECT name, description FROM workspaces")).all() == [
                ("default", "Default workspace for legacy resources")
            ]
        with db.write() as session:  # the same name in another workspace is fine
            session.execute(
                text(
                    "INSERT INTO experiments (name, lifecycle_stage, workspace)"
                    " VALUES ('kept', 'active', 'team-a')"
                )
            )
        with pytest.raises(IntegrityError), db.write() as session:
            session.execute(
                text("INSERT INTO experiments (name, lifecycle_stage) VALUES ('kept', 'active')")
            )
    finally:
        db.dispose()


def test_bindings_migration_keeps_sync_state_and_rekeys_workspace_files(backend_uri: str) -> None:
    """0012 (issue 17, phase 2): a store at 0011 keeps every sync entity as it was (in
    `default`, nothing to re-send); a file written under `workspaces/<name>/` by 0011's release
    (keyed by its path, never synced) is re-keyed to its run and discovered from there."""
    from tether.sync import discovery

    db = Database(backend_uri)
    run = "b" * 32
    path = f"workspaces/team-x/8/{run}/artifacts/out/f.txt"
    entities = "SELECT entity_type, entity_id, cursor, azure_id, status FROM sync_entities"
    try:
        migrate.upgrade(db, "0011")
        with db.write() as session:
            for statement, values in (
                ("INSERT INTO workspaces (name) VALUES ('team-x')", {}),
                (
                    "INSERT INTO experiments (experiment_id, name, lifecycle_stage, workspace)"
                    " VALUES (8, 'x', 'active', 'team-x')",
                    {},
                ),
                (
                    "INSERT INTO runs (run_uuid, experiment_id, lifecycle_stage, status)"
                    " VALUES (:run, 8, 'active', 'RUNNING')",
                    {"run": run},
                ),
                (
                    "INSERT INTO sync_outbox (id, created_at, entity_type, entity_id, op, payload)"
                    " VALUES (40, 1, 'experiment', '7', 'experiment_create', '{}')",
                    {},
                ),
                (
                    "INSERT INTO sync_outbox (id, created_at, entity_type, entity_id, op, payload)"
                    " VALUES (41, 1, 'artifact', :id, 'artifact_put', :payload)",
                    {"id": path[:64], "payload": json.dumps({"path": path, "size": 3})},
                ),
                (
                    "INSERT INTO sync_entities (entity_type, entity_id, azure_id, cursor,"
                    " metric_hwm, status, attempts, next_attempt_at, updated_at, state)"
                    " VALUES ('experiment', '7', 'az-7', 40, 0, 'synced', 0, 0, 1, '{}')",
                    {},
                ),
            ):
                session.execute(text(statement), values)
            for capability in ("tracking", "artifacts", "models"):
                for end in ("safe", "high"):
                    discovery.set_meta(session, f"discovery.{capability}.{end}", "41")
        with db.read() as session:
            before = session.execute(text(entities)).all()
        migrate.upgrade(db)
        with db.read() as session:
            assert session.execute(text(entities)).all() == before
            assert session.execute(text("SELECT workspace FROM sync_entities")).scalars().all() == [
                "default"
            ]
            rekeyed = session.execute(
                text("SELECT entity_type, entity_id FROM sync_outbox WHERE id = 41")
            ).one()
            assert tuple(rekeyed) == ("run", run)
        with db.write() as session:
            assert discovery.discover(session, lookback_ms=0) == 1
        with db.read() as session:
            rows = session.execute(
                text(entities.replace("FROM", ", workspace FROM") + " ORDER BY entity_type")
            ).all()
        assert [tuple(r) for r in rows] == [
            ("experiment", "7", 40, "az-7", "synced", "default"),
            ("run_artifacts", run, 0, None, "pending", "team-x"),
        ]
    finally:
        db.dispose()


def test_retiring_bindings_migration_keeps_bindings_and_lets_them_outlive_the_workspace(
    backend_uri: str,
) -> None:
    """0014: a store at 0013 with a binding keeps it as it was (not retiring); the binding no
    longer depends on its workspace row, so a deleted workspace's binding can be kept while
    its work drains (tether.sync.retiring)."""
    db = Database(backend_uri)
    columns = (
        "workspace, azureml_workspace, target, azureml_endpoint, artifacts_destination, "
        "credential, artifacts_previous, bound, updated_at"
    )
    try:
        migrate.upgrade(db, "0013")
        with db.write() as session:
            session.execute(text("INSERT INTO workspaces (name) VALUES ('team-b')"))
            session.execute(
                text(
                    f"INSERT INTO workspace_bindings ({columns}) VALUES ('team-b', 'ws-uri', "
                    "'s/rg/w', 'https://e', 'file:///d', 'SP_B', '[]', :bound, 7)"
                ),
                {"bound": True},
            )
        with db.read() as session:
            before = session.execute(text(f"SELECT {columns} FROM workspace_bindings")).all()
        migrate.upgrade(db)
        with db.read() as session:
            after = session.execute(
                text(f"SELECT {columns}, deleted_at, deleted_outbox_id FROM workspace_bindings")
            ).all()
        assert [tuple(r) for r in after] == [(*before[0], None, None)]
        with db.write() as session:
            session.execute(text("DELETE FROM workspaces WHERE name = 'team-b'"))
        with db.read() as session:
            kept = session.execute(text("SELECT workspace FROM workspace_bindings")).scalars()
            assert kept.all() == ["team-b"]
    finally:
        db.dispose()
