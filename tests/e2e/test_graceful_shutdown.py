"""SIGTERM, as `docker stop` sends it (to the `tether serve` process only): uvicorn stops
accepting, finishes the requests in flight, then the lifespan stops the sync worker, which
gives its leases back; the process exits 0. Every write that was answered 200 is in the store.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select

from support import TetherServer, unique_name
from tether.db.engine import Database
from tether.db.models import SyncEntity

if TYPE_CHECKING:
    from standin.identity import ManagedIdentityEndpoint
    from standin.workspace import AzuremlWorkspace
    from support import TetherServerStarter

pytestmark = pytest.mark.timeout(240)
THREADS = 6
EXIT_TIMEOUT = 45.0  # TETHER_GRACEFUL_TIMEOUT (30 s) + the sync worker's stop: compose's grace


def _sigterm_and_wait(server: TetherServer, timeout: float = EXIT_TIMEOUT) -> tuple[int, float]:
    """SIGTERM to the server process alone (not its group); (exit code, seconds to exit)."""
    sent = time.monotonic()
    os.kill(server.process.pid, signal.SIGTERM)
    code = server.process.proc.wait(timeout)
    return code, time.monotonic() - sent


@dataclass
class Burst:
    """Writers on their own keep-alive connections until the server stops answering."""

    url: str
    run_ids: list[str]
    acked_metrics: list[tuple[str, str, int]] = field(default_factory=list)  # run, key, step
    acked_params: list[tuple[str, str]] = field(default_factory=list)  # run, key
    acked_after_sigterm: int = 0
    other_statuses: list[tuple[int, str]] = field(default_factory=list)
    sigterm_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def writer(self, index: int, stop: threading.Event) -> None:
        run = self.run_ids[index]
        with httpx.Client(base_url=self.url, timeout=60, trust_env=False) as client:
            for n in itertools.count():
                if stop.is_set() or n >= 5000:
                    return
                if n % 2:
                    key, body = "single", {"key": "single", "value": n, "timestamp": n, "step": n}
                    path = "/api/2.0/mlflow/runs/log-metric"
                    request: dict[str, Any] = {"run_id": run, **body}
                else:
                    key = "batch"
                    metrics = [
                        {"key": key, "value": n + i / 10, "timestamp": n, "step": n * 10 + i}
                        for i in range(5)
                    ]
                    params = [{"key": f"p{n}", "value": str(n)}]
                    path = "/api/2.0/mlflow/runs/log-batch"
                    request = {"run_id": run, "metrics": metrics, "params": params}
                try:
                    response = client.post(path, json=request)
                except httpx.TransportError:
                    if self.sigterm_at is None:
                        raise
                    return  # the server is going away: refused or closed
                with self._lock:
                    if response.status_code != 200:
                        self.other_statuses.append((response.status_code, response.text[:300]))
                        return
                    if self.sigterm_at is not None:
                        self.acked_after_sigterm += 1
                    if key == "single":
                        self.acked_metrics.append((run, key, n))
                    else:
                        self.acked_metrics.extend((run, key, n * 10 + i) for i in range(5))
                        self.acked_params.append((run, f"p{n}"))

    def total(self) -> int:
        with self._lock:
            return len(self.acked_metrics)


def _create_runs(server: TetherServer, count: int) -> list[str]:
    with server.rest() as rest:
        exp = rest.post("experiments/create", {"name": unique_name()}).json["experiment_id"]
        return [
            rest.post("runs/create", {"experiment_id": exp}).json["run"]["info"]["run_id"]
            for _ in range(count)
        ]


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_mid_burst_keeps_every_acknowledged_write(
    start_tether_server: TetherServerStarter, workers: int
) -> None:
    server = start_tether_server(extra_args=["--workers", str(workers)])
    burst = Burst(server.url, _create_runs(server, THREADS))
    stop = threading.Event()
    threads = [
        threading.Thread(target=burst.writer, args=(i, stop), daemon=True) for i in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while burst.total() < 300:  # mid-burst: every writer has had answers
        assert time.monotonic() < deadline, "the burst did not get going"
        assert all(t.is_alive() for t in threads), burst.other_statuses
        time.sleep(0.02)
    burst.sigterm_at = time.monotonic()
    try:
        code, took = _sigterm_and_wait(server)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    log = server.log_text()
    assert code == 0, log
    # Below TETHER_GRACEFUL_TIMEOUT (30 s): no idle keep-alive connection held the shutdown
    # until the timeout (the margin is for a slow machine, not a speed claim).
    assert took < 28, f"took {took:.1f} s to stop:\n{log}"
    assert burst.other_statuses == [], "only 200s, then refused or closed connections"
    assert burst.acked_after_sigterm > 0, "requests in flight at SIGTERM were answered"
    assert "Application shutdown complete" in log

    restarted = start_tether_server(server.backend_uri)  # same store, a fresh process
    with restarted.rest() as rest:
        for run in burst.run_ids:
            stored = {
                (run, key, point["step"])
                for key in ("single", "batch")
                for point in rest.get(
                    "metrics/get-history", {"run_id": run, "metric_key": key, "max_results": 25000}
                ).json.get("metrics", [])
            }
            acked = {m for m in burst.acked_metrics if m[0] == run}
            assert acked <= stored, f"acknowledged but lost: {sorted(acked - stored)[:10]}"
            params = {
                p["key"]
                for p in rest.get("runs/get", {"run_id": run}).json["run"]["data"].get("params", [])
            }
            assert {p for r, p in burst.acked_params if r == run} <= params


# -------------------------------------------------------------------------- with sync running


def _leases(backend_uri: str) -> list[tuple[str, str, str | None, str]]:
    db = Database(backend_uri)
    try:
        with db.read() as session:
            rows = session.execute(
                select(
                    SyncEntity.entity_type,
                    SyncEntity.entity_id,
                    SyncEntity.lease_owner,
                    SyncEntity.status,
                )
            ).all()
        return [(t, i, o, s) for t, i, o, s in rows]
    finally:
        db.dispose()


def _sync_env(ws: AzuremlWorkspace, identity: ManagedIdentityEndpoint) -> dict[str, str]:
    return {
        **identity.env,
        **ws.env,
        "TETHER_AZUREML_ARM_ENDPOINT": ws.arm_endpoint,
        "TETHER_SYNC_POLL_SECONDS": "0.2",
        # Long leases: only the shutdown can have cleared them, not their expiry.
        "TETHER_SYNC_LEASE_SECONDS": "120",
    }


@pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("workers", "fault"),
    [
        (1, "delay"),  # SIGTERM while a call is in flight (4 s): it finishes, its row committed
        (1, "retry_after"),  # SIGTERM while the client waits out a 503's Retry-After: cut short
        (2, "retry_after"),
        (1, "stuck"),  # a call that outlives the worker's stop timeout (10 s) loses its lease
    ],
)
def test_sigterm_gives_sync_leases_back(
    start_tether_server: TetherServerStarter,
    azureml_workspace: AzuremlWorkspace,
    azureml_identity: ManagedIdentityEndpoint,
    workers: int,
    fault: str,
) -> None:
    ws = azureml_workspace
    if fault in ("delay", "stuck"):
        # "delay": long enough for the test to see the call and read the leases while it is
        # held, well within the worker's stop timeout (10 s).
        seconds = 4.0 if fault == "delay" else 20.0
        ws.faults(path="runs/log-batch$", action="delay", seconds=seconds, times=None)
    else:  # 8 s: within the client's in-call retry budget (10 s), so it sleeps on it
        ws.faults(path="runs/log-batch$", action="status", status=503, retry_after="8", times=None)
    server = start_tether_server(
        extra_args=["--workers", str(workers), "--azureml-workspace", ws.arm_id],
        env=_sync_env(ws, azureml_identity),
    )
    mark = ws.mark()
    with server.rest() as rest:
        exp = rest.post("experiments/create", {"name": unique_name()}).json["experiment_id"]
        run = rest.post("runs/create", {"experiment_id": exp}).json["run"]["info"]["run_id"]
        metrics = [
            {"key": "loss", "value": i / 9, "timestamp": 1_700_000_000_000 + i, "step": i}
            for i in range(250)  # one Azure log-batch call (the limit per call)
        ]
        assert rest.post("runs/log-batch", {"run_id": run, "metrics": metrics}).status == 200
    deadline = time.monotonic() + 60
    while not ws.requests(mark, path="runs/log-batch$"):  # the worker is in the run's calls
        assert time.monotonic() < deadline, "sync did not reach the metrics:\n" + server.log_text()
        time.sleep(0.05)
    held = [row for row in _leases(server.backend_uri) if row[2] is not None]
    assert any(row[:2] == ("run", run) for row in held), held

    code, took = _sigterm_and_wait(server)
    log = server.log_text()
    assert code == 0, log
    if fault == "stuck":  # waited 10 s for the call, then took its lease away
        assert 9 < took < 25, f"took {took:.1f} s to stop:\n{log}"
        assert "releasing leases" in log
    else:  # a delayed call (4 s) is finished; a Retry-After wait (8 s) is not sat out
        # Generous bounds for a slow machine: what proves the wait was cut short is that no
        # lease had to be taken (a 503 sat out would outlast the 10 s stop timeout: 3 x 8 s).
        assert took < (10 if fault == "delay" else 15), f"took {took:.1f} s to stop:\n{log}"
        assert "releasing leases" not in log, "nothing had to be taken from a running call"
    rows = _leases(server.backend_uri)
    assert [row for row in rows if row[2] is not None] == [], "every lease given back"
    run_row = next(row for row in rows if row[:2] == ("run", run))
    if fault == "delay":  # the call in flight was finished and its row committed: all done
        assert run_row[3] == "synced", run_row
    else:  # cut short: given back unchanged, stopping is not a failure of the entity
        assert run_row[3] == "pending", run_row
