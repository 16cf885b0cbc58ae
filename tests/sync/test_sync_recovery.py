"""After a long outage the workspace's waiting work goes as soon as the workspace answers
again, not when each entity's grown backoff ends: the worker probes the workspace while it is
down, and the first call that gets through makes what backs off due at once (a circuit
breaker closing); the lanes and the shared throttle pace the rest. Nothing is sent twice."""

from __future__ import annotations

import threading
import time
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

pytestmark = pytest.mark.timeout(300)


def _runs(tether: Tether) -> list[SyncEntity]:
    with tether.db.read() as session:
        return list(session.scalars(select(SyncEntity).where(SyncEntity.entity_type == "run")))


def _until(what: str, check: object, deadline_s: float = 120) -> None:
    deadline = time.monotonic() + deadline_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_waiting_work_goes_once_the_workspace_answers_again(tether: Tether) -> None:
    experiment = tether.experiment()
    runs = [tether.run(experiment, name=f"r{i}") for i in range(3)]
    for run_id in runs:
        tether.log(run_id, 20)
    assert drain_exit_code(tether.drain()) == 0
    worker = tether.worker
    # Backoffs as after a long outage (the first failure already waits 30-60 s); a quick probe.
    worker.config = replace(
        worker.config, backoff=Backoff(base_ms=60_000, max_ms=120_000), probe_s=0.5
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
        )
        backoff_left = (min(r.next_attempt_at for r in _runs(tether)) - now_ms()) / 1000
        assert backoff_left > 20, backoff_left

        tether.ws.clear_faults()
        back = time.monotonic()

        def converged() -> bool:
            with tether.db.read() as session:
                counts = status.summary(session)["entities"]
            return not any(counts[b] for b in ("pending", "in_flight", "failed", "dead"))

        _until("the runs converge once the workspace is back", converged)
        took = time.monotonic() - back
        assert took < backoff_left / 2, (
            f"converged {took:.1f} s after the workspace came back; the runs' backoff had "
            f"{backoff_left:.1f} s left"
        )
    finally:
        worker.stop_event.set()
        loop.join(60)
    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=runs)
