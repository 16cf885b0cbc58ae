"""`tether sync status` never shows "nothing pending" while work waits: outbox rows no worker
has discovered yet (sync off, or a worker that cannot reach the workspace) are counted apart
and their age is the oldest pending age; the lag is the age of the oldest write not yet
delivered, and the delivery rates are the entities' own. No Azure here (SQLite and
PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import update

from sync.outbox_rows import insert_row
from tether.clock import now_ms
from tether.db.engine import Database
from tether.db.models import SyncEntity
from tether.sync import delivery, discovery, state, status
from tether.sync.commands import _summary_text


def test_undiscovered_rows_are_pending_work(db: Database) -> None:
    with db.write() as session:
        insert_row(session, "experiment", "1", "create")
        insert_row(session, "run", "r1", "create", '{"experiment_id": "1"}')
    appended = now_ms()
    later = appended + 5_000

    with db.read() as session:
        body = status.summary(session, now=later)
    assert sum(body["entities"].values()) == 0
    assert body["outbox"]["not_scanned"] == 2 == body["outbox"]["last_id"]
    assert body["outbox"]["oldest_not_scanned_age_seconds"] >= 4.9
    assert body["oldest_pending_age_seconds"] == body["outbox"]["oldest_not_scanned_age_seconds"]
    text = _summary_text(body)
    assert "not yet discovered: 2 outbox row(s)" in text and "oldest pending: -" not in text

    with db.write() as session:
        discovery.discover(session, lookback_ms=60_000, now=appended)  # found 5 s before `later`
    with db.read() as session:
        body = status.summary(session, now=later)
    assert body["outbox"]["not_scanned"] == 0
    assert body["outbox"]["oldest_not_scanned_age_seconds"] is None
    assert body["entities"]["pending"] == 2 and body["oldest_pending_age_seconds"] >= 4.9
    assert "not yet discovered" not in _summary_text(body)


def test_the_lag_is_the_age_of_the_oldest_write_not_yet_delivered(db: Database) -> None:
    """Under a steady load a run is never fully synced, yet its lag is that of its oldest
    undelivered write, not of when it first became pending."""
    t0 = now_ms() - 60_000
    with db.write() as session:
        rows = [
            insert_row(session, "run", "r", op, created_at=t0 + 1_000 * i)
            for i, op in enumerate(["create", "log_batch", "log_batch"])
        ]
    with db.write() as session:
        discovery.discover(session, lookback_ms=60_000, now=t0 + 2_500)
    with db.read() as session:
        body = status.summary(session, now=t0 + 5_000)
    assert body["oldest_pending_age_seconds"] == 5.0  # the first write's age, not discovery's
    work = _claim(db)
    with db.write() as session:
        state.advance(session, work, "w", 30_000, cursor=rows[0], reports=[])
    with db.read() as session:
        body = status.summary(session, now=t0 + 5_000)
    assert body["oldest_pending_age_seconds"] == 4.0
    (run,) = body["lag"]["runs"]
    assert (run["run"], run["lag_seconds"], run["outbox_rows_behind"]) == ("r", 4.0, 2)
    assert run["status"] == "in_flight"
    with db.write() as session:
        state.advance(session, work, "w", 30_000, cursor=rows[2], reports=[])
        assert state.finish(session, work, "w") == state.SYNCED
    with db.read() as session:
        body = status.summary(session)
    assert body["oldest_pending_age_seconds"] is None
    assert body["lag"]["oldest_undelivered_write_age_seconds"] is None

    later = now_ms() - 3_000  # a new write to the synced run: lagging from its own time
    with db.write() as session:
        insert_row(session, "run", "r", "set_tag", created_at=later)
    with db.write() as session:
        discovery.discover(session, lookback_ms=60_000)
    with db.read() as session:
        body = status.summary(session, now=later + 3_500)
    assert body["oldest_pending_age_seconds"] == 3.5
    text = _summary_text(body)
    assert "oldest pending: 3.5 s" in text and "run r: lag 3.5 s, pending, 1 row(s) behind" in text


def test_delivery_rates_are_summed_over_recent_entities(db: Database) -> None:
    now = now_ms()
    for run in ("a", "b"):
        with db.write() as session:
            insert_row(session, "run", run, "create")
    with db.write() as session:
        discovery.discover(session, lookback_ms=60_000)
    for run, points in (("a", 600), ("b", 300)):
        work = _claim(db)
        assert work.key.entity_id == run
        delivery.record(work.state, now - 10_000, points=points, requests=points // 100)
        delivery.record(work.state, now - 4 * 60_000, points=10**6, requests=10**4)  # too old
        with db.write() as session:
            state.commit(session, work, "w", 30_000, reports=[])
            state.finish(session, work, "w")
    with db.read() as session:
        lag = status.summary(session, now=now)["lag"]
    window = delivery.WINDOW_S
    assert lag["points_per_second"] == round(900 / window, 2)
    assert lag["requests_per_second"] == round(9 / window, 2)
    assert lag["points_total"] == 900 + 2 * 10**6
    assert [(r["run"], r["points_per_second"]) for r in lag["runs"]] == [
        ("a", round(600 / window, 2)),
        ("b", round(300 / window, 2)),
    ]
    with db.read() as session:
        detail = status.entity_detail(session, state.Key("run", "a"), now=now)
    assert detail is not None and detail["delivery"]["points_total"] == 600 + 10**6


def test_a_finished_run_ends_its_linger_at_once(db: Database) -> None:
    with db.write() as session:
        insert_row(session, "run", "r", "create")
    with db.write() as session:
        discovery.discover(session, lookback_ms=60_000)
    key = state.Key("run", "r")
    far = now_ms() + 60_000
    for op, due in (("log_batch", far), ("update", 0)):
        work = _claim(db)
        with db.write() as session:
            state.linger(session, key, "w", far)
            insert_row(session, "run", "r", op)
        with db.write() as session:
            discovery.discover(session, lookback_ms=60_000)
        with db.read() as session:
            row = state.get(session, key)
            assert row is not None and (row.status, row.next_attempt_at) == ("pending", due), op
        with db.write() as session:  # lease it again for the next round
            session.execute(
                update(SyncEntity).where(SyncEntity.entity_id == "r").values(next_attempt_at=0)
            )
        assert work is not None


def _claim(db: Database) -> state.Claimed:
    with db.write() as session:
        work = state.claim(session, "w", 30_000)
    assert work is not None
    return work
