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


def test_an_older_point_changes_the_cached_sample_but_not_the_latest(backend_uri: str) -> None:
    """The cache stamp moves with every write of the key, also one that leaves the latest
    point where it was (a point logged late, with an earlier step)."""
    db, service, run_id = _service(backend_uri)

    def read(step_range: tuple[int, int] | None = None) -> list[repository.SampledPoint]:
        with db.read() as session:
            return repository.sampled_history(session, [run_id], "loss", 10, step_range)

    def latest() -> tuple[int, float, int]:
        with db.read() as session:
            row = session.scalars(
                select(LatestMetric).where(
                    LatestMetric.run_uuid == run_id, LatestMetric.key == "loss"
                )
            ).one()
            return row.step, row.value, row.points_version

    try:
        points = [MetricIn("loss", float(i), 1_000 + i, i) for i in range(100)]
        service.log_batch(run_id, points, [], [])
        assert latest() == (99, 99.0, 1)
        assert read()[0].step == 0 and read((50, 60))[0].step == 50  # cached from here
        service.log_metric(run_id, MetricIn("loss", -1.0, 999, -5))
        assert latest() == (99, 99.0, 2)  # not newer: the latest point stays
        assert read()[0].step == -5 and read()[0].value == -1.0
        service.log_metric(run_id, MetricIn("loss", 7.0, 999, 55))
        assert [p.step for p in read((50, 60))].count(55) == 2  # two points at step 55
        assert latest() == (99, 99.0, 3)
        before = read()
        service.log_batch(run_id, [points[3]], [], [])  # a duplicate: nothing stored
        assert latest() == (99, 99.0, 4)  # a new stamp all the same (one cache miss)
        assert read() == before and [p.step for p in before] == [
            -5,
            10,
            21,
            31,
            41,
            51,
            60,
            70,
            80,
            99,
        ]
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


def test_sanitized_points_store_nan_as_a_flag_and_clamp_infinities() -> None:
    big = 1.7976931348623157e308
    items = [
        MetricIn("a", 1.5, 1, 2, "model-1"),  # extra fields of a point are ignored
        ("b", float("nan"), 3, 4),
        ("c", float("inf"), 5, 6),
        ("d", float("-inf"), 7, 8),
        ("e", -big, 9, 10),
    ]
    assert repository.sanitized_points(items) == [
        ("a", 1.5, 1, 2, False),
        ("b", 0.0, 3, 4, True),
        ("c", big, 5, 6, False),
        ("d", -big, 7, 8, False),
        ("e", -big, 9, 10, False),
    ]
