"""On PostgreSQL, outbox ids of one entity follow commit order (the worker's cursor relies on it).

Two transactions append for the same entity: the second must wait for the first to commit, so
it cannot draw a smaller id and commit later. Other entities are not held up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from tether.db import migrate, outbox
from tether.db.engine import Database
from tether.db.models import OutboxEntry
from tether.db.outbox.records import RunLogBatch


@pytest.fixture
def pg(new_postgres_database: Callable[[], str]) -> Iterator[Database]:
    db = Database(new_postgres_database())
    migrate.upgrade(db)
    yield db
    db.dispose()


def test_same_entity_appends_serialize_in_commit_order(pg: Database) -> None:
    first_appended = threading.Event()
    release_first = threading.Event()
    second_done = threading.Event()

    def first() -> None:
        with pg.write() as session:
            outbox.append(session, RunLogBatch("r1", params={"n": "1"}))
            first_appended.set()
            release_first.wait(60)

    def second() -> None:
        first_appended.wait(30)
        with pg.write() as session:
            outbox.append(session, RunLogBatch("r1", params={"n": "2"}))
        second_done.set()

    def other_entity() -> None:
        with pg.write() as session:
            outbox.append(session, RunLogBatch("r2", params={"n": "3"}))
        other_done.set()

    other_done = threading.Event()
    t1, t2 = threading.Thread(target=first), threading.Thread(target=second)
    t3 = threading.Thread(target=other_entity)
    t1.start()
    t2.start()
    assert first_appended.wait(30)
    assert not second_done.wait(1.0), "second append did not wait for the first to commit"
    t3.start()
    # Commits while the first transaction still holds r1 (held until released, up to 60 s):
    # the wait is generous for a slow machine; "not blocked" is that it did not need the release.
    assert other_done.wait(20), "an unrelated entity was blocked"
    assert not second_done.is_set(), "r1 was still held while the other entity committed"
    release_first.set()
    t1.join(30)
    t2.join(30)
    t3.join(30)
    assert second_done.is_set()
    with pg.read() as session:
        rows = session.execute(
            select(OutboxEntry.entity_id, OutboxEntry.payload).order_by(OutboxEntry.id)
        ).all()
    r1_payloads = [payload for entity, payload in rows if entity == "r1"]
    assert r1_payloads == ['{"params":{"n":"1"}}', '{"params":{"n":"2"}}']
