"""After a long outage the workspace's waiting work goes as soon as the workspace answers
again, not when each entity's grown backoff ends: the worker probes the workspace while it is
down, and the first call that gets through makes what backs off due at once (a circuit
breaker closing); the lanes and the shared throttle pace the rest. Nothing is sent twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from sqlalchemy import select

from sync.sync_fidelity import assert_fidelity
from sync.sync_tether import Tether
from tether.clock import now_ms
from tether.db.models import SyncEntity
from tether.sync import state, status
from tether.sync.state import Backoff
from tether.sync.worker import drain_exit_code

pytestmark = pytest.mark.timeout(480)


def _runs(tether: Tether) -> list[SyncEntity]:
    with tether.db.read() as session:
        return list(session.scalars(select(SyncEntity).where(SyncEntity.entity_type == "run")))


def _until(what: str, check: Callable[[], bool], deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_waiting_work_goes_once_the_workspace_answers_again(tether: Tether) -> None:
    experiment = tether.experiment()
    runs = [tether.run(experiment, name=f"r{i}") for i in range(3)]
    for run_id in runs:
        tether.log(run_id, 20)
    assert drain_exit_code(tether.drain()) == 0
    worker = tether.worker
    # Backoffs as after a long outage (the first failure already waits 2-4 min: the runs
    # fail one after the other, each call's retries held by the shared throttle, so the
    # first one's backoff must outlast the others'); a quick probe.
    worker.config = replace(
        worker.config, backoff=Backoff(base_ms=240_000, max_ms=480_000), probe_s=0.5
    )
    tether.ws.faults(path=".*", action="status", status=503, times=None)
    for run_id in runs:
        tether.log(run_id, 30, start=20)
    loop = threading.Thread(target=worker.run_forever)
    loop.start()
    try:
        _until(
            "every run fails during the outage",
            lambda: all(r.status == state.FAILED for r in _runs(tether)),
            180,
        )
        backoff_left = (min(r.next_attempt_at for r in _runs(tether)) - now_ms()) / 1000
        assert backoff_left > 40, backoff_left

        tether.ws.clear_faults()

        def converged() -> bool:
            with tether.db.read() as session:
                counts = status.summary(session)["entities"]
            return not any(counts[b] for b in ("pending", "in_flight", "failed", "dead"))

        # Well below the backoff: within half of what was left of it.
        _until(
            f"not converged {backoff_left / 2:.1f} s after the workspace came back; the "
            f"runs' backoff had {backoff_left:.1f} s left",
            converged,
            backoff_left / 2,
        )
    finally:
        worker.stop_event.set()
        loop.join(60)
    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=runs)
