"""Transitions of `sync_entities`: claim, progress, retry later, dead letter, release, requeue.

Status of an entity:
- `pending`: has outbox rows after its cursor (or waits for a dependency: `waiting_on`);
- `failed`: the last attempt failed transiently; retried at `next_attempt_at` (backoff);
- `dead`: Azure refused a row permanently (`last_error`); later rows wait for
  `tether sync retry`;
- `synced`: the cursor is at the entity's last outbox row.
"In flight" is not a status but a live lease (`lease_owner` until `lease_expires_at`): a worker
lane claims an entity, applies its rows in order, committing its progress (`commit`) after
each Azure request, and releases it. Every write below after the claim checks the lease is
still ours, so a lane whose lease expired (and was taken over) can never move the cursor.

`first_pending_at` is the creation time of the oldest outbox row not yet delivered (the first
row after the cursor): what the lag of `tether sync status` is computed from. Discovery sets it
when an entity gets new rows, every commit that moves the cursor moves it along.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from tether.clock import now_ms
from tether.db.dialect import upsert_insert
from tether.db.models import OutboxEntry, SyncEntity, SyncReport
from tether.sync.sources import rows_of

PENDING, FAILED, DEAD, SYNCED = "pending", "failed", "dead", "synced"
# Claimed first: an experiment must exist in Azure before its runs can be created.
# Then runs, before their files (which need the run's Azure id).
_PRIORITY = case(
    (SyncEntity.entity_type == "experiment", 0), (SyncEntity.entity_type == "run", 1), else_=2
)


class LeaseLost(Exception):
    """Our lease expired and another worker may own the entity now: stop, change nothing."""


@dataclass(frozen=True)
class Key:
    entity_type: str
    entity_id: str

    @classmethod
    def parse(cls, text: str) -> Key:
        entity_type, sep, entity_id = text.partition(":")
        if not sep or not entity_type or not entity_id:
            raise ValueError(f"expected TYPE:ID (e.g. run:0a1b...), got {text!r}")
        return cls(entity_type, entity_id)

    def __str__(self) -> str:
        return f"{self.entity_type}:{self.entity_id}"


@dataclass
class Claimed:
    """A leased entity as the worker sees it; `state` is the handler's JSON bookkeeping.

    `committed` is (cursor, metric_hwm) as last committed: a commit that moves either is
    progress (the failure count starts over)."""

    key: Key
    azure_id: str | None
    cursor: int
    metric_hwm: int
    state: dict[str, Any] = field(default_factory=dict)
    committed: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Report:
    kind: str  # mapped | truncated | split | skipped | deferred
    subject: str
    reason: str


@dataclass(frozen=True)
class Backoff:
    base_ms: int = 1_000
    max_ms: int = 600_000

    def delay_ms(self, attempts: int, retry_after_s: float | None) -> int:
        """Exponential in the attempts, with jitter; a server's Retry-After is a floor."""
        ceiling = min(self.max_ms, self.base_ms * 2 ** max(0, attempts - 1))
        delay = int(random.uniform(ceiling / 2, ceiling))
        if retry_after_s is not None:
            delay = max(delay, int(retry_after_s * 1000))
        return delay


def _pk(key: Key) -> Any:
    return (SyncEntity.entity_type == key.entity_type) & (SyncEntity.entity_id == key.entity_id)


def _mine(key: Key, owner: str) -> Any:
    return _pk(key) & (SyncEntity.lease_owner == owner)


