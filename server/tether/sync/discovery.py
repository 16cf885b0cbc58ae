"""Find the entities the outbox has new rows for, and mark them `pending`.

The write path stays one insert per request: this scan reads the outbox itself. It keeps a
cursor in `sync_meta` and reads every row above it, grouped per entity. The cursor only moves
past rows that were at least `lookback_ms` old when read: an outbox row is appended at the end
of its transaction, so its `created_at` is about its commit time, and a row with a smaller id
that commits later (PostgreSQL draws ids before commit) is still above the cursor when it
becomes visible. The assumption, documented in the README: no transaction stays open longer
than the lookback (default 60 s) after appending its outbox row (clock skew between Tether
hosts counts against it).

An entity that gets new rows is pending from the creation time of the oldest of them
(`first_pending_at`: the lag shown by `tether sync status` is the age of the oldest write not
yet in Azure ML). A run lingering on a partial batch (`handlers.run_data`) whose new rows
include one that ends what it waits for (its status update, a delete, ...) is due at once.

Each capability (`sources`) has its own cursor pair and scans for its own sync entities:
`tracking` (experiments, runs) and `artifacts` (a run's files). Outbox rows no capability
syncs (artifact paths outside any run, logged models, registry entities) are left
undiscovered and only counted (`UNSYNCED_PREFIX`, by the `tracking` pass), so the version that
adds their capability starts its own cursor at 0 and finds all of them.
"""

from __future__ import annotations

from sqlalchemy import bindparam, case, func, select, tuple_, update
from sqlalchemy.orm import Session

from tether.clock import now_ms
from tether.db.dialect import upsert_insert
from tether.db.models import OutboxEntry, SyncEntity, SyncMeta
from tether.sync import ownership
from tether.sync.handlers.run_data import FLUSH_OPS
from tether.sync.sources import (
    CAPABILITIES,
    FULLY_SYNCED_TYPES,
    KEPT_LOCAL_TYPES,
    TRACKING,
    Capability,
    synced_by_any,
)
from tether.sync.state import PENDING, SYNCED

SAFE_CURSOR = TRACKING.safe_key
HIGH_CURSOR = TRACKING.high_key
UNSYNCED_PREFIX = "unsynced."  # + entity type: outbox rows of types this version leaves alone
_PG_DISCOVERY_LOCK = 7_311_990_413
# A pass re-reads the young rows and at most this many new ids: catching up with a large
# backlog (sync switched on late) never holds the write lock for long.
_NEW_ROWS_PER_PASS = 50_000


def get_meta(session: Session, key: str) -> str | None:
    return session.execute(select(SyncMeta.value).where(SyncMeta.key == key)).scalar()


def set_meta(session: Session, key: str, value: str) -> None:
    stmt = upsert_insert(session, SyncMeta).values(key=key, value=value)
    session.execute(
        stmt.on_conflict_do_update(index_elements=["key"], set_={"value": stmt.excluded.value})
    )


def discover(session: Session, *, lookback_ms: int, now: int | None = None) -> int:
    """One pass; returns how many entities became pending. Call inside a write transaction."""
    now = now_ms() if now is None else now
    if session.get_bind().dialect.name == "postgresql":
        # One discoverer at a time across processes; the others simply skip this pass.
        got = session.execute(select(func.pg_try_advisory_xact_lock(_PG_DISCOVERY_LOCK)))
        if not got.scalar():
            return 0
    return sum(_discover(session, c, lookback_ms, now) for c in CAPABILITIES)


def _discover(session: Session, capability: Capability, lookback_ms: int, now: int) -> int:
    safe = int(get_meta(session, capability.safe_key) or 0)
    high = int(get_meta(session, capability.high_key) or 0)
    cutoff = now - lookback_ms
    # One statement, one snapshot: what is scanned and how far the cursor may move agree.
    groups = session.execute(
        select(
            OutboxEntry.entity_type,
            OutboxEntry.entity_id,
            OutboxEntry.op,
            func.max(OutboxEntry.id),
            func.max(case((OutboxEntry.created_at < cutoff, OutboxEntry.id))),
            func.count(case((OutboxEntry.id > high, 1))),
            func.min(case((OutboxEntry.id > high, OutboxEntry.created_at))),
        )
        .where(OutboxEntry.id > safe, OutboxEntry.id <= _window_end(session, high))
        .group_by(OutboxEntry.entity_type, OutboxEntry.entity_id, OutboxEntry.op)
    ).all()
    if not groups:
        return 0
    found: dict[tuple[str, str], tuple[int, int]] = {}  # -> (last id, oldest new row's time)
    flush: list[str] = []
    for outbox_type, entity_id, op, last, _, new_rows, oldest in groups:
        source = capability.source_of(outbox_type, op)
        if source is None:
            continue
        key = (source.sync_type, entity_id)
        was_last, was_oldest = found.get(key, (0, now))
        found[key] = (max(was_last, last), min(was_oldest, oldest if oldest is not None else now))
        if source.sync_type == "run" and new_rows and op in FLUSH_OPS:
            flush.append(entity_id)
    ours = [(t, i, last, oldest) for (t, i), (last, oldest) in found.items()]
    pending = 0
    for start in range(0, len(ours), 500):
        chunk = ours[start : start + 500]
        pending += _mark_pending(session, chunk) + _upsert(session, chunk, now)
    for start in range(0, len(flush), 500):
        _end_lingering(session, flush[start : start + 500], now)
    if capability is TRACKING:
        others = [(g[0], g[5]) for g in groups if not synced_by_any(g[0], g[2])]
        _count_unsynced(session, others)
    new_safe = max((g[4] for g in groups if g[4] is not None), default=safe)
    set_meta(session, capability.safe_key, str(max(safe, new_safe)))
    high_seen = max(g[3] for g in groups)
    set_meta(session, capability.high_key, str(max(high, high_seen)))
    return pending


