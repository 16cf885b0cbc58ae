"""Wiring: settings -> workspace client -> worker, and the background thread of `tether serve`."""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict

from tether.config import Settings
from tether.db.engine import Database
from tether.storage.configured import artifact_backend
from tether.sync import state
from tether.sync.azureml.client import AzureMLClient, RetryPolicy
from tether.sync.azureml.credentials import TokenProvider
from tether.sync.azureml.errors import SyncError, TransientError
from tether.sync.azureml.mlflow_api import AzureMLflow
from tether.sync.azureml.throttle import Throttle
from tether.sync.azureml.workspace import parse_workspace_setting, resolve_workspace
from tether.sync.schemas import WorkerInfo
from tether.sync.state import Backoff
from tether.sync.worker import SyncWorker, WorkerConfig

log = logging.getLogger("tether.sync")


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


def connect(settings: Settings, stop: threading.Event | None = None) -> AzureMLflow:
    """The workspace's MLflow API; asks ARM for the host when the setting is an ARM id.

    With `stop`, a retry's wait ends (in a TransientError) as soon as it is set: shutdown does
    not sit out a backoff."""
    if not settings.azureml_workspace:
        raise ValueError("no Azure ML workspace configured (--azureml-workspace)")
    ref = parse_workspace_setting(settings.azureml_workspace)
    tokens = TokenProvider()
    # Short in-call waits: longer ones become the entity's backoff (lease stays short).
    retry = RetryPolicy(attempts=4, max_delay=10.0)
    if stop is not None:
        retry.sleep = lambda seconds: _wait_unless_stopped(stop, seconds)
    # One throttle for every lane: a window of at most one request in flight per lane.
    throttle = Throttle(settings.sync_concurrency)
    client = AzureMLClient(tokens, retry=retry, timeout=30.0, throttle=throttle, stop=stop)
    workspace = resolve_workspace(
        ref,
        endpoint_override=settings.azureml_endpoint,
        tokens=tokens,
        arm_endpoint=settings.azureml_arm_endpoint,
    )
    return AzureMLflow(client, workspace)


def _wait_unless_stopped(stop: threading.Event, seconds: float) -> None:
    if stop.wait(seconds):
        raise TransientError("the sync worker is stopping")


class BackgroundSync:
    """The worker thread of `tether serve`: connects (retrying), then loops until stopped."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.worker: SyncWorker | None = None
        self.connect_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="tether-sync", daemon=True)

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
        delay = 1.0
        while not self._stop.is_set():
            try:
                api = connect(self.settings, self._stop)
                break
            except (SyncError, ValueError) as exc:
                self.connect_error = getattr(exc, "reason", str(exc))
                log.error("sync: cannot reach the workspace yet: %s", self.connect_error)
                self._stop.wait(delay)
                delay = min(delay * 2, 60.0)
        else:
            return
        self.connect_error = None
        self.worker = SyncWorker(
            self.db,
            api,
            worker_config(self.settings),
            artifacts=artifact_backend(self.settings),
            stop_event=self._stop,
        )
        if self._stop.is_set():
            return
        self.worker.run_forever()

    def describe(self) -> WorkerInfo:
        """This process's worker, for the status route."""
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