def claim(
    session: Session,
    owner: str,
    lease_ms: int,
    now: int | None = None,
    *,
    workspace: str | None = None,
) -> Claimed | None:
    """Lease the next due entity nobody holds: experiments first, least recently worked next;
    with `workspace`, only that MLflow workspace's (each bound workspace has its own lanes).

    On PostgreSQL `FOR UPDATE SKIP LOCKED` lets concurrent claimers pass over each other's
    candidate; SQLite's single writer (BEGIN IMMEDIATE) serializes claims anyway.
    """
    now = now_ms() if now is None else now
    where = [
        SyncEntity.status.in_((PENDING, FAILED)),
        SyncEntity.next_attempt_at <= now,
        or_(SyncEntity.lease_owner.is_(None), SyncEntity.lease_expires_at < now),
    ]
    if workspace is not None:
        where.append(SyncEntity.workspace == workspace)
    row = session.execute(
        select(SyncEntity)
        .where(*where)
        .order_by(_PRIORITY, SyncEntity.updated_at, SyncEntity.entity_id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).scalar_one_or_none()
    if row is None:
        return None
    row.lease_owner = owner
    row.lease_expires_at = now + lease_ms
    session.flush()
    return Claimed(
        Key(row.entity_type, row.entity_id),
        row.azure_id,
        row.cursor,
        row.metric_hwm,
        json.loads(row.state or "{}"),
        (row.cursor, row.metric_hwm),
    )


def _guarded_update(session: Session, key: Key, owner: str, **values: Any) -> None:
    result = session.execute(update(SyncEntity).where(_mine(key, owner)).values(**values))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(f"lease on {key} lost")


def commit(
    session: Session,
    work: Claimed,
    owner: str,
    lease_ms: int,
    *,
    reports: list[tuple[Report, int]],
    now: int | None = None,
) -> None:
    """Commit what the entity has delivered (cursor, high-water mark, mapping, state) with its
    reports, and renew the lease. Progress (the cursor or the mark moved) also clears the last
    failure and moves `first_pending_at` to the first row still to deliver."""
    now = now_ms() if now is None else now
    values: dict[str, Any] = {
        "cursor": work.cursor,
        "azure_id": work.azure_id,
        "metric_hwm": work.metric_hwm,
        "state": json.dumps(work.state, sort_keys=True, separators=(",", ":")),
        "lease_expires_at": now + lease_ms,
        "updated_at": now,
    }
    if (work.cursor, work.metric_hwm) != work.committed:
        values.update(status=PENDING, attempts=0, last_error=None, waiting_on=None)
        if work.cursor != work.committed[0]:
            values["first_pending_at"] = oldest_after(session, work.key, work.cursor)
    _guarded_update(session, work.key, owner, **values)
    for report, outbox_id in reports:
        add_report(session, work.key, report, outbox_id, now)
    work.committed = (work.cursor, work.metric_hwm)


def advance(
    session: Session,
    work: Claimed,
    owner: str,
    lease_ms: int,
    *,
    cursor: int,
    reports: list[tuple[Report, int]],
    now: int | None = None,
) -> None:
    """Commit one applied row: the cursor moves to it (see `commit`)."""
    work.cursor = cursor
    commit(session, work, owner, lease_ms, reports=reports, now=now)


def oldest_after(session: Session, key: Key, cursor: int) -> int | None:
    """Creation time of the entity's first outbox row after `cursor` (None: none)."""
    created: int | None = session.execute(
        select(OutboxEntry.created_at)
        .where(rows_of(key.entity_type, key.entity_id), OutboxEntry.id > cursor)
        .order_by(OutboxEntry.id)
        .limit(1)
    ).scalar()
    return created


def renew(session: Session, key: Key, owner: str, lease_ms: int, now: int | None = None) -> bool:
    """Extend our lease (the heartbeat while a long call runs); False if it is not ours."""
    now = now_ms() if now is None else now
    result = session.execute(
        update(SyncEntity).where(_mine(key, owner)).values(lease_expires_at=now + lease_ms)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def finish(session: Session, work: Claimed, owner: str, now: int | None = None) -> str:
    """Release after the last row: `synced` unless rows arrived meanwhile (then `pending`)."""
    now = now_ms() if now is None else now
    last = session.execute(
        select(func.max(OutboxEntry.id)).where(rows_of(work.key.entity_type, work.key.entity_id))
    ).scalar()
    status = SYNCED if (last or 0) <= work.cursor else PENDING
    values: dict[str, Any] = {"status": status, "lease_owner": None, "lease_expires_at": None}
    values["updated_at"] = now
    values["first_pending_at"] = (
        None if status == SYNCED else oldest_after(session, work.key, work.cursor)
    )
    _guarded_update(session, work.key, owner, **values)
    return status


def fail(
    session: Session,
    key: Key,
    owner: str,
    reason: str,
    *,
    retry_after_s: float | None,
    backoff: Backoff,
    now: int | None = None,
) -> int:
    """A transient failure: `failed`, one more attempt counted, retried after a backoff."""
    now = now_ms() if now is None else now
    attempts = session.execute(
        select(SyncEntity.attempts).where(_mine(key, owner))
    ).scalar_one_or_none()
    if attempts is None:
        raise LeaseLost(f"lease on {key} lost")
    due = now + backoff.delay_ms(attempts + 1, retry_after_s)
    _release(
        session,
        key,
        owner,
        now,
        status=FAILED,
        attempts=attempts + 1,
        last_error=reason[:2000],
        next_attempt_at=due,
    )
    return due


def dead(
    session: Session,
    key: Key,
    owner: str,
    reason: str,
    *,
    waiting_on: str | None = None,
    now: int | None = None,
) -> None:
    """A permanent refusal: the entity stops (its later rows wait) until requeued."""
    now = now_ms() if now is None else now
    _release(
        session,
        key,
        owner,
        now,
        status=DEAD,
        last_error=reason[:2000],
        waiting_on=waiting_on,
    )


def wake_backed_off(
    session: Session,
    workspace: str | None,
    *,
    keep: Sequence[Key] = (),
    now: int | None = None,
) -> int:
    """The workspace answers again (after an outage): its entities backing off (`failed`, or
    `pending` on a dependency that was) are due now instead of at the end of their backoff,
    but those in `keep` (told by Azure to come back later: `Retry-After`). Their attempt
    counts stay: an entity still failing backs off longer as before."""
    now = now_ms() if now is None else now
    where = [
        SyncEntity.next_attempt_at > now,
        or_(
            SyncEntity.status == FAILED,
            and_(SyncEntity.status == PENDING, SyncEntity.waiting_on.is_not(None)),
        ),
    ]
    if workspace is not None:
        where.append(SyncEntity.workspace == workspace)
    where.extend(~_pk(key) for key in keep)
    result = session.execute(update(SyncEntity).where(*where).values(next_attempt_at=now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def note_retry(session: Session, key: Key, owner: str, reason: str, now: int | None = None) -> bool:
    """A call of the entity's lane failed and is being retried: show why now (`last_error`),
    the status unchanged (the lease says it is in flight). False if the lease is not ours."""
    now = now_ms() if now is None else now
    result = session.execute(
        update(SyncEntity)
        .where(_mine(key, owner))
        .values(last_error=f"retrying: {reason}"[:2000], updated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def defer(
    session: Session, key: Key, owner: str, waiting_on: str, until: int, now: int | None = None
) -> None:
    """Not an error: a dependency is not in Azure yet; look again at `until`."""
    now = now_ms() if now is None else now
    _release(session, key, owner, now, status=PENDING, waiting_on=waiting_on, next_attempt_at=until)


def linger(session: Session, key: Key, owner: str, until: int, now: int | None = None) -> None:
    """A partial batch waits for more points: give the entity back until `until` (epoch ms)."""
    now = now_ms() if now is None else now
    _release(session, key, owner, now, status=PENDING, waiting_on=None, next_attempt_at=until)


def release(session: Session, key: Key, owner: str, now: int | None = None) -> None:
    """Give the entity back unchanged (shutdown, time slice used up)."""
    now = now_ms() if now is None else now
    session.execute(
        update(SyncEntity)
        .where(_mine(key, owner))
        .values(lease_owner=None, lease_expires_at=None, updated_at=now)
    )


def release_owner(session: Session, owners: str | Sequence[str], now: int | None = None) -> int:
    """Give back every lease the owner(s) hold (worker shutdown: each lane is an owner)."""
    now = now_ms() if now is None else now
    names = [owners] if isinstance(owners, str) else list(owners)
    result = session.execute(
        update(SyncEntity)
        .where(SyncEntity.lease_owner.in_(names))
        .values(lease_owner=None, lease_expires_at=None, updated_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def renew_all(
    session: Session, owners: Sequence[str], lease_ms: int, now: int | None = None
) -> int:
    """Extend every lease the owners hold (one heartbeat for all of a worker's lanes)."""
    now = now_ms() if now is None else now
    result = session.execute(
        update(SyncEntity)
        .where(SyncEntity.lease_owner.in_(list(owners)))
        .values(lease_expires_at=now + lease_ms)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _release(session: Session, key: Key, owner: str, now: int, **values: Any) -> None:
    _guarded_update(
        session, key, owner, lease_owner=None, lease_expires_at=None, updated_at=now, **values
    )


def requeue(session: Session, keys: list[Key] | None, now: int | None = None) -> list[Key]:
    """Dead entities (all, or those named) back to `pending`, with what waits on them."""
    now = now_ms() if now is None else now
    dead_rows = session.execute(
        select(SyncEntity.entity_type, SyncEntity.entity_id, SyncEntity.waiting_on).where(
            SyncEntity.status == DEAD
        )
    ).all()
    if keys is None:
        chosen = {Key(t, i) for t, i, _ in dead_rows}
    else:
        chosen = {k for k in keys if any(Key(t, i) == k for t, i, _ in dead_rows)}
        grew = True
        while grew:  # dependents of requeued entities, transitively
            names = {str(k) for k in chosen}
            more = {Key(t, i) for t, i, w in dead_rows if w in names} - chosen
            chosen |= more
            grew = bool(more)
    for key in chosen:
        session.execute(
            update(SyncEntity)
            .where(_pk(key), SyncEntity.status == DEAD)
            .values(
                status=PENDING,
                attempts=0,
                last_error=None,
                waiting_on=None,
                next_attempt_at=0,
                first_pending_at=func.coalesce(SyncEntity.first_pending_at, now),
                updated_at=now,
            )
        )
    return sorted(chosen, key=str)


def add_report(session: Session, key: Key, report: Report, outbox_id: int, now: int) -> None:
    """Record (or refresh) what could not be mirrored as such, one row per subject."""
    stmt = upsert_insert(session, SyncReport).values(
        entity_type=key.entity_type,
        entity_id=key.entity_id,
        kind=report.kind,
        subject=report.subject[:300],
        reason=report.reason,
        outbox_id=outbox_id,
        created_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["entity_type", "entity_id", "kind", "subject"],
        set_={"reason": stmt.excluded.reason, "outbox_id": stmt.excluded.outbox_id},
    )
    session.execute(stmt)


def get(session: Session, key: Key) -> SyncEntity | None:
    return session.get(SyncEntity, (key.entity_type, key.entity_id))
