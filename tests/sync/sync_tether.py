"""A Tether store written through its services, with a sync worker on it (the `tether`
fixture of the sync tests), against the stand-in workspace."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select, update

from support import unique_name
from tether.app import Services, build_services
from tether.config import Settings
from tether.db import migrate
from tether.db.engine import Database
from tether.db.models import Metric, SyncEntity
from tether.sync import state, status
from tether.sync.runtime import connect, worker_config
from tether.sync.state import Key
from tether.sync.worker import SyncWorker
from tether.tracking.runs.service import MetricIn

if TYPE_CHECKING:
    from standin.identity import ManagedIdentityEndpoint
    from standin.workspace import AzuremlWorkspace


@dataclass
class Tether:
    """A store written through Tether's services, and a sync worker on it."""

    db: Database
    services: Services
    worker: SyncWorker
    ws: AzuremlWorkspace

    def drain(self, timeout: float = 60.0) -> dict[str, int]:
        return self.worker.drain(timeout_s=timeout)

    def experiment(self, name: str | None = None, tags: dict[str, str] | None = None) -> str:
        return self.services.experiments.create(
            name or unique_name(), "", list((tags or {}).items())
        )

    def run(self, experiment: str, tags: dict[str, str] | None = None, name: str = "r") -> str:
        created = self.services.runs.create(
            experiment_id=experiment,
            user_id="alice",
            start_time=1_700_000_000_000,
            run_name=name,
            tags=list((tags or {}).items()),
        )
        run_id: str = created["info"]["run_id"]
        return run_id

    def log(self, run_id: str, n: int, key: str = "loss", start: int = 0) -> None:
        for first in range(start, start + n, 1000):  # the API's 1000-points-per-batch limit
            points = [
                MetricIn(key, i / 7, 1_700_000_000_000 + i, i)
                for i in range(first, min(start + n, first + 1000))
            ]
            self.services.runs.log_batch(run_id, points, [], [])

    def entity(self, key: Key) -> SyncEntity:
        with self.db.read() as session:
            row = state.get(session, key)
            assert row is not None
            return row

    def detail(self, key: Key) -> dict[str, Any]:
        with self.db.read() as session:
            body = status.entity_detail(session, key)
        assert body is not None
        return body

    def azure_id(self, key: Key) -> str:
        azure_id = self.entity(key).azure_id
        assert azure_id is not None
        return azure_id

    def rewind(self, key: Key) -> None:
        """Every outbox row of `key` due again, as after a kill -9 between an Azure call's
        effect and the cursor commit."""
        with self.db.write() as session:
            session.execute(
                update(SyncEntity)
                .where(
                    SyncEntity.entity_type == key.entity_type,
                    SyncEntity.entity_id == key.entity_id,
                )
                .values(cursor=0, status="pending", next_attempt_at=0)
            )

    def metric_ids(self, run_id: str) -> list[int]:
        with self.db.read() as session:
            return list(
                session.scalars(select(Metric.id).filter_by(run_uuid=run_id).order_by(Metric.id))
            )

    def put_file(self, run_id: str, path: str, data: bytes) -> str:
        """Store `data` as the run's artifact `path`, as the artifact proxy does."""
        artifacts = self.services.artifacts

        async def put() -> str:
            store_path = artifacts.resolve(await artifacts.run_artifact_uri(run_id), path)
            await artifacts.upload(store_path, _chunks(data))
            return store_path

        return asyncio.run(put())

    def delete_file(self, run_id: str, path: str) -> None:
        artifacts = self.services.artifacts

        async def delete() -> None:
            await artifacts.delete(
                artifacts.resolve(await artifacts.run_artifact_uri(run_id), path)
            )

        asyncio.run(delete())


async def _chunks(data: bytes, size: int = 1 << 20) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@contextmanager
def open_tether(
    tmp_path: Path,
    azureml_workspace: AzuremlWorkspace,
    azureml_identity: ManagedIdentityEndpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Tether]:
    for name, value in {**azureml_identity.env, **azureml_workspace.env}.items():
        monkeypatch.setenv(name, value)
    settings = Settings(
        backend_store_uri=f"sqlite:///{tmp_path / 'tether.db'}",
        artifacts_destination=str(tmp_path / "artifacts"),
        azureml_workspace=azureml_workspace.arm_id,  # host discovered through ARM
        azureml_arm_endpoint=azureml_workspace.arm_endpoint,
        sync_backoff_base_seconds=0.05,
        sync_backoff_max_seconds=0.4,
        sync_poll_seconds=0.1,
        sync_linger_ms=300,  # the linger's logic, not its default length: tests stay quick
    )
    db, services = build_services(settings)
    migrate.upgrade(db)
    services.experiments.ensure_default_experiment()
    worker = SyncWorker(
        db, connect(settings), worker_config(settings), artifacts=services.artifacts.backend
    )
    try:
        yield Tether(db, services, worker, azureml_workspace)
    finally:
        worker.close()
        db.dispose()
