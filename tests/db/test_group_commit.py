"""SQLite group commit (tether.db.group_commit): writers that queue up together share one
COMMIT, every acknowledged write is committed, a failing writer takes only its own work
with it, and a failed COMMIT fails every writer of the group (none is acknowledged)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from tether.db.engine import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'g.db'}")
    with database.engine.begin() as conn:
        conn.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        conn.execute(text("CREATE TABLE item (writer TEXT PRIMARY KEY)"))
        # Checked at COMMIT only: lets a test make the group's COMMIT itself fail.
        conn.execute(
            text(
                "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES"
                " parent(id) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
    yield database
    database.dispose()


def _commits(db: Database) -> list[int]:
    """Counts the COMMITs the engine issues (appends 1 per commit)."""
    seen: list[int] = []
    event.listen(db.engine, "commit", lambda _conn: seen.append(1))
    return seen


def _items(db: Database) -> set[str]:
    with db.read() as session:
        return {row[0] for row in session.execute(text("SELECT writer FROM item"))}


def _insert(session: Any, writer: str) -> None:
    session.execute(text("INSERT INTO item (writer) VALUES (:w)"), {"w": writer})


def test_concurrent_writers_share_commits_and_all_land(db: Database) -> None:
    commits = _commits(db)
    writers, each = 16, 20
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        start.wait()
        try:
            for i in range(each):
                with db.write() as session:
                    _insert(session, f"{n}-{i}")
                    time.sleep(0.001)  # others queue meanwhile
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert _items(db) == {f"{n}-{i}" for n in range(writers) for i in range(each)}
    # Grouped: far fewer COMMITs than writes (one each without group commit).
    assert 0 < len(commits) < writers * each / 2, len(commits)


def _hold_group_open(db: Database, entered: threading.Event, release: threading.Event) -> None:
    """First writer of a group: writes, then holds the turn until the test releases it."""
    with db.write() as session:
        _insert(session, "first")
        entered.set()
        release.wait(10)


def _queued(db: Database, count: int) -> None:
    deadline = time.monotonic() + 10
    while db._group_commit._queued < count:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "writers did not queue"
        time.sleep(0.005)


def test_a_failing_writer_in_a_group_loses_only_its_own_work(db: Database) -> None:
    commits = _commits(db)
    entered, release = threading.Event(), threading.Event()
    outcomes: dict[str, str] = {}

    def failing() -> None:
        try:
            with db.write() as session:
                _insert(session, "failing")
                raise ValueError("refused")
        except ValueError:
            outcomes["failing"] = "raised"

    def succeeding() -> None:
        with db.write() as session:
            _insert(session, "second")
        outcomes["second"] = "ok"

    first = threading.Thread(target=_hold_group_open, args=(db, entered, release))
    first.start()
    assert entered.wait(10)
    others = [threading.Thread(target=failing), threading.Thread(target=succeeding)]
    for t in others:
        t.start()
    _queued(db, 2)
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert outcomes == {"failing": "raised", "second": "ok"}
    assert _items(db) == {"first", "second"}
    assert len(commits) == 1  # the three shared one transaction


def test_a_failing_first_writer_rolls_back_and_the_next_one_works(db: Database) -> None:
    with pytest.raises(ValueError), db.write() as session:
        _insert(session, "gone")
        raise ValueError("refused")
    with db.write() as session:
        _insert(session, "kept")
    assert _items(db) == {"kept"}


def test_a_failed_commit_fails_every_writer_of_the_group(db: Database) -> None:
    entered, release = threading.Event(), threading.Event()
    failures: list[str] = []

    def first() -> None:
        try:
            _hold_group_open(db, entered, release)
        except Exception as exc:
            failures.append(f"first: {exc}")

    def orphan() -> None:
        try:
            with db.write() as session:  # fine now, refused by the deferred check at COMMIT
                session.execute(text("INSERT INTO child (id, parent_id) VALUES (1, 42)"))
        except Exception as exc:
            failures.append(f"orphan: {exc}")

    threads = [threading.Thread(target=first), threading.Thread(target=orphan)]
    threads[0].start()
    assert entered.wait(10)
    threads[1].start()
    _queued(db, 1)
    release.set()
    for t in threads:
        t.join(10)
    assert sorted(f.split(":")[0] for f in failures) == ["first", "orphan"], failures
    assert all("FOREIGN KEY" in f for f in failures), failures
    assert _items(db) == set()  # nothing of the group was committed
    with db.write() as session:  # the writer connection is usable again
        _insert(session, "after")
    assert _items(db) == {"after"}
