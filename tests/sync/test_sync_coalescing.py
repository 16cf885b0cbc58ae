"""Coalescing and linger (sync/handlers/run_data.py) against the stand-in workspace: requests
counted by kind, order and meaning checked by the exact fidelity comparison, every point sent
once."""

from __future__ import annotations

import itertools
import math
import threading
import time

import pytest
from sqlalchemy import select

from sync.sync_fidelity import assert_fidelity, sent_points
from sync.sync_tether import Tether
from tether.db.models import OutboxEntry
from tether.sync.handlers.run_data import MAX_HELD_ROWS
from tether.sync.state import Key
from tether.sync.worker import SyncWorker, WorkerConfig, drain_exit_code
from tether.tracking.runs.service import MetricIn

pytestmark = pytest.mark.timeout(180)
BASE = 1_700_000_000_000


def _point(i: int, key: str = "loss") -> MetricIn:
    return MetricIn(key, i / 7, BASE + i, i)


def test_single_writes_to_an_idle_run_arrive_in_full_batches(tether: Tether) -> None:
    """1,000 one-point writes (as `mlflow.log_metric` sends them), params and tags logged one
    by one between them: 4 metric requests, one for the params and tags; a tag set twice ends
    with its last value, a tag set then deleted ends deleted, the status comes after."""
    runs = tether.services.runs
    run_id = tether.run(tether.experiment())
    for i in range(1000):
        runs.log_metric(run_id, _point(i))
        if i % 250 == 10:
            runs.log_param(run_id, f"p{i}", str(i))
        if i == 500:
            runs.set_tag(run_id, "phase", "warmup")
            runs.set_tag(run_id, "scratch", "x")
        if i == 800:
            runs.set_tag(run_id, "phase", "train")
    runs.delete_tag(run_id, "scratch")
    runs.update(run_id, "FINISHED", BASE + 10_000, None)
    mark = tether.ws.mark()

    assert drain_exit_code(tether.drain()) == 0

    counts = tether.ws.counts(mark)
    assert (counts["metric_requests"], counts["metric_points"]) == (4, 1000)
    assert (counts["param_requests"], counts["params"]) == (1, 4)
    assert (counts["tag_requests"], counts["tags"]) == (1, 2)  # phase (last value), scratch
    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[run_id])
    azure_run = tether.azure_id(Key("run", run_id))
    batches = tether.ws.requests(mark, path="runs/log-batch$")
    steps = [m["step"] for e in batches for m in (e["json"] or {}).get("metrics", [])]
    assert steps == list(range(1000)), "points in id order"
    sent = sent_points(batches, azure_run)
    assert sum(sent.values()) == 1000 and set(sent.values()) == {1}
    order = [e["path"].rsplit("/", 1)[1] for e in tether.ws.requests(mark, path="runs/")]
    assert order.index("delete-tag") > max(i for i, p in enumerate(order) if p == "log-batch")
    assert order[-1] == "update", "the status after the data"


def test_params_only_writes_are_batched_by_100(tether: Tether) -> None:
    run_id = tether.run(tether.experiment())
    for i in range(150):
        tether.services.runs.log_param(run_id, f"p{i:03d}", str(i))
    mark = tether.ws.mark()

    assert drain_exit_code(tether.drain()) == 0

    counts = tether.ws.counts(mark)
    assert (counts["param_requests"], counts["params"], counts["metric_requests"]) == (2, 150, 0)
    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[run_id])


def test_the_cursor_moves_with_every_request(tether: Tether) -> None:
    """A crash repeats at most one request: after two acknowledged metric requests of a
    coalesced delivery the cursor is past the rows they covered, not at the first row."""
    run_id = tether.run(tether.experiment())
    tether.drain()  # the run exists in Azure
    for i in range(1000):
        tether.services.runs.log_metric(run_id, _point(i))
    mark = tether.ws.mark()
    tether.ws.faults(
        {"path": "runs/log-batch$", "action": "delay", "seconds": 0, "times": 2},
        {"path": "runs/log-batch$", "action": "status", "status": 503, "times": None},
    )
    tether.drain(timeout=6)

    run = tether.entity(Key("run", run_id))
    ids = tether.metric_ids(run_id)
    assert run.metric_hwm == ids[499]
    with tether.db.read() as session:  # one row per point: the cursor is the 500th's row
        rows = session.scalars(
            select(OutboxEntry.id)
            .where(OutboxEntry.entity_id == run_id, OutboxEntry.op == "log_batch")
            .order_by(OutboxEntry.id)
        ).all()
    assert run.cursor == rows[499]
    tether.ws.clear_faults()
    assert drain_exit_code(tether.drain()) == 0
    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[run_id])
    sent = sent_points(tether.ws.requests(mark, path="runs/log-batch$"), run.azure_id or "")
    assert sum(sent.values()) == 1000 and set(sent.values()) == {1}


