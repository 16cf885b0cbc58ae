"""The sync loop: discover entities; lanes lease them, deliver their outbox rows, release.

`WorkerConfig.concurrency` lanes (threads) per process each work one entity at a time, so a
run waiting out a `Retry-After`, a large artifact or a slow call holds up only its own lane.
Order within an entity is its outbox order; order between entities is kept by the handlers
(an entity whose dependency is not in Azure yet is `Deferred`, or `Blocked` when it is dead):
experiments before their runs, parents before children, a run before its files and model
versions. On PostgreSQL several processes share the entities through the same leases. Every
lane's requests go through the Azure client's one `Throttle`: throttling seen by one lane
slows all of them.

A run's rows are delivered together (`handlers.run_data`: coalesced data, barriers in order,
the linger); every other entity's one at a time, its cursor committed after each. Progress is
committed after every request (`Context.checkpoint`): a crash repeats at most one request,
and the handlers make repeating it harmless (source-id search before a run is created again,
the metric high-water mark and in-doubt check, idempotent tags and params).

Failures decide the entity's fate (see `state`), always after what it delivered so far is
committed: transient -> `failed` with backoff, permanent (an Azure refusal, or an outbox row
this version cannot decode: `handlers.base.Route`) -> `dead`, a dependency not yet in Azure ->
back to `pending` until it is, a partial batch lingering -> `pending` until the linger ends.
While a call retries inside the Azure client (503/429 with `Retry-After`: up to ~30 s), the
entity's failing reason is recorded as soon as an attempt fails (`state.note_retry`), at most
once per `_NOTE_RETRY_EVERY_S` per entity, so the status shows an outage at once.

Recovery (a circuit breaker): a failure that says the workspace is down or throttling (no
answer, 408, 429, 5xx) marks it *down*; while it is, an idle lane probes it (one cheap read,
every `WorkerConfig.probe_s`). The first call that gets through (the probe, or any entity's
delivery) closes the breaker: the workspace's entities backing off become due at once
(`state.wake_backed_off`) instead of sitting out backoffs grown during a long outage. The
lanes then claim them one at a time and every request goes through the shared throttle
(AIMD window, hold and probe), so recovery is fast without a burst beyond what it admits.
"""

from __future__ import annotations

import bisect
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from tether.clock import now_ms
from tether.db.engine import Database
from tether.db.models import OutboxEntry
from tether.db.models.workspaces import DEFAULT_WORKSPACE
from tether.db.outbox import reader
from tether.observability import events
from tether.storage.base import ArtifactBackend
from tether.sync import delivery, discovery, state, status
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
    run_data,
    uploads,
)
from tether.sync.handlers.base import Blocked, Context, Deferred, Lingering, Route
from tether.sync.handlers.run_data import OutboxRow
from tether.sync.sources import rows_of
from tether.sync.state import Backoff, Claimed, LeaseLost

log = logging.getLogger("tether.sync")

# Per sync entity type but runs (`run_data`): how its rows are decoded, and its handler.
ROUTES: dict[str, Route[Any]] = {
    "experiment": Route(reader.EXPERIMENT, experiments.apply),
    "run_artifacts": Route(reader.RUN_FILES, run_artifacts.apply),
    "logged_model": Route(reader.LOGGED_MODEL, logged_models.apply),
    "registered_model": Route(reader.REGISTERED_MODEL, registered_models.apply),
    "model_version": Route(reader.MODEL_VERSION, model_versions.apply),
}
_ROWS_PER_READ = 500
# A retried attempt's reason is written at most this often per entity: the first at once (what
# an operator watching the status needs), the rest would only rewrite the same row.
_NOTE_RETRY_EVERY_S = 5.0
# Failures that say the workspace (not the entity) is down: no answer (status None), timeouts,
# server errors, none with a Retry-After (throttling is the throttle's business, and a
# Retry-After is honoured to its end). A 401/403 or a missing local file says nothing of it.
_OUTAGE_STATUS = frozenset({None, 408, 500, 502, 503, 504})
_PROBE_EXPERIMENT = "Default"  # a read any workspace answers (None when it has no such one)


@dataclass(frozen=True)
class WorkerConfig:
    lease_ms: int = 60_000  # renewed by a heartbeat while the entity is worked
    lookback_ms: int = 60_000  # see discovery: the longest an outbox append may take to commit
    poll_s: float = 1.0
    slice_ms: int = 10_000  # then the entity goes back so others get a turn
    defer_ms: int = 1_000
    linger_ms: int = 1_000  # see handlers.run_data
    concurrency: int = 8  # lanes: entities worked at the same time by this process
    backoff: Backoff = field(default_factory=Backoff)
    # While the workspace is down: how often an idle lane asks whether it is back (one read).
    probe_s: float = 10.0


