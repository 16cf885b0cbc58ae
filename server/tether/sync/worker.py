"""The sync loop: discover entities, lease one, apply its outbox rows in order, release.

One row at a time: the handler makes its Azure calls, then the cursor (with any new id
mapping, state and report) is committed in one transaction, so a crash re-applies at most
that row, and the handlers make re-applying it harmless (source-id search before a run is
created again, the metric high-water mark, idempotent tags and params).

Failures decide the entity's fate (see `state`): transient -> `failed` with backoff (and, for
429/503, a short pause of the whole worker: the workspace is throttling everyone), permanent
(an Azure refusal, or an outbox row this version cannot decode: `handlers.base.Route`) ->
`dead`, a dependency not yet in Azure -> back to `pending` until it is.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tether.clock import now_ms
from tether.db.engine import Database
from tether.db.models import OutboxEntry
from tether.db.outbox import reader
from tether.observability import events
from tether.storage.base import ArtifactBackend
from tether.sync import discovery, state, status
from tether.sync.azureml.blob import BlobStore
from tether.sync.azureml.errors import PermanentError, TransientError
from tether.sync.azureml.mlflow_api import AzureMLflow
from tether.sync.files import Files
from tether.sync.handlers import (
    experiments,
    logged_models,
    model_versions,
    registered_models,
    run_artifacts,
    runs,
)
from tether.sync.handlers.base import Blocked, Context, Deferred, Route
from tether.sync.sources import rows_of
from tether.sync.state import Backoff, Claimed, LeaseLost

log = logging.getLogger("tether.sync")

# Per sync entity type (`sources`): how its rows are decoded, and its handler.
ROUTES: dict[str, Route[Any]] = {
    "experiment": Route(reader.EXPERIMENT, experiments.apply),
    "run": Route(reader.RUN, runs.apply),
    "run_artifacts": Route(reader.RUN_FILES, run_artifacts.apply),
    "logged_model": Route(reader.LOGGED_MODEL, logged_models.apply),
    "registered_model": Route(reader.REGISTERED_MODEL, registered_models.apply),
    "model_version": Route(reader.MODEL_VERSION, model_versions.apply),
}
_ROWS_PER_READ = 100


@dataclass(frozen=True)
class WorkerConfig:
    lease_ms: int = 60_000  # renewed by a heartbeat while the entity is worked
    lookback_ms: int = 60_000  # see discovery: the longest an outbox append may take to commit
    poll_s: float = 1.0
    slice_ms: int = 10_000  # then the entity goes back so others get a turn
    defer_ms: int = 1_000
    backoff: Backoff = field(default_factory=Backoff)


@dataclass
class WorkerStats:
    rows_applied: int = 0
    entities_synced: int = 0
    transient_failures: int = 0
    dead_letters: int = 0
    deferrals: int = 0
    last_error: str | None = None


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SyncWorker:
    def __init__(
        self,
        db: Database,
        api: AzureMLflow,
        config: WorkerConfig | None = None,
        *,
        owner: str | None = None,
        artifacts: ArtifactBackend | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.db = db
        self.api = api
        self.files = Files(artifacts)
        self.blobs = BlobStore()
        self.config = config or WorkerConfig()
        self.owner = owner or new_owner()
        self.stats = WorkerStats()
        # Shared with whoever cuts the worker's waits short (BackgroundSync): a wait ended by
        # stop() then always finds it set, and gives its entity back unchanged.
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self.pause_until = 0.0
        self._throttle_streak = 0
        self._last_discovery = 0.0

    # One unit of work ---------------------------------------------------------------------

    def discover(self, *, force: bool = False) -> int:
        if not force and time.monotonic() - self._last_discovery < self.config.poll_s:
            return 0
        self._last_discovery = time.monotonic()
        with self.db.write() as session:
            return discovery.discover(session, lookback_ms=self.config.lookback_ms)

    def paused_for(self) -> float:
        """Seconds left of a workspace-wide pause after throttling (429/503)."""
        return max(0.0, self.pause_until - time.monotonic())

    def step(self) -> bool:
        """Claim one due entity and work it; False when there was nothing to claim."""
        if self.paused_for() > 0:
            return False
        with self.db.write() as session:
            claimed = state.claim(session, self.owner, self.config.lease_ms)
        if claimed is None:
            return False
        self._work(claimed)
        return True

    def _work(self, work: Claimed) -> None:
        heartbeat = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(work.key, heartbeat), daemon=True)
        beat.start()
        try:
            self._apply_rows(work)
        finally:
            heartbeat.set()
            beat.join()

    def _heartbeat(self, key: state.Key, done: threading.Event) -> None:
        """Keep the lease while a slow call (timeouts, in-call retries) runs: it can then stay
        short, so a killed worker's entities are taken over quickly."""
        while not done.wait(self.config.lease_ms / 3000):
            try:
                with self.db.write() as session:
                    if not state.renew(session, key, self.owner, self.config.lease_ms):
                        return
            except Exception:  # the next guarded commit will tell
                log.warning("sync: cannot renew the lease on %s", key, exc_info=True)

    def _apply_rows(self, work: Claimed) -> None:
        ctx = Context(
            self.api,
            self.db,
            work,
            lambda: self._checkpoint(work),
            self.config.defer_ms,
            files=self.files,
            blobs=self.blobs,
        )
        route = ROUTES[work.key.entity_type]
        deadline = time.monotonic() + self.config.slice_ms / 1000
        try:
            while True:
                rows = self._rows_after(work)
                if not rows:
                    with self.db.write() as session:
                        if state.finish(session, work, self.owner) == state.SYNCED:
                            self.stats.entities_synced += 1
                            events.count("sync_entities_synced", work.key.entity_type)
                    return
                for row_id, op, payload in rows:
                    if self.stop_event.is_set() or time.monotonic() > deadline:
                        with self.db.write() as session:
                            state.release(session, work.key, self.owner)
                        return
                    ctx.reports = []
                    route(ctx, row_id, op, payload)  # a row that does not decode: dead letter
                    with self.db.write() as session:
                        state.advance(
                            session,
                            work,
                            self.owner,
                            self.config.lease_ms,
                            cursor=row_id,
                            reports=[(r, row_id) for r in ctx.reports],
                        )
                    self.stats.rows_applied += 1
                    events.count("sync_rows_applied", work.key.entity_type)
                    self._throttle_streak = 0
        except LeaseLost as exc:
            log.warning("sync: %s; another worker continues", exc)
        except Exception as exc:  # every failure ends as a state of the entity
            if isinstance(exc, TransientError) and self.stop_event.is_set():
                with self.db.write() as session:  # cut short by stop(): give it back unchanged
                    state.release(session, work.key, self.owner)
            else:
                self._record_failure(work, exc)

    def _record_failure(self, work: Claimed, exc: Exception) -> None:
        key = work.key
        try:
            with self.db.write() as session:
                if isinstance(exc, Deferred):
                    self.stats.deferrals += 1
                    events.count("sync_deferrals", key.entity_type)
                    state.defer(session, key, self.owner, str(exc.waiting_on), exc.until)
                elif isinstance(exc, PermanentError):
                    self.stats.dead_letters += 1
                    events.count("sync_dead_letters", key.entity_type)
                    self.stats.last_error = f"{key}: {exc.reason}"
                    waiting = str(exc.waiting_on) if isinstance(exc, Blocked) else None
                    state.dead(session, key, self.owner, exc.reason, waiting_on=waiting)
                    log.error("sync: %s is dead: %s", key, exc.reason)
                else:
                    self._transient(session, key, exc)
        except LeaseLost as lost:
            log.warning("sync: %s; another worker continues", lost)

    def _transient(self, session: Session, key: state.Key, exc: Exception) -> None:
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        if isinstance(exc, TransientError):
            reason = exc.reason
            if exc.status in (429, 503):
                self._throttle_streak += 1
                pause = min(60.0, 0.5 * 2**self._throttle_streak)
                pause = retry_after if retry_after is not None else pause
                self.pause_until = time.monotonic() + pause
        else:
            reason = f"unexpected {type(exc).__name__}: {exc}"
            log.exception("sync: unexpected failure on %s", key)
        self.stats.transient_failures += 1
        events.count("sync_failures", key.entity_type)
        self.stats.last_error = f"{key}: {reason}"
        due = state.fail(
            session,
            key,
            self.owner,
            reason,
            retry_after_s=retry_after,
            backoff=self.config.backoff,
        )
        log.info("sync: %s failed (%s); next attempt in %d ms", key, reason, due - now_ms())

    def _checkpoint(self, work: Claimed) -> None:
        with self.db.write() as session:
            state.save_progress(session, work, self.owner, self.config.lease_ms)

    def _rows_after(self, work: Claimed) -> list[tuple[int, str, str]]:
        """The next rows to apply: (id, op, payload JSON), decoded one by one as applied."""
        with self.db.read() as session:
            rows = session.execute(
                select(OutboxEntry.id, OutboxEntry.op, OutboxEntry.payload)
                .where(
                    rows_of(work.key.entity_type, work.key.entity_id),
                    OutboxEntry.id > work.cursor,
                )
                .order_by(OutboxEntry.id)
                .limit(_ROWS_PER_READ)
            ).all()
        return [(i, op, payload) for i, op, payload in rows]

    # Loops --------------------------------------------------------------------------------

    def run_forever(self) -> None:
        """The background loop of `tether serve`, until `stop_event` is set."""
        log.info("sync: worker %s started", self.owner)
        while not self.stop_event.is_set():
            try:
                self.discover()
                if not self.step():
                    self.stop_event.wait(self.paused_for() or self.config.poll_s)
            except Exception:  # the database may be briefly unreachable: keep going
                log.exception("sync: worker loop error")
                self.stop_event.wait(self.config.poll_s)
        self.release_all()
        self.close()
        log.info("sync: worker %s stopped", self.owner)

    def close(self) -> None:
        """Close the artifact store's and storage's connections (after the last step)."""
        self.files.close()
        self.blobs.close()

    def release_all(self) -> None:
        with self.db.write() as session:
            state.release_owner(session, self.owner)

    def drain(self, *, timeout_s: float | None = None, wait_ms: int = 5_000) -> dict[str, int]:
        """`tether sync run`: work until nothing is due within `wait_ms` (short deferrals and
        backoffs are waited out, longer ones end the drain); returns the final counts."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self.discover(force=True)
        try:
            while not self.stop_event.is_set():
                if deadline is not None and time.monotonic() > deadline:
                    break
                self.discover()
                if self.step():
                    continue
                if self.paused_for() * 1000 > wait_ms:
                    break  # throttled for longer than we wait: retry later
                self.discover(force=True)
                with self.db.read() as session:
                    if discovery.caught_up(session) and status.due_soon(session, wait_ms) == 0:
                        break
                self.stop_event.wait(self.paused_for() or min(self.config.poll_s, 0.2))
        finally:
            self.release_all()
        with self.db.read() as session:
            counts: dict[str, int] = status.summary(session)["entities"]
        return counts


def drain_exit_code(counts: dict[str, int]) -> int:
    """0: everything synced; 4: dead letters need `tether sync retry`; 3: retry later."""
    if counts.get("dead"):
        return 4
    if any(counts.get(b) for b in ("pending", "failed", "in_flight")):
        return 3
    return 0
