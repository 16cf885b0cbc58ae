"""Wiring: settings and bindings -> workspace clients -> workers, and the background threads of
`tether serve` (one worker per bound MLflow workspace)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict

from tether.config import Settings
from tether.db.engine import Database
from tether.db.models.workspaces import DEFAULT_WORKSPACE
from tether.observability import events
from tether.sync import bindings, destinations, retiring, state
from tether.sync.azureml.client import AzureMLClient, RetryPolicy
from tether.sync.azureml.errors import SyncError, TransientError
from tether.sync.azureml.mlflow_api import AzureMLflow
from tether.sync.azureml.throttle import Throttle
from tether.sync.azureml.workspace import parse_workspace_setting, resolve_workspace
from tether.sync.bindings import Target, server_target
from tether.sync.schemas import WorkerInfo
from tether.sync.state import Backoff
from tether.sync.worker import SyncWorker, WorkerConfig

log = logging.getLogger("tether.sync")
# How often `tether serve` re-reads the workspace bindings: a bind takes effect within this.
BINDINGS_POLL_SECONDS = 2.0


def worker_config(settings: Settings) -> WorkerConfig:
    return WorkerConfig(
        lease_ms=int(settings.sync_lease_seconds * 1000),
        lookback_ms=int(settings.sync_lookback_seconds * 1000),
        poll_s=settings.sync_poll_seconds,
        linger_ms=settings.sync_linger_ms,
        concurrency=settings.sync_concurrency,
        backoff=Backoff(
            base_ms=int(settings.sync_backoff_base_seconds * 1000),
            max_ms=int(settings.sync_backoff_max_seconds * 1000),
        ),
    )


def connect(
    settings: Settings, stop: threading.Event | None = None, target: Target | None = None
) -> AzureMLflow:
    """The workspace's MLflow API (`target`'s, else the server's `--azureml-workspace`); asks
    ARM for the host when the setting is an ARM id. Each call builds its own client: its own
    token provider (the binding's credential) and its own throttle, so one Azure workspace's
    throttling or outage never holds another's requests.

    With `stop`, a retry's wait ends (in a TransientError) as soon as it is set: shutdown does
    not sit out a backoff."""
    target = target or server_target(settings)
    if target is None:
        raise ValueError("no Azure ML workspace configured (--azureml-workspace)")
    ref = parse_workspace_setting(target.azureml_workspace)
    tokens = bindings.token_provider(target)
    # Short in-call waits: longer ones become the entity's backoff (lease stays short).
    retry = RetryPolicy(attempts=4, max_delay=10.0)
    if stop is not None:
        retry.sleep = lambda seconds: _wait_unless_stopped(stop, seconds)
    # One throttle for every lane: a window of at most one request in flight per lane.
    throttle = Throttle(settings.sync_concurrency)
    client = AzureMLClient(tokens, retry=retry, timeout=30.0, throttle=throttle, stop=stop)
    workspace = resolve_workspace(
        ref,
        endpoint_override=target.endpoint,
        tokens=tokens,
        arm_endpoint=settings.azureml_arm_endpoint,
    )
    return AzureMLflow(client, workspace)


def _wait_unless_stopped(stop: threading.Event, seconds: float) -> None:
    if stop.wait(seconds):
        raise TransientError("the sync worker is stopping")


class WorkspaceSync:
    """One bound workspace's worker thread: connects (retrying), then loops until stopped."""

    def __init__(self, settings: Settings, db: Database, target: Target) -> None:
        self.settings = settings
        self.db = db
        self.target = target
        self.worker: SyncWorker | None = None
        self.connect_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._main, name=f"tether-sync-{target.workspace}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the call in flight, commit its progress and give every lease back.

        Still connecting: nothing is leased, nothing to wait for (the thread is a daemon). A
        call still running after `timeout` loses its leases here; its late commit then finds
        the lease gone (LeaseLost) and changes nothing."""
        # Also the worker's stop_event (one event): a retry wait it cuts short raises with the
        # worker already stopping, so the entity is given back, not recorded failed. Set before
        # reading `worker`: _main checks it after setting `worker`.
        self._stop.set()
        worker = self.worker
        if worker is None:
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("sync: a call is still running after %.0f s; releasing leases", timeout)
            with self.db.write() as session:
                state.release_owner(session, worker.lane_owners)

    def _main(self) -> None:
        events.set_thread_workspace(self.target.workspace)  # its ARM discovery's requests
        delay = 1.0
        while not self._stop.is_set():
            try:
                api = connect(self.settings, self._stop, self.target)
                break
            except (SyncError, ValueError) as exc:
                self.connect_error = getattr(exc, "reason", str(exc))
                log.error(
                    "sync: cannot reach the Azure ML workspace of %s yet: %s",
                    self.target.workspace,
                    self.connect_error,
                )
                self._stop.wait(delay)
                delay = min(delay * 2, 60.0)
        else:
            return
        self.connect_error = None
        self.worker = SyncWorker(
            self.db,
            api,
            worker_config(self.settings),
            # The files as the API stores them: each workspace's at its destination.
            artifacts=destinations.artifact_store(self.settings, self.db),
            stop_event=self._stop,
            workspace=self.target.workspace,
            discovers=False,  # BackgroundSync discovers for every workspace
        )
        if self._stop.is_set():
            return
        self.worker.run_forever()

    def describe(self) -> WorkerInfo:
        """This workspace's worker, for the status route."""
        worker = self.worker
        info: WorkerInfo = {"enabled": True, "connected": worker is not None}
        if self.connect_error:
            info["connect_error"] = self.connect_error
        if worker is not None:
            info["owner"] = worker.owner
            info["workspace"] = worker.api.workspace.base_url + worker.api.workspace.scope
            info["stats"] = asdict(worker.stats)
            info["http"] = asdict(worker.api.client.stats)
            info["paused_for_seconds"] = round(worker.paused_for(), 3)
            throttle = worker.throttle
            info["lanes"] = len(worker.lane_owners)
            info["throttle"] = {
                "window": round(throttle.window, 2),
                "in_flight": throttle.in_flight,
                "probing": throttle.probing,
                **asdict(throttle.stats),
            }
        return info


class BackgroundSync:
    """The sync runtime of `tether serve`: one `WorkspaceSync` per bound workspace (its own
    lanes, Azure client, token and throttle: fair by construction, one workspace's backlog,
    429s or outage take no lane of another's), the bindings re-read every
    `BINDINGS_POLL_SECONDS` (a bind or unbind takes effect without a restart, on every
    replica), and discovery for all of them (while at least one is connected: before that,
    `tether sync status` shows the work as not yet discovered)."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.workspaces: dict[str, WorkspaceSync] = {}
        self.bindings_error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="tether-sync", daemon=True)
        self._poll = min(settings.sync_poll_seconds, 1.0)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        with self._lock:
            running, self.workspaces = list(self.workspaces.values()), {}
        for one in running:
            one.stop(timeout)

    def _main(self) -> None:
        next_bindings = 0.0
        while not self._stop.is_set():
            if time.monotonic() >= next_bindings:
                self._apply_bindings()
                next_bindings = time.monotonic() + BINDINGS_POLL_SECONDS
            self._discover()
            self._stop.wait(self._poll)

    def _apply_bindings(self) -> None:
        """Start a worker per newly bound workspace, stop those unbound, restart those whose
        binding changed (another endpoint, credential or Azure workspace). A deleted
        workspace's binding keeps its worker until drained, then is removed here (by whichever
        replica sees it drained first: tether.sync.retiring) and its worker stops."""
        try:
            with self.db.read() as session:
                any_retiring = bool(retiring.retiring_names(session))
            if any_retiring:  # a write transaction only then (SQLite: one writer at a time)
                with self.db.write() as session:
                    for name in retiring.remove_drained(session):
                        log.info("sync: deleted workspace %s is drained: binding removed", name)
            with self.db.read() as session:
                targets = bindings.active_targets(session, self.settings)
            self.bindings_error = None
        except Exception as exc:  # the database may be briefly unreachable: keep going
            self.bindings_error = str(exc)
            log.warning("sync: cannot read the workspace bindings: %s", exc)
            return
        with self._lock:
            current = dict(self.workspaces)
        for name, running in current.items():
            if targets.get(name) != running.target:
                log.info("sync: workspace %s unbound or rebound: stopping its worker", name)
                running.stop()
                with self._lock:
                    self.workspaces.pop(name, None)
        for name, target in targets.items():
            if name in self.workspaces or self._stop.is_set():
                continue
            log.info("sync: workspace %s syncs into %s", name, target.identity)
            started = WorkspaceSync(self.settings, self.db, target)
            with self._lock:
                self.workspaces[name] = started
            started.start()

    def _discover(self) -> None:
        with self._lock:
            workers = [w.worker for w in self.workspaces.values() if w.worker is not None]
        if not workers:
            return
        try:
            found = workers[0].discover()
        except Exception:  # the database may be briefly unreachable: keep going
            log.exception("sync: discovery error")
            return
        if found:
            for worker in workers:
                worker.wake()

    def describe(self) -> WorkerInfo:
        """This process's workers, for the status route: `default`'s (or the first bound
        workspace's) fields at the top, as before bindings, and each in `workspaces`."""
        with self._lock:
            running = dict(self.workspaces)
        if not running:
            info: WorkerInfo = {"enabled": self.enabled, "connected": False}
            if self.bindings_error:
                info["connect_error"] = self.bindings_error
            info["workspaces"] = {}
            return info
        each = {name: one.describe() for name, one in sorted(running.items())}
        first = each.get(DEFAULT_WORKSPACE) or next(iter(each.values()))
        return {**first, "workspaces": each}

    @property
    def enabled(self) -> bool:
        """Syncs anything: the server has a workspace, or some workspace is bound."""
        with self._lock:
            return bool(self.settings.azureml_workspace or self.workspaces)

    # The first connected worker, for readiness (ops.readiness) -----------------------------

    @property
    def worker(self) -> SyncWorker | None:
        with self._lock:
            running = dict(self.workspaces)
        one = running.get(DEFAULT_WORKSPACE) or next(iter(running.values()), None)
        return None if one is None else one.worker

    @property
    def connect_error(self) -> str | None:
        with self._lock:
            running = dict(self.workspaces)
        one = running.get(DEFAULT_WORKSPACE) or next(iter(running.values()), None)
        return None if one is None else one.connect_error