@dataclass
class WorkerStats:
    rows_applied: int = 0
    entities_synced: int = 0
    transient_failures: int = 0
    dead_letters: int = 0
    deferrals: int = 0
    lingers: int = 0
    points_delivered: int = 0
    last_error: str | None = None


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class _Lease:
    """One claim being worked by a lane."""

    work: Claimed
    owner: str
    ctx: Context
    requests_mark: int  # the lane's request count when last committed
    rows_read: list[int] = field(default_factory=list)
    retry_noted_at: float = float("-inf")  # monotonic: when a retried attempt was last recorded


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
        workspace: str | None = None,
        discovers: bool = True,
    ) -> None:
        self.db = db
        self.api = api
        # The MLflow workspace whose entities this worker delivers (None: every entity, for a
        # store without bindings). `discovers` false: someone else (the runtime) discovers
        # and wakes this worker (`wake`).
        self.workspace = workspace
        self.discovers = discovers
        self.files = Files(artifacts)
        self.blobs = BlobStore()
        self.config = config or WorkerConfig()
        self.owner = owner or new_owner()
        # One lease owner per lane: a lane never mistakes another lane's lease for its own.
        self.lane_owners = [f"{self.owner}/{i}" for i in range(max(1, self.config.concurrency))]
        self.stats = WorkerStats()
        # Shared with whoever cuts the worker's waits short (BackgroundSync): a wait ended by
        # stop() then always finds it set, and gives its entity back unchanged.
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self.throttle = api.client.throttle
        self._last_discovery = 0.0
        self._stats_lock = threading.Lock()
        self._wake = threading.Condition()
        self._next_due = float("inf")  # monotonic: when an entity put back here is due again
        self._busy = 0
        # The breaker: monotonic time the workspace was seen down (None: up), next probe.
        self._down_since: float | None = None
        # Entities Azure told to come back later (Retry-After) -> until (epoch ms): the
        # breaker closing leaves them be. In memory: another process's are not known here.
        self._told_to_wait: dict[state.Key, int] = {}
        self._next_probe = 0.0
        self._probing = False

    # One unit of work ---------------------------------------------------------------------

    def discover(self, *, force: bool = False) -> int:
        if not force and time.monotonic() - self._last_discovery < self.config.poll_s:
            return 0
        self._last_discovery = time.monotonic()
        with self.db.write() as session:
            found = discovery.discover(session, lookback_ms=self.config.lookback_ms)
        if found:
            self._notify()
        return found

    def paused_for(self) -> float:
        """Seconds left of a workspace-wide hold after throttling (429/503)."""
        return self.throttle.paused_for()

    def step(self, lane: int = 0) -> bool:
        """Claim one due entity and work it; False when there was nothing to claim."""
        if self.paused_for() > 0:
            return False
        owner = self.lane_owners[lane]
        with self.db.write() as session:
            claimed = state.claim(session, owner, self.config.lease_ms, workspace=self.workspace)
        if claimed is None:
            return False
        self._notify()  # there was work: another idle lane may find more
        with self._wake:
            self._busy += 1
        try:
            self._work(claimed, owner)
        finally:
            with self._wake:
                self._busy -= 1
        return True

    def _work(self, work: Claimed, owner: str) -> None:
        deadline = time.monotonic() + self.config.slice_ms / 1000
        ctx = Context(
            self.api,
            self.db,
            work,
            lambda: self._checkpoint(lease),
            self.config.defer_ms,
            files=self.files,
            blobs=self.blobs,
            linger_ms=self.config.linger_ms,
            should_yield=lambda: self.stop_event.is_set() or time.monotonic() > deadline,
        )
        lease = _Lease(work, owner, ctx, self.api.client.thread_requests())
        started = lease.requests_mark
        try:
            with self.api.client.observing(lambda reason: self._note_retry(lease, reason)):
                if work.key.entity_type == "run" and uploads.run_gone(ctx, work.key.entity_id):
                    done = self._settle_gone_run(lease)
                elif work.key.entity_type == "run":
                    done = run_data.deliver(ctx, self._read(lease))
                else:
                    done = self._apply_rows(lease)
            with self.db.write() as session:
                self._commit(session, lease)
                if not done:
                    state.release(session, work.key, owner)
                elif state.finish(session, work, owner) == state.SYNCED:
                    self._count("entities_synced")
                    events.count("sync_entities_synced", work.key.entity_type)
            if self.api.client.thread_requests() > started:  # Azure answered this entity
                self._workspace_up()
        except LeaseLost as exc:
            log.warning("sync: %s; another worker continues", exc)
        except Exception as exc:  # every failure ends as a state of the entity
            self._record_failure(lease, exc)
        finally:
            delivered = bisect.bisect_right(lease.rows_read, work.cursor)
            if delivered:
                self._count("rows_applied", delivered)
                events.count("sync_rows_applied", work.key.entity_type, delivered)

    def _apply_rows(self, lease: _Lease) -> bool:
        """Every entity but runs: one row at a time, its cursor committed after each."""
        work, ctx = lease.work, lease.ctx
        route = ROUTES[work.key.entity_type]
        for row in self._read(lease):
            if ctx.should_yield():
                return False
            ctx.row_id = row.id
            route(ctx, row.id, row.op, row.payload)  # a row that does not decode: dead letter
            work.cursor = row.id
            self._checkpoint(lease)
        return True

    def _settle_gone_run(self, lease: _Lease) -> bool:
        """A run no longer in Tether (hard-deleted: its workspace deleted with CASCADE) has its
        rows left settled as `skipped`, not sent: its experiment's deletion (also in the
        outbox) deletes it in Azure ML, and a row sent after that is refused there (the run or
        experiment is deleted), which would leave it dead forever and its workspace's drain
        (tether.sync.retiring) stuck. Settled once, with one report naming how many."""
        work, ctx = lease.work, lease.ctx
        rows = [row.id for row in self._read(lease)]
        if not rows:
            return True
        ctx.row_id = rows[-1]
        ctx.report(
            "skipped",
            "run",
            f"the run was deleted from Tether (with its workspace) before {len(rows)} "
            "change(s) of it were delivered",
        )
        work.cursor = rows[-1]
        self._checkpoint(lease)
        return True

    def _read(self, lease: _Lease) -> Iterator[OutboxRow]:
        """The entity's rows after its cursor, in id order, read a page at a time."""
        key = lease.work.key
        after = lease.work.cursor
        while True:
            with self.db.read() as session:
                page = session.execute(
                    select(OutboxEntry.id, OutboxEntry.created_at, OutboxEntry.op)
                    .add_columns(OutboxEntry.payload)
                    .where(rows_of(key.entity_type, key.entity_id), OutboxEntry.id > after)
                    .order_by(OutboxEntry.id)
                    .limit(_ROWS_PER_READ)
                ).all()
            for row_id, created_at, op, payload in page:
                lease.rows_read.append(row_id)
                yield OutboxRow(row_id, created_at, op, payload)
            if len(page) < _ROWS_PER_READ:
                return
            after = page[-1][0]

    # Progress -----------------------------------------------------------------------------

    def _checkpoint(self, lease: _Lease) -> None:
        with self.db.write() as session:
            self._commit(session, lease)

    def _commit(self, session: Any, lease: _Lease) -> None:
        """What the entity delivered so far (and the delivery figures), in `session`."""
        ctx, work = lease.ctx, lease.work
        requests = self.api.client.thread_requests()
        sent, lease.requests_mark = requests - lease.requests_mark, requests
        points, ctx.points = ctx.points, 0
        delivery.record(work.state, now_ms(), points=points, requests=sent)
        state.commit(session, work, lease.owner, self.config.lease_ms, reports=ctx.take_reports())
        if points:
            self._count("points_delivered", points)
            events.count("sync_points_delivered", work.key.entity_type, points)
        if sent:
            events.count("sync_requests", work.key.entity_type, sent)

    def _note_retry(self, lease: _Lease, reason: str) -> None:
        """The lane's call failed an attempt and retries: show why (throttled per entity)."""
        if time.monotonic() - lease.retry_noted_at < _NOTE_RETRY_EVERY_S:
            return
        lease.retry_noted_at = time.monotonic()
        self.stats.last_error = f"{lease.work.key}: retrying: {reason}"
        with self.db.write() as session:
            state.note_retry(session, lease.work.key, lease.owner, reason)

    def _record_failure(self, lease: _Lease, exc: Exception) -> None:
        work, owner = lease.work, lease.owner
        key = work.key
        stopping = isinstance(exc, TransientError) and self.stop_event.is_set()
        try:
            with self.db.write() as session:
                self._commit(session, lease)  # what was delivered before the failure stays
                if stopping:  # cut short by stop(): give it back, nothing else changes
                    state.release(session, key, owner)
                elif isinstance(exc, Lingering):
                    self._count("lingers")
                    state.linger(session, key, owner, exc.until)
                    self._due_at(exc.until)
                elif isinstance(exc, Deferred):
                    self._count("deferrals")
                    events.count("sync_deferrals", key.entity_type)
                    state.defer(session, key, owner, str(exc.waiting_on), exc.until)
                    self._due_at(exc.until)
                elif isinstance(exc, PermanentError):
                    self._count("dead_letters")
                    events.count("sync_dead_letters", key.entity_type)
                    self.stats.last_error = f"{key}: {exc.reason}"
                    waiting = str(exc.waiting_on) if isinstance(exc, Blocked) else None
                    state.dead(session, key, owner, exc.reason, waiting_on=waiting)
                    log.error("sync: %s is dead: %s", key, exc.reason)
                else:
                    self._transient(session, key, owner, exc)
        except LeaseLost as lost:
            log.warning("sync: %s; another worker continues", lost)

    def _transient(self, session: Any, key: state.Key, owner: str, exc: Exception) -> None:
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        if isinstance(exc, TransientError):
            reason = exc.reason
        else:
            reason = f"unexpected {type(exc).__name__}: {exc}"
            log.exception("sync: unexpected failure on %s", key)
        self._count("transient_failures")
        events.count("sync_failures", key.entity_type)
        if _says_down(exc):
            self._workspace_down()
        if retry_after is not None:
            with self._wake:
                if len(self._told_to_wait) > 1000:  # the breaker has not closed for long
                    self._told_to_wait = {
                        k: t for k, t in self._told_to_wait.items() if t > now_ms()
                    }
                self._told_to_wait[key] = now_ms() + int(retry_after * 1000)
        self.stats.last_error = f"{key}: {reason}"
        due = state.fail(
            session,
            key,
            owner,
            reason,
            retry_after_s=retry_after,
            backoff=self.config.backoff,
        )
        self._due_at(due)
        log.info("sync: %s failed (%s); next attempt in %d ms", key, reason, due - now_ms())

    # The breaker -----------------------------------------------------------------------------

    def _workspace_down(self) -> None:
        with self._wake:
            if self._down_since is None:
                self._down_since = time.monotonic()
                self._next_probe = self._down_since + self.config.probe_s

    def _workspace_up(self) -> None:
        """A call got through: if the workspace was down, what backs off is due now."""
        with self._wake:
            if self._down_since is None:
                return
            down_for, self._down_since = time.monotonic() - self._down_since, None
            now = now_ms()
            self._told_to_wait = {k: t for k, t in self._told_to_wait.items() if t > now}
            keep = list(self._told_to_wait)
        try:
            with self.db.write() as session:
                woken = state.wake_backed_off(session, self.workspace, keep=keep)
        except Exception:  # the database may be briefly unreachable: the backoffs run out
            log.warning("sync: cannot make the waiting entities due", exc_info=True)
            return
        log.info(
            "sync: the workspace answers again after %.0f s: %d waiting entities due now",
            down_for,
            woken,
        )
        with self._wake:
            self._wake.notify_all()

    def _probe(self) -> bool:
        """While the workspace is down, one idle lane at a time asks whether it is back, every
        `probe_s`; True if this lane probed."""
        with self._wake:
            due = self._down_since is not None and time.monotonic() >= self._next_probe
            if not due or self._probing:
                return False
            self._probing = True
            self._next_probe = time.monotonic() + self.config.probe_s
        try:
            self.api.get_experiment_by_name(_PROBE_EXPERIMENT)
        except TransientError as exc:
            log.info("sync: the workspace is still down: %s", exc.reason)
            return True
        except PermanentError:
            pass  # refused, but answered: the workspace is up
        finally:
            with self._wake:
                self._probing = False
        self._workspace_up()
        return True

    def _count(self, name: str, n: int = 1) -> None:
        with self._stats_lock:
            setattr(self.stats, name, getattr(self.stats, name) + n)

    # Lanes ----------------------------------------------------------------------------------

    def _notify(self) -> None:
        with self._wake:
            self._wake.notify()

    def wake(self) -> None:
        """New work may be due (discovery by the runtime found some)."""
        self._notify()

    def _due_at(self, until_ms: int) -> None:
        """An entity put back until `until_ms` (epoch): a lane looks again then."""
        due = time.monotonic() + max(0, until_ms - now_ms()) / 1000
        with self._wake:
            self._next_due = min(self._next_due, due)

    def _wake_due(self) -> float:
        """Wake a lane when a put-back entity is due; seconds until the next one (or inf)."""
        with self._wake:
            left = self._next_due - time.monotonic()
            if left <= 0:
                self._next_due = float("inf")
                self._wake.notify()
                return float("inf")
            return left

    def _lane(self, lane: int, done: threading.Event) -> None:
        events.set_thread_workspace(self.workspace or DEFAULT_WORKSPACE)
        while not (self.stop_event.is_set() or done.is_set()):
            try:
                paused = self.paused_for()
                if paused > 0 or not (self.step(lane) or self._probe()):
                    with self._wake:
                        self._wake.wait(min(self.config.poll_s, paused or self.config.poll_s))
            except Exception:  # the database may be briefly unreachable: keep going
                log.exception("sync: lane %d loop error", lane)
                self.stop_event.wait(self.config.poll_s)

    def _heartbeat(self, done: threading.Event) -> None:
        """Keep every lane's lease while a slow call (timeouts, in-call retries) runs: leases
        can then stay short, so a killed worker's entities are taken over quickly."""
        while not done.wait(self.config.lease_ms / 3000):
            try:
                with self.db.write() as session:
                    state.renew_all(session, self.lane_owners, self.config.lease_ms)
            except Exception:  # the next guarded commit will tell
                log.warning("sync: cannot renew the leases", exc_info=True)

    def _start_lanes(self, done: threading.Event) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._lane, args=(i, done), name=f"tether-sync-{i}")
            for i in range(len(self.lane_owners))
        ]
        beat = threading.Thread(target=self._heartbeat, args=(done,), name="tether-sync-beat")
        threads.append(beat)
        for thread in threads:
            thread.daemon = True
            thread.start()
        self._notify()
        return threads

    def _stop_lanes(self, done: threading.Event, threads: list[threading.Thread]) -> None:
        done.set()
        with self._wake:
            self._wake.notify_all()
        self.throttle.wake()
        for thread in threads:
            thread.join()

    # Loops --------------------------------------------------------------------------------

    def run_forever(self) -> None:
        """The background loop of `tether serve`, until `stop_event` is set."""
        log.info("sync: worker %s started (%d lanes)", self.owner, len(self.lane_owners))
        done = threading.Event()
        lanes = self._start_lanes(done)
        try:
            while not self.stop_event.is_set():
                try:
                    if self.discovers:
                        self.discover()
                except Exception:  # the database may be briefly unreachable: keep going
                    log.exception("sync: discovery error")
                self.stop_event.wait(min(self.config.poll_s, self._wake_due()))
        finally:
            self._stop_lanes(done, lanes)
            self.release_all()
            self.close()
        log.info("sync: worker %s stopped", self.owner)

    def close(self) -> None:
        """Close the artifact store's and storage's connections (after the last step)."""
        self.files.close()
        self.blobs.close()

    def release_all(self) -> None:
        with self.db.write() as session:
            state.release_owner(session, self.lane_owners)

    def drain(self, *, timeout_s: float | None = None, wait_ms: int = 5_000) -> dict[str, int]:
        """`tether sync run`: work until nothing is due within `wait_ms` (short deferrals,
        lingers and backoffs are waited out, longer ones end the drain); returns the final
        counts."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self.discover(force=True)
        done = threading.Event()
        lanes = self._start_lanes(done)
        try:
            while not self.stop_event.is_set():
                if deadline is not None and time.monotonic() > deadline:
                    break
                self.discover()
                if self.paused_for() * 1000 > wait_ms:
                    break  # throttled for longer than we wait: retry later
                if self._idle():
                    self.discover(force=True)
                    with self.db.read() as session:
                        finished = (
                            discovery.caught_up(session)
                            and status.due_soon(session, wait_ms, workspace=self.workspace) == 0
                        )
                    if finished and self._idle():
                        break
                self.stop_event.wait(min(self.config.poll_s, 0.1, self._wake_due()))
        finally:
            self._stop_lanes(done, lanes)
            self.release_all()
        with self.db.read() as session:
            if self.workspace is None:
                counts: dict[str, int] = status.summary(session)["entities"]
            else:
                counts = status.bucket_counts(session, [self.workspace])
        return counts

    def _idle(self) -> bool:
        with self._wake:
            return self._busy == 0


def _says_down(exc: Exception) -> bool:
    """A failure that is news about the workspace, not about the entity (`_OUTAGE_STATUS`)."""
    return (
        isinstance(exc, TransientError)
        and not isinstance(exc, uploads.Missing)
        and exc.status in _OUTAGE_STATUS
        and exc.retry_after is None
    )


def drain_exit_code(counts: dict[str, int]) -> int:
    """0: everything synced; 4: dead letters need `tether sync retry`; 3: retry later."""
    if counts.get("dead"):
        return 4
    if any(counts.get(b) for b in ("pending", "failed", "in_flight")):
        return 3
    return 0
