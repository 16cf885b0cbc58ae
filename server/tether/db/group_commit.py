"""Group commit for SQLite: writers that arrive together share one transaction and one fsync.

SQLite has one writer at a time, and with `synchronous=FULL` every commit waits for the disk.
Sixteen clients each logging a metric would queue for sixteen commits in a row. Here the
writers still run one at a time on one long-lived connection (BEGIN IMMEDIATE, as before),
but a writer that finishes while others are queued leaves the transaction open for them; the
last writer of the group commits for all, and each one returns only after that commit: an
acknowledged write is as durable as before, at one fsync per group.

Each writer's work is isolated: the first of a group runs directly in the transaction (on
failure the transaction, holding only its own work, is rolled back); later ones run in a
SAVEPOINT that their failure rolls back, leaving the others' work in place. A failed commit
fails every writer of the group (none was acknowledged).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

# A group stops taking writers once it has this many (bounds the first one's wait).
MAX_GROUP = 64


class _Group:
    def __init__(self) -> None:
        self.members = 0  # writers whose work is in the open transaction
        self.committed = threading.Event()
        self.error: BaseException | None = None


class GroupCommit:
    def __init__(self, writer: Engine) -> None:
        self._writer = writer
        self._lock = threading.Lock()  # held by the one writer running
        self._queued = 0  # writers waiting for the lock (read under the lock)
        self._queued_lock = threading.Lock()
        self._connection: Connection | None = None
        self._group: _Group | None = None

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self._queued_lock:
            self._queued += 1
        self._lock.acquire()
        with self._queued_lock:
            self._queued -= 1
        group: _Group | None = None
        committed_here = False
        try:
            group = self._join()
            first = group.members == 0
            session = Session(
                bind=self._connection,
                # first: its failure rolls the whole (own) transaction back
                join_transaction_mode="rollback_only" if first else "create_savepoint",
                expire_on_commit=False,
            )
            try:
                with session.begin():
                    yield session
            except BaseException:
                if first:
                    self._abandon()  # rolled back: nothing of the group is left
                    group = None
                raise
            finally:
                session.close()
            group.members += 1
            if self._should_commit(group):
                self._commit(group)
                committed_here = True
        except BaseException:
            if group is not None and group.members and self._should_commit(group):
                self._commit(group)  # the others of the group are waiting for it
            raise
        finally:
            self._lock.release()
        if not committed_here:
            group.committed.wait()
        if group.error is not None:
            raise group.error

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _join(self) -> _Group:
        if self._group is not None:
            return self._group
        if self._connection is None or self._connection.invalidated:
            self._connection = self._writer.connect()
            # Kept for good: out of the pool, so the readers' pool (and its gauges) keep
            # their full size; closed by close().
            self._connection.detach()
        self._connection.begin()  # BEGIN IMMEDIATE (engine hook): may wait for other processes
        self._group = _Group()
        return self._group

    def _should_commit(self, group: _Group) -> bool:
        with self._queued_lock:
            queued = self._queued
        return queued == 0 or group.members >= MAX_GROUP

    def _commit(self, group: _Group) -> None:
        assert self._connection is not None
        self._group = None
        try:
            self._connection.commit()
        except BaseException as exc:
            group.error = exc
            self._rollback_quietly()
        finally:
            group.committed.set()

    def _abandon(self) -> None:
        self._group = None
        self._rollback_quietly()

    def _rollback_quietly(self) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            if connection.get_transaction() is not None:  # also after a failed COMMIT
                connection.rollback()
            driver = connection.connection.dbapi_connection
            if driver is not None and getattr(driver, "in_transaction", False):
                driver.rollback()  # SQLite keeps the transaction open when COMMIT fails
        except Exception:
            # The connection is unusable: the next writer opens a new one.
            self._connection = None
            with suppress(Exception):
                connection.invalidate()