def test_a_lost_coalesced_batch_is_checked_not_resent(tether: Tether) -> None:
    """The in-doubt check covers a batch made of many writes (and a later, larger batch)."""
    run_id = tether.run(tether.experiment())
    tether.drain()
    for i in range(600):
        tether.services.runs.log_metric(run_id, _point(i))
    mark = tether.ws.mark()
    tether.ws.faults(path="runs/log-batch$", action="lost_response", times=1)

    assert drain_exit_code(tether.drain()) == 0

    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[run_id])
    sent = sent_points(
        tether.ws.requests(mark, path="runs/log-batch$"), tether.azure_id(Key("run", run_id))
    )
    assert sum(sent.values()) == 600 and set(sent.values()) == {1}
    assert tether.ws.requests(mark, path="metrics/get-history$"), "the lost batch was checked"


def test_many_rows_without_points_are_flushed_in_bounded_batches(tether: Tether) -> None:
    """Rows held without 250 points to send are flushed at MAX_HELD_ROWS: what is held stays
    small however the run is written (here: a tag rewritten more often than that)."""
    run_id = tether.run(tether.experiment())
    for i in range(MAX_HELD_ROWS + 10):
        tether.services.runs.set_tag(run_id, "step", str(i))
    tether.services.runs.log_metric(run_id, _point(0))
    mark = tether.ws.mark()

    assert drain_exit_code(tether.drain()) == 0

    counts = tether.ws.counts(mark)
    assert counts["tag_requests"] == 2 and counts["metric_requests"] == 1
    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[run_id])


def test_a_busy_run_sends_about_one_partial_request_per_linger(tether: Tether) -> None:
    """A live worker while a client logs one point at a time: partial requests go out at most
    once per linger (plus full batches), the finished run's last points at once."""
    run_id = tether.run(tether.experiment())
    tether.drain()
    linger_s = 0.5
    config = WorkerConfig(poll_s=0.1, linger_ms=int(linger_s * 1000), concurrency=2)
    worker = SyncWorker(tether.db, tether.worker.api, config, owner="live")
    loop = threading.Thread(target=worker.run_forever)
    mark = tether.ws.mark()
    loop.start()
    try:
        started = time.monotonic()
        written = 0
        while time.monotonic() - started < 3.0:
            tether.services.runs.log_metric(run_id, _point(written))
            written += 1
            time.sleep(0.002)
        elapsed = time.monotonic() - started
        tether.services.runs.update(run_id, "FINISHED", BASE + 99_000, None)
        deadline = time.monotonic() + 60
        while tether.entity(Key("run", run_id)).status != "synced":
            assert time.monotonic() < deadline, tether.detail(Key("run", run_id))
            time.sleep(0.1)
    finally:
        worker.stop_event.set()
        loop.join(30)

    counts = tether.ws.counts(mark)
    assert counts["metric_points"] == written
    bound = math.ceil(written / 250) + math.ceil(elapsed / linger_s) + 2
    assert counts["metric_requests"] <= bound, (counts, written, elapsed)
    assert_fidelity(tether.db, tether.ws.mlflow_url, runs=[run_id])
    times = [e["time"] for e in tether.ws.requests(mark, path="runs/log-batch$")]
    partial = [
        e for e in tether.ws.requests(mark, path="runs/log-batch$") if e["counts"]["metrics"] < 250
    ]
    gaps = [b["time"] - a["time"] for a, b in itertools.pairwise(partial)]
    assert len(times) >= 2 and all(g >= linger_s * 0.5 for g in gaps[:-1]), gaps
