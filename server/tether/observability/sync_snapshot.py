"""The sync queue as a few numbers, read from the database (for /metrics and /ready).

Cheap on purpose: grouped counts of `sync_entities`, and outbox figures bounded by the
discovery cursors (an index range on the primary key), never a scan of the metric tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from tether.clock import now_ms
from tether.db.models import OutboxEntry, SyncEntity
from tether.sync import discovery, state
from tether.sync.sources import CAPABILITIES
from tether.sync.status import BUCKETS


@dataclass(frozen=True)
class SyncSnapshot:
    # entity type -> bucket (pending, in_flight, synced, failed, dead) -> count
    entities: dict[str, dict[str, int]] = field(default_factory=dict)
    waiting_on_dependency: int = 0
    oldest_entity_age_seconds: float | None = None  # of the oldest entity not yet synced
    outbox_last_id: int = 0
    outbox_unscanned_rows: int = 0  # appended, not yet picked up by the sync worker
    outbox_oldest_unscanned_age_seconds: float | None = None

    def total(self, bucket: str) -> int:
        return sum(counts.get(bucket, 0) for counts in self.entities.values())

    @property
    def lag_seconds(self) -> float | None:
        """Age of the oldest work not yet in Azure ML: an entity not synced, or a write the
        worker has not picked up (as `oldest_pending_age_seconds` of `tether sync status`)."""
        ages = [self.oldest_entity_age_seconds, self.outbox_oldest_unscanned_age_seconds]
        known = [age for age in ages if age is not None]
        return max(known) if known else None


def take(session: Session, now: int | None = None) -> SyncSnapshot:
    now = now_ms() if now is None else now
    leased = and_(SyncEntity.lease_owner.is_not(None), SyncEntity.lease_expires_at >= now)
    bucket = case((leased, "in_flight"), else_=SyncEntity.status)
    entities: dict[str, dict[str, int]] = {}
    for entity_type, name, n in session.execute(
        select(SyncEntity.entity_type, bucket, func.count()).group_by(
            SyncEntity.entity_type, bucket
        )
    ):
        entities.setdefault(entity_type, dict.fromkeys(BUCKETS, 0))[name] = int(n)
    oldest_pending = session.execute(
        select(func.min(SyncEntity.first_pending_at)).where(SyncEntity.status != state.SYNCED)
    ).scalar()
    waiting = session.execute(
        select(func.count()).where(
            SyncEntity.status == state.PENDING, SyncEntity.waiting_on.is_not(None)
        )
    ).scalar()
    # Every capability scans the whole outbox: a row is picked up once the slowest has read it.
    scanned_to = min(int(discovery.get_meta(session, c.high_key) or 0) for c in CAPABILITIES)
    last_id, unscanned, oldest_unscanned = session.execute(
        select(
            select(func.max(OutboxEntry.id)).scalar_subquery(),
            select(func.count()).where(OutboxEntry.id > scanned_to).scalar_subquery(),
            select(OutboxEntry.created_at)
            .where(OutboxEntry.id > scanned_to)
            .order_by(OutboxEntry.id)
            .limit(1)
            .scalar_subquery(),
        )
    ).one()
    return SyncSnapshot(
        entities=entities,
        waiting_on_dependency=int(waiting or 0),
        oldest_entity_age_seconds=_age(now, oldest_pending),
        outbox_last_id=int(last_id or 0),
        outbox_unscanned_rows=int(unscanned or 0),
        outbox_oldest_unscanned_age_seconds=_age(now, oldest_unscanned),
    )


def _age(now: int, since_ms: int | None) -> float | None:
    return None if since_ms is None else max(0.0, round((now - since_ms) / 1000, 3))
