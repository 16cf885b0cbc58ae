"""`GET /ready`: can this process take writes? (`/health` only says it is alive.)

Ready means the database answers and the artifact store can be written. The Azure ML sync is
reported but never makes the server unready: writes are acknowledged locally and wait in
the outbox while the workspace is unreachable, by design.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.engine import make_url

from tether.db.engine import Database
from tether.observability.redact import redact
from tether.ops import schemas
from tether.storage.base import ArtifactBackend
from tether.storage.routed import RoutedBackend
from tether.sync import status
from tether.sync.runtime import BackgroundSync
from tether.threads import blocking


class Readiness:
    def __init__(
        self,
        db: Database,
        artifacts: ArtifactBackend | None,
        sync: Callable[[], BackgroundSync | None],
        *,
        timeout: float,
    ) -> None:
        self.db = db
        self.artifacts = artifacts  # None: artifacts are not served by this server
        self.sync = sync
        self.timeout = timeout
        # One probe of each kind in flight at a time: a hanging database must not collect a
        # thread per probe.
        self._database_probe: asyncio.Future[None] | None = None
        self._artifact_probe: asyncio.Future[None] | None = None

    async def report(self) -> tuple[bool, schemas.Readiness]:
        database, artifacts = await asyncio.gather(self.database(), self.artifact_store())
        ready = bool(database["ok"] and artifacts["ok"])
        body: schemas.Readiness = {
            "status": "ready" if ready else "unavailable",
            "database": database,
            "artifacts": artifacts,
            "sync": await self.sync_state(database_ok=bool(database["ok"])),
        }
        return ready, body

    async def database(self) -> schemas.DatabaseProbe:
        dialect: Literal["sqlite", "postgresql"] = "sqlite" if self.db.is_sqlite else "postgresql"
        if self._database_probe is None or self._database_probe.done():
            self._database_probe = _probe(blocking(self._select_one))
        return {"dialect": dialect, **await self._timed(self._database_probe)}

    def _select_one(self) -> None:
        if self.db.is_sqlite:
            # Pooled connections keep a deleted database file open and still answer: the
            # file itself must be there for the next connection (and the next start).
            database = make_url(self.db.url).database
            if database and database != ":memory:" and not Path(database).is_file():
                raise FileNotFoundError(f"SQLite database file {database} is missing")
        with self.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    async def artifact_store(self) -> schemas.ArtifactProbe:
        backend = self.artifacts
        if backend is None:
            return {"ok": True, "served": False}
        if self._artifact_probe is None or self._artifact_probe.done():
            self._artifact_probe = _probe(backend.check())
        # The server store's kind: the routing layer over it (workspaces' own destinations)
        # is not a kind of store, and one team's destination never makes the server unready.
        store = backend.server if isinstance(backend, RoutedBackend) else backend
        return {
            "served": True,
            "backend": type(store).__name__,
            **await self._timed(self._artifact_probe),
        }

    async def _timed(self, probe: Awaitable[None]) -> schemas.ProbeResult:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(asyncio.shield(probe), self.timeout)
        except TimeoutError:
            return {"ok": False, "error": f"no answer within {self.timeout:g} s"}
        except Exception as exc:
            return {"ok": False, "error": _reason(exc)}
        return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}

    async def sync_state(self, *, database_ok: bool) -> schemas.SyncReadiness:
        background = self.sync()
        if background is None or not background.enabled:  # nothing bound: all kept local
            return {"enabled": False}
        state = azureml_reachability(background)
        if database_ok:
            try:
                snap = await asyncio.wait_for(blocking(self._snapshot), self.timeout)
            except Exception as exc:
                state["queue_error"] = _reason(exc)
            else:
                state.update(
                    {
                        "pending": snap.total("pending"),
                        "in_flight": snap.total("in_flight"),
                        "failed": snap.total("failed"),
                        "dead": snap.total("dead"),
                        "oldest_pending_age_seconds": snap.lag_seconds,
                    }
                )
        return state

    def _snapshot(self) -> status.QueueSnapshot:
        with self.db.read() as session:
            return status.queue(session)


def azureml_reachability(background: BackgroundSync) -> schemas.SyncReadiness:
    """Judged from this process's worker: its last workspace call, or its failure to connect."""
    worker = background.worker
    if worker is None:
        error = background.connect_error
        return {
            "enabled": True,
            "azureml_reachable": False if error else None,  # None: still connecting
            "last_error": redact(error) if error else None,
        }
    stats = worker.api.client.stats
    reachable: bool | None = None
    if stats.last_unreachable_at is not None and (
        stats.last_answer_at is None or stats.last_unreachable_at > stats.last_answer_at
    ):
        reachable = False
    elif stats.last_answer_at is not None:
        reachable = True
    last_error = worker.stats.last_error or (None if reachable else stats.last_unreachable)
    return {
        "enabled": True,
        "azureml_reachable": reachable,
        "last_error": redact(last_error) if last_error else None,
    }


def _probe(check: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
    future = asyncio.ensure_future(check)
    # A probe that outlived its callers' timeout may fail with nobody awaiting it: its
    # outcome is retrieved here so asyncio does not log it as lost.
    future.add_done_callback(lambda done: done.cancelled() or done.exception())
    return future


def _reason(exc: BaseException) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return redact(f"{type(exc).__name__}: {first_line}"[:500])
