"""The sync state machine on the real store (SQLite and PostgreSQL): discovery from the outbox,
leases, backoff, dead letters and re-queueing. No Azure here: these are the database rules
every handler relies on."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import delete, select

from sync.outbox_rows import insert_row
from tether.clock import now_ms
from tether.db.engine import Database
from tether.db.models import SyncEntity, SyncMeta
from tether.sync import discovery, state, status
from tether.sync.sources import CAPABILITIES, TRACKING
from tether.sync.state import Backoff, Key, LeaseLost, Report

LOOKBACK = 60_000
LEASE = 30_000


def _append(db: Database, entity_type: str, entity_id: str, op: str = "create") -> int:
    """Append one outbox row, as a tracking write does; returns its id."""
    with db.write() as session:
        return insert_row(session, entity_type, entity_id, op)


def _discover(db: Database, now: int | None = None) -> int:
    with db.write() as session:
        return discovery.discover(session, lookback_ms=LOOKBACK, now=now)


def _entities(db: Database) -> dict[str, str]:
    with db.read() as session:
        rows = session.scalars(select(SyncEntity)).all()
        return {f"{r.entity_type}:{r.entity_id}": r.status for r in rows}


def _claim(db: Database, owner: str, now: int | None = None) -> state.Claimed | None:
    with db.write() as session:
        return state.claim(session, owner, LEASE, now=now)


def _complete(db: Database, owner: str, work: state.Claimed, cursor: int) -> str:
    with db.write() as session:
        state.advance(session, work, owner, LEASE, cursor=cursor, reports=[])
        return state.finish(session, work, owner)


def test_discovery_finds_tracking_entities_and_only_counts_the_rest(db: Database) -> None:
    _append(db, "experiment", "1")
    _append(db, "run", "r1")
    last_r1 = _append(db, "run", "r1", "log_batch")
    _append(db, "artifact", "some/path", "artifact_put")
    _append(db, "unknown", "u-1", "create")
    assert _discover(db) == 2
    assert _entities(db) == {"experiment:1": "pending", "run:r1": "pending"}
    # Young rows are scanned again on every pass: nothing changes, nothing is counted twice.
    assert _discover(db) == 0
    with db.read() as session:
        assert discovery.unsynced_counts(session) == {"artifact": 1, "unknown": 1}

    work = _claim(db, "w1")
    assert work is not None and work.key == Key("experiment", "1")
    assert _complete(db, "w1", work, 1) == "synced"
    work = _claim(db, "w1")
    assert work is not None and work.key == Key("run", "r1")
    assert _complete(db, "w1", work, last_r1) == "synced"
    assert set(_entities(db).values()) == {"synced"}

    _append(db, "run", "r1", "set_tag")  # a synced entity with a new row is pending again
    assert _discover(db) == 1
    assert _entities(db)["run:r1"] == "pending"
    assert _entities(db)["experiment:1"] == "synced"


def test_discovery_cursor_only_passes_rows_older_than_the_lookback(db: Database) -> None:
    last = _append(db, "run", "a")
    _discover(db)
    with db.read() as session:
        assert discovery.get_meta(session, discovery.SAFE_CURSOR) == "0"
        assert discovery.get_meta(session, discovery.HIGH_CURSOR) == str(last)
    _discover(db, now=now_ms() + LOOKBACK + 1_000)
    with db.read() as session:
        assert discovery.get_meta(session, discovery.SAFE_CURSOR) == str(last)


def test_a_large_backlog_is_discovered_in_bounded_passes(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(discovery, "_NEW_ROWS_PER_PASS", 4)
    for i in range(10):
        _append(db, "run", f"r{i}")
    seen = []
    for _ in range(3):
        with db.read() as session:
            assert not discovery.caught_up(session)
        seen.append(_discover(db))
    assert seen == [4, 4, 2]
    with db.read() as session:
        assert discovery.caught_up(session)
    assert len(_entities(db)) == 10


@pytest.mark.parametrize("backend_kind", ["postgres"], indirect=True)
def test_discovery_sees_a_row_that_commits_after_a_newer_one(db: Database) -> None:
    """PostgreSQL draws ids before commit: id 1 may become visible after id 2 was scanned."""
    appended, release = threading.Event(), threading.Event()

    def slow_writer() -> None:
        with db.write() as session:
            insert_row(session, "run", "slow", "create")
            appended.set()
            release.wait(30)

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert appended.wait(30)
    _append(db, "run", "fast")  # a larger id, committed first
    _discover(db)
    assert _entities(db) == {"run:fast": "pending"}
    release.set()
    writer.join(30)
    _discover(db)
    assert _entities(db) == {"run:fast": "pending", "run:slow": "pending"}


def test_lease_is_exclusive_until_it_expires(db: Database) -> None:
    _append(db, "run", "r")
    _append(db, "experiment", "7")
    _discover(db)
    first = _claim(db, "w1")
    assert first is not None and first.key == Key("experiment", "7"), "experiments go first"
    held = _claim(db, "w1")
    assert held is not None and held.key == Key("run", "r")
    assert _claim(db, "w2") is None, "both entities are leased"

    later = now_ms() + LEASE + 1_000  # w1 died: its lease expires and w2 takes over
    taken = _claim(db, "w2", now=later)
    assert taken is not None and taken.key == Key("experiment", "7")
    with pytest.raises(LeaseLost), db.write() as session:
        state.advance(session, first, "w1", LEASE, cursor=99, reports=[])
    with db.read() as session:
        row = state.get(session, Key("experiment", "7"))
        assert row is not None and row.cursor == 0 and row.lease_owner == "w2"

    with db.write() as session:  # shutdown gives leases back
        assert state.release_owner(session, "w1") == 1
    again = _claim(db, "w3")
    assert again is not None and again.key == Key("run", "r")


def test_transient_failures_back_off_exponentially_and_honour_retry_after(db: Database) -> None:
    _append(db, "run", "r")
    _discover(db)
    backoff = Backoff(base_ms=1_000, max_ms=8_000)
    key = Key("run", "r")
    for attempt, ceiling in enumerate([1_000, 2_000, 4_000, 8_000, 8_000], start=1):
        now = now_ms()
        work = _claim(db, "w", now=now + 10**9)  # far enough ahead for any backoff
        assert work is not None
        with db.write() as session:
            due = state.fail(session, key, "w", "503", retry_after_s=None, backoff=backoff, now=now)
        assert ceiling / 2 <= due - now <= ceiling
        with db.read() as session:
            row = state.get(session, key)
            assert row is not None
            assert (row.status, row.attempts, row.last_error) == ("failed", attempt, "503")
        assert _claim(db, "w", now=due - 1) is None, "not before its backoff ends"
    work = _claim(db, "w", now=now_ms() + 10**9)
    assert work is not None
    now = now_ms()
    with db.write() as session:
        due = state.fail(session, key, "w", "429", retry_after_s=30.0, backoff=backoff, now=now)
    assert due - now >= 30_000, "Retry-After is a floor"


def test_progress_resets_attempts_and_reports_are_kept_per_subject(db: Database) -> None:
    last = _append(db, "run", "r")
    _discover(db)
    key = Key("run", "r")
    work = _claim(db, "w")
    assert work is not None
    with db.write() as session:
        state.fail(session, key, "w", "boom", retry_after_s=None, backoff=Backoff(1, 1))
    work = _claim(db, "w", now=now_ms() + 10)
    assert work is not None
    work.azure_id = "azure-run"
    report = Report("truncated", "tag:note", "cut")
    with db.write() as session:
        state.advance(session, work, "w", LEASE, cursor=last, reports=[(report, last)])
        state.advance(session, work, "w", LEASE, cursor=last, reports=[(report, last)])
        assert state.finish(session, work, "w") == "synced"
    with db.read() as session:
        row = state.get(session, key)
        assert row is not None
        assert (row.status, row.attempts, row.last_error, row.azure_id) == (
            "synced",
            0,
            None,
            "azure-run",
        )
        detail = status.entity_detail(session, key)
    assert detail is not None
    assert [(r["kind"], r["subject"]) for r in detail["report"]] == [("truncated", "tag:note")]


def test_dead_letters_wait_until_requeued_with_their_dependents(db: Database) -> None:
    for entity in ("1", "2"):
        _append(db, "experiment", entity)
    for run in ("a", "b", "c"):
        _append(db, "run", run)
    _discover(db)
    exp1, exp2 = Key("experiment", "1"), Key("experiment", "2")
    run_a, run_b, run_c = Key("run", "a"), Key("run", "b"), Key("run", "c")
    for key, waiting in [
        (exp1, None),
        (exp2, None),
        (run_a, exp1),
        (run_b, run_a),
        (run_c, exp2),
    ]:
        work = _claim(db, "w")
        assert work is not None and work.key == key
        with db.write() as session:
            state.dead(session, key, "w", "refused", waiting_on=str(waiting) if waiting else None)
    assert _claim(db, "w") is None, "dead entities are never claimed"
    assert set(_entities(db).values()) == {"dead"}

    with db.write() as session:
        requeued = state.requeue(session, [exp1])
    assert requeued == [exp1, run_a, run_b], "dependents come back too, transitively"
    assert _entities(db) == {
        "experiment:1": "pending",
        "experiment:2": "dead",
        "run:a": "pending",
        "run:b": "pending",
        "run:c": "dead",
    }
    with db.write() as session:
        assert state.requeue(session, None) == [exp2, run_c]
    assert set(_entities(db).values()) == {"pending"}


def test_finish_leaves_pending_when_rows_arrived_meanwhile(db: Database) -> None:
    first = _append(db, "run", "r")
    _discover(db)
    work = _claim(db, "w")
    assert work is not None
    _append(db, "run", "r", "set_tag")  # lands while the worker applies `first`
    with db.write() as session:
        state.advance(session, work, "w", LEASE, cursor=first, reports=[])
        assert state.finish(session, work, "w") == "pending"
    work = _claim(db, "w")
    assert work is not None and work.cursor == first


def test_concurrent_workers_never_claim_the_same_entity(db: Database) -> None:
    """Several workers (threads here; processes behave alike on one database) drain together."""
    keys = {f"run:r{i:02d}" for i in range(24)}
    for key in keys:
        _append(db, "run", key.split(":")[1])
    _discover(db)
    claimed: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(owner: str) -> None:
        try:
            while (work := _claim(db, owner)) is not None:
                with lock:
                    claimed.append(str(work.key))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(claimed) == sorted(keys), "each entity exactly once"


def test_a_new_capability_finds_old_rows_without_resending_synced_ones(db: Database) -> None:
    """An upgrade: the tracking cursor and the run are past the run's artifact rows (an older
    version reported them deferred); the `artifacts` and `models` cursors start at 0."""
    _append(db, "run", "r1")
    put = _append(db, "run", "r1", "artifact_put")
    _append(db, "logged_model", "m-1", "create")
    last = _append(db, "registered_model", "7", "create")
    _discover(db)
    work = _claim(db, "w1")
    assert work is not None and work.key == Key("run", "r1")
    assert _complete(db, "w1", work, put) == "synced"
    with db.write() as session:  # as an older version left it: only the tracking cursor
        session.execute(delete(SyncEntity).where(SyncEntity.entity_type != "run"))
        for capability in CAPABILITIES:
            if capability is not TRACKING:
                session.execute(
                    delete(SyncMeta).where(SyncMeta.key.like(f"discovery.{capability.name}.%"))
                )

    assert _discover(db) == 3
    assert _entities(db) == {
        "run:r1": "synced",  # not resent
        "run_artifacts:r1": "pending",
        "logged_model:m-1": "pending",
        "registered_model:7": "pending",
    }
    with db.read() as session:
        for capability in CAPABILITIES:
            assert discovery.get_meta(session, capability.high_key) == str(last)
        assert discovery.caught_up(session)
        files = state.get(session, Key("run_artifacts", "r1"))
        assert files is not None and files.cursor == 0
