"""`tether sync status` never shows "nothing pending" while work waits: outbox rows no worker
has discovered yet (sync off, or a worker that cannot reach the workspace) are counted apart
and their age is the oldest pending age. No Azure here (SQLite and PostgreSQL)."""

from __future__ import annotations

from sync.outbox_rows import insert_row
from tether.clock import now_ms
from tether.db.engine import Database
from tether.sync import discovery, status
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