def _end_lingering(session: Session, run_ids: list[str], now: int) -> None:
    """Runs waiting out a linger (pending, on no dependency, due later) are due now."""
    session.execute(
        update(SyncEntity)
        .where(
            SyncEntity.entity_type == "run",
            SyncEntity.entity_id.in_(run_ids),
            SyncEntity.status == PENDING,
            SyncEntity.waiting_on.is_(None),
            SyncEntity.next_attempt_at > now,
        )
        .values(next_attempt_at=0)
    )


def _window_end(session: Session, high: int) -> int:
    """The id of the `_NEW_ROWS_PER_PASS`-th row after `high` (or no limit)."""
    end = session.execute(
        select(OutboxEntry.id)
        .where(OutboxEntry.id > high)
        .order_by(OutboxEntry.id)
        .offset(_NEW_ROWS_PER_PASS - 1)
        .limit(1)
    ).scalar()
    return int(end) if end is not None else 2**62


def caught_up(session: Session) -> bool:
    """Every outbox row visible now has been scanned at least once."""
    last = session.execute(select(func.max(OutboxEntry.id))).scalar() or 0
    return all(int(get_meta(session, c.high_key) or 0) >= last for c in CAPABILITIES)


def _upsert(session: Session, rows: list[tuple[str, str, int, int]], now: int) -> int:
    """New entities, pending from their first row (cursor 0), in their workspace."""
    if not rows:
        return 0
    known = {
        (t, i)
        for t, i in session.execute(
            select(SyncEntity.entity_type, SyncEntity.entity_id).where(
                tuple_(SyncEntity.entity_type, SyncEntity.entity_id).in_(
                    [(t, i) for t, i, _, _ in rows]
                )
            )
        )
    }
    new = [r for r in rows if (r[0], r[1]) not in known]
    if not new:
        return 0
    owners = ownership.workspaces_of(session, [(t, i) for t, i, _, _ in new])
    stmt = upsert_insert(session, SyncEntity).values(
        [
            {
                "entity_type": t,
                "entity_id": i,
                "cursor": 0,
                "metric_hwm": 0,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": 0,
                "first_pending_at": oldest,
                "updated_at": now,
                "state": "{}",
                "workspace": owners[(t, i)],
            }
            for t, i, _, oldest in new
        ]
    )
    inserted = session.execute(
        stmt.on_conflict_do_nothing(index_elements=["entity_type", "entity_id"]).returning(
            SyncEntity.entity_id
        )
    )
    return len(inserted.all())


def _mark_pending(session: Session, rows: list[tuple[str, str, int, int]]) -> int:
    """Synced entities with rows past their cursor become pending again (idempotent), from
    the oldest of their new rows."""
    last = {(t, i): n for t, i, n, _ in rows}
    oldest = {(t, i): o for t, i, _, o in rows}
    stale = [
        (t, i)
        for t, i, cursor in session.execute(
            select(SyncEntity.entity_type, SyncEntity.entity_id, SyncEntity.cursor).where(
                SyncEntity.status == SYNCED,
                tuple_(SyncEntity.entity_type, SyncEntity.entity_id).in_(list(last)),
            )
        )
        if cursor < last[(t, i)]
    ]
    if stale:
        stmt = (
            update(SyncEntity)
            .where(
                SyncEntity.entity_type == bindparam("t"),
                SyncEntity.entity_id == bindparam("i"),
                SyncEntity.status == SYNCED,
            )
            .values(status=PENDING, first_pending_at=bindparam("o"), next_attempt_at=0)
        )
        session.connection().execute(
            stmt, [{"t": t, "i": i, "o": oldest[(t, i)]} for t, i in stale]
        )
    return len(stale)


def _count_unsynced(session: Session, counts: list[tuple[str, int]]) -> None:
    totals: dict[str, int] = {}
    for entity_type, n in counts:
        totals[entity_type] = totals.get(entity_type, 0) + n
    for entity_type, n in totals.items():
        if n:
            key = UNSYNCED_PREFIX + entity_type
            set_meta(session, key, str(int(get_meta(session, key) or 0) + n))


def unsynced_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(SyncMeta.key, SyncMeta.value).where(SyncMeta.key.like(UNSYNCED_PREFIX + "%"))
    ).all()
    counts = {k[len(UNSYNCED_PREFIX) :]: int(v) for k, v in rows}
    # Counted by an older version, synced by this one: no longer "not synced"; kept-local
    # types are never synced by any version (`status.summary` counts them apart).
    return {t: n for t, n in counts.items() if t not in FULLY_SYNCED_TYPES | KEPT_LOCAL_TYPES}
