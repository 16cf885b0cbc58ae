"""Bulk-interval sampling: positions equal NTILE's bucket heads; the sample cache follows
new points; log-batch ids and latest metrics stay right on the set-based write path."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import select, text

from tether.db import migrate
from tether.db.engine import Database
from tether.db.models import LatestMetric, Metric, OutboxEntry
from tether.tracking.metrics import repository
from tether.tracking.runs.service import MetricIn, RunService


def _ntile_positions(count: int, buckets: int) -> list[int]:
    """The reference: MLflow's window-function sampling, run by SQLite itself."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE p (i INTEGER)")
    conn.executemany("INSERT INTO p VALUES (?)", [(i,) for i in range(count)])
    rows = conn.execute(
        "SELECT i, row_number() OVER (PARTITION BY b ORDER BY i) AS rn FROM"
        f" (SELECT i, ntile({buckets}) OVER (ORDER BY i) AS b FROM p) ORDER BY i"
    ).fetchall()
    heads = [i for i, rn in rows if rn == 1]
    if count and heads[-1] != count - 1:
        if len(heads) >= buckets:
            heads[-1] = count - 1
        else:
            heads.append(count - 1)
    return heads


@pytest.mark.parametrize("buckets", [1, 2, 7, 50, 320])
def test_sample_positions_match_ntile(buckets: int) -> None:
    for count in [*range(0, 400), 639, 640, 641, 999, 1000, 1001, 10_001]:
        assert repository.sample_positions(count, buckets) == _ntile_positions(count, buckets)


def _service(backend_uri: str) -> tuple[Database, RunService, str]:
    db = Database(backend_uri)
    migrate.upgrade(db)
    with db.write() as session:
        session.execute(
            text(
                "INSERT INTO experiments (experiment_id, name, lifecycle_stage, artifact_location)"
                " VALUES (7, 'sampling', 'active', '/tmp/x')"
            )
        )
    service = RunService(db)
    run = service.create(experiment_id="7", user_id="u", start_time=None, run_name="", tags=[])
    return db, service, str(run["info"]["run_id"])


def test_sample_cache_follows_new_points(backend_uri: str) -> None:
    db, service, run_id = _service(backend_uri)
    try:
        points = [MetricIn("loss", i / 10, 1_700_000_000_000 + i, i) for i in range(1000)]
        service.log_batch(run_id, points, [], [])
        for _ in range(2):  # the second read is served from the cache
            with db.read() as session:
                sample = repository.sampled_history(session, [run_id], "loss", 50, None)
            assert len(sample) == 50 and sample[-1].step == 999
        service.log_metric(run_id, MetricIn("loss", 5.0, 1_700_000_001_000, 1000))
        with db.read() as session:
            sample = repository.sampled_history(session, [run_id], "loss", 50, None)
        assert len(sample) == 50 and sample[-1].step == 1000 and sample[-1].value == 5.0
    finally:
        db.dispose()


def test_log_batch_ids_and_latest(backend_uri: str) -> None:
    db, service, run_id = _service(backend_uri)
    try:
        first = [MetricIn("a", float(i), 1_000 + i, i) for i in range(300)]
        service.log_batch(run_id, first, [], [])
        # Re-logged points are skipped; only the new ones get ids and reach the outbox.
        again = [*first[:10], MetricIn("a", float("nan"), 5_000, 500), MetricIn("b", 1.0, 1, 0)]
        service.log_batch(run_id, again, [], [])
        with db.read() as session:
            ids = list(session.scalars(select(Metric.id).order_by(Metric.id)))
            latest = {
                m.key: (m.step, m.is_nan, m.value)
                for m in session.scalars(
                    select(LatestMetric).where(LatestMetric.run_uuid == run_id)
                )
            }
            payloads = list(
                session.scalars(
                    select(OutboxEntry.payload)
                    .where(OutboxEntry.op == "log_batch")
                    .order_by(OutboxEntry.id)
                )
            )
        assert len(ids) == 302
        assert latest == {"a": (500, True, 0.0), "b": (0, False, 1.0)}
        assert payloads[0] == f'{{"metric_ids":[[{ids[0]},{ids[299]}]]}}'
        assert payloads[1] == f'{{"metric_ids":[[{ids[300]},{ids[301]}]]}}'
    finally:
        db.dispose()
