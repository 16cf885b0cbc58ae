"""A deleted workspace's binding (tether.sync.retiring, on the store, both backends): a bound
one retires in every delete mode and goes only once its work is drained; an unbound one goes
with its workspace; the name cannot be created again while it retires; an unbind of a
retiring binding is refused (its workspace is gone). The end-to-end drain into a stand-in
Azure ML workspace is tests/sync/test_sync_retiring_workspace.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tether.config import Settings
from tether.db import migrate
from tether.db.engine import Database
from tether.db.models import WorkspaceBinding
from tether.errors import MlflowError
from tether.sync import bindings, discovery, retiring, state, status
from tether.workspaces.service import WorkspaceService

A_URI = (
    "azureml://eastus.api.azureml.ms/mlflow/v1.0/subscriptions/S-1/resourceGroups/RG-A"
    "/providers/Microsoft.MachineLearningServices/workspaces/WS-A"
)
TEAM = "team-r"


@pytest.fixture
def store(backend_uri: str) -> Iterator[Database]:
    db = Database(backend_uri)
    migrate.upgrade(db)
    try:
        yield db
    finally:
        db.dispose()


def _entity(db: Database, entity_id: str, status_: str) -> None:
    with db.write() as session:
        session.execute(
            text(
                "INSERT INTO sync_entities (entity_type, entity_id, cursor, metric_hwm, status,"
                " attempts, next_attempt_at, updated_at, state, workspace)"
                " VALUES ('experiment', :id, 0, 0, :status, 0, 0, 1, '{}', :ws)"
            ),
            {"id": entity_id, "status": status_, "ws": TEAM},
        )


def _discover(db: Database) -> None:
    with db.write() as session:
        discovery.discover(session, lookback_ms=0)


@pytest.mark.parametrize("mode", ["CASCADE", "SET_DEFAULT", "RESTRICT"])
def test_a_bound_workspace_retires_until_drained(store: Database, mode: str) -> None:
    service = WorkspaceService(store)
    service.create(TEAM, None, None)
    with store.write() as session:
        bindings.bind(session, TEAM, A_URI)
    _entity(store, "9001", state.FAILED)
    service.delete(TEAM, mode)
    with store.read() as session:
        row = session.get(WorkspaceBinding, TEAM)
        assert row is not None and row.bound and row.deleted_at is not None
        assert TEAM in bindings.active_targets(session, store_settings())  # its worker runs
        shown = status.by_workspace(session, bindings.kinds(session, store_settings()))
    assert shown[TEAM]["binding"] == retiring.DRAINING, shown

    # Recreating the name is refused while it drains, naming the work; nothing changes.
    with pytest.raises(MlflowError) as refused:
        service.create(TEAM, None, None)
    assert refused.value.error_code == "INVALID_STATE"
    assert "1 pending" in refused.value.message and "s-1/rg-a/ws-a" in refused.value.message
    assert not service.exists(TEAM)
    with store.write() as session, pytest.raises(MlflowError):
        bindings.unbind(session, TEAM)

    _discover(store)
    with store.write() as session:
        assert retiring.remove_drained(session) == []  # its failed entity still retries
        session.execute(text("UPDATE sync_entities SET status = 'synced' WHERE entity_id='9001'"))
    with store.write() as session:
        assert retiring.remove_drained(session) == [TEAM]
        assert retiring.remove_drained(session) == []  # a second runtime: nothing left
    with store.read() as session:
        assert session.get(WorkspaceBinding, TEAM) is None
        shown = status.by_workspace(session, bindings.kinds(session, store_settings()))
    assert TEAM not in shown, shown  # only delivered entities left: not listed
    assert service.create(TEAM, None, None)["name"] == TEAM


def test_the_drain_waits_for_discovery_past_the_deletion(store: Database) -> None:
    service = WorkspaceService(store)
    service.create(TEAM, None, None)
    with store.write() as session:
        bindings.bind(session, TEAM, A_URI)
        session.execute(
            text(
                "INSERT INTO sync_outbox (created_at, entity_type, entity_id, op, payload)"
                " VALUES (1, 'experiment', '9002', 'experiment_create', '{}')"
            )
        )
    service.delete(TEAM, "RESTRICT")
    with store.write() as session:
        assert retiring.remove_drained(session) == []  # that row is not on an entity yet
    _discover(store)
    with store.write() as session:
        assert retiring.remove_drained(session) == [TEAM]


def test_an_unbound_workspace_binding_goes_with_it(store: Database) -> None:
    service = WorkspaceService(store)
    service.create(TEAM, None, None)
    with store.write() as session:
        bindings.bind(session, TEAM, A_URI)
        bindings.unbind(session, TEAM)
    service.delete(TEAM, "CASCADE")
    with store.read() as session:
        assert session.get(WorkspaceBinding, TEAM) is None
    assert service.create(TEAM, None, None)["name"] == TEAM


def store_settings() -> Settings:
    return Settings(azureml_workspace=None)
