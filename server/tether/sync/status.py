"""What `tether sync status` and `GET /api/2.0/tether/sync/status` show, read from the store.

The counts are disjoint: an entity under a live lease is `in_flight`, whatever its status;
`waiting` (pending on a dependency or a short deferral) is part of `pending`.

Outbox rows no worker has discovered yet (sync never ran, or its worker cannot connect to the
workspace) belong to no entity yet: they are counted apart (`outbox.not_scanned`), and the
oldest of them counts for `oldest_pending_age_seconds` too, so the status never shows
"nothing pending" while work waits.

Lag (`lag`): `oldest_pending_age_seconds` is the age of the oldest write not yet in Azure ML
(an entity's `first_pending_at` is the creation time of its first undelivered outbox row, see
`state`), so under a steady load it stays small while the worker keeps up and grows when it
does not. The delivery rates are the entities' own figures (`delivery`), summed over those
that delivered within the window, whichever process delivered them.

Traces are never synced (Azure ML refuses them): they are counted as `kept_in_tether`, not
as work left for a later version; a run with traces says so in its report (written by the
trace service).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from tether.clock import now_ms
from tether.db.models import OutboxEntry, SyncEntity, SyncReport, TraceInfo, Workspace
from tether.sync import delivery, discovery, retiring, state
from tether.sync.schemas import (
    EntityBrief,
    EntityDetail,
    Lag,
    RunLag,
    SyncSummary,
    WorkspaceSync,
)
from tether.sync.sources import CAPABILITIES, rows_of
from tether.sync.state import Key

BUCKETS = ("pending", "in_flight", "synced", "failed", "dead")
_ERRORS_SHOWN = 20
_RUNS_SHOWN = 20


@dataclass(frozen=True)
class QueueSnapshot:
    """The queue as a few numbers (also read by /metrics and /ready, so kept cheap: grouped
    counts of `sync_entities` and outbox figures bounded by the discovery cursors)."""

    # entity type -> bucket (pending, in_flight, synced, failed, dead) -> count
    entities: dict[str, dict[str, int]] = field(default_factory=dict)
    waiting_on_dependency: int = 0
    oldest_entity_age_seconds: float | None = None  # of the oldest entity not yet synced
    outbox_last_id: int = 0
    outbox_unscanned_rows: int = 0  # appended, not yet discovered by the worker
    outbox_oldest_unscanned_age_seconds: float | None = None

    def total(self, bucket: str) -> int:
        return sum(counts.get(bucket, 0) for counts in self.entities.values())

    @property
    def lag_seconds(self) -> float | None:
        """Age of the oldest work not yet in Azure ML: an entity not synced, or a write the
        worker has not discovered (`oldest_pending_age_seconds`)."""
        ages = [self.oldest_entity_age_seconds, self.outbox_oldest_unscanned_age_seconds]
        known = [age for age in ages if age is not None]
        return max(known) if known else None


def queue(session: Session, now: int | None = None) -> QueueSnapshot:
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
    # A row is discovered once every capability's scan has read it.
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
    return QueueSnapshot(
        entities=entities,
        waiting_on_dependency=int(waiting or 0),
        oldest_entity_age_seconds=_age(now, oldest_pending),
        outbox_last_id=int(last_id or 0),
        outbox_unscanned_rows=int(unscanned or 0),
        outbox_oldest_unscanned_age_seconds=_age(now, oldest_unscanned),
    )


def summary(session: Session, now: int | None = None) -> SyncSummary:
    now = now_ms() if now is None else now
    snap = queue(session, now)
    return {
        "entities": {b: snap.total(b) for b in BUCKETS},
        "waiting_on_dependency": snap.waiting_on_dependency,
        "by_type": snap.entities,
        "oldest_pending_age_seconds": snap.lag_seconds,
        "outbox": {
            "last_id": snap.outbox_last_id,
            "scanned_to": int(discovery.get_meta(session, discovery.HIGH_CURSOR) or 0),
            "not_scanned": snap.outbox_unscanned_rows,
            "oldest_not_scanned_age_seconds": snap.outbox_oldest_unscanned_age_seconds,
        },
        "not_synced_by_this_version": {
            "outbox_rows_by_entity_type": discovery.unsynced_counts(session),
            "deferred_ops": _deferred_ops(session),
        },
        "kept_in_tether": {"traces": _count(session, TraceInfo.request_id)},
        "errors": _errors(session, now),
        "lag": lag(session, snap, now),
    }


def lag(session: Session, snap: QueueSnapshot, now: int) -> Lag:
    """Overall and per run: the age of the oldest write not yet in Azure ML, and the recent
    delivery rates (the runs behind first, then those delivering)."""
    since = now - delivery.WINDOW_S * 1000
    recent = session.execute(
        select(SyncEntity.entity_type, SyncEntity.entity_id, SyncEntity.state).where(
            SyncEntity.updated_at >= since
        )
    ).all()
    overall = delivery.Rates()
    rates: dict[str, delivery.Rates] = {}
    for entity_type, entity_id, text in recent:
        entity_rates = delivery.rates(_state(text), now)
        overall += entity_rates
        if entity_type == "run":
            rates[entity_id] = entity_rates
    behind = session.scalars(
        select(SyncEntity)
        .where(SyncEntity.entity_type == "run", SyncEntity.status != state.SYNCED)
        .order_by(SyncEntity.first_pending_at)
        .limit(_RUNS_SHOWN)
    ).all()
    shown = {row.entity_id for row in behind}
    runs = [_run_lag(session, row, now, rates.get(row.entity_id)) for row in behind]
    active = sorted(
        (r for r in rates.items() if r[0] not in shown and r[1].points_per_second > 0),
        key=lambda item: -item[1].points_per_second,
    )
    for run_id, run_rates in active[: max(0, _RUNS_SHOWN - len(runs))]:
        # Delivering and synced: no rows behind, so the key is left out (the text says nothing).
        synced = {"run": run_id, "status": state.SYNCED, "lag_seconds": 0.0}
        runs.append(cast(RunLag, synced | dict(run_rates.as_json())))
    return {
        "oldest_undelivered_write_age_seconds": snap.lag_seconds,
        "window_seconds": delivery.WINDOW_S,
        **overall.as_json(),
        "runs": runs,
    }


def _run_lag(session: Session, row: SyncEntity, now: int, rates: delivery.Rates | None) -> RunLag:
    key = Key(row.entity_type, row.entity_id)
    in_flight = row.lease_owner is not None and (row.lease_expires_at or 0) >= now
    return {
        "run": row.entity_id,
        "status": "in_flight" if in_flight else row.status,
        "lag_seconds": _age(now, row.first_pending_at),
        "outbox_rows_behind": _rows_behind(session, key, row.cursor),
        **(rates or delivery.rates(_state(row.state), now)).as_json(),
    }


def _rows_behind(session: Session, key: Key, cursor: int) -> int:
    return int(
        session.execute(
            select(func.count()).where(
                rows_of(key.entity_type, key.entity_id), OutboxEntry.id > cursor
            )
        ).scalar()
        or 0
    )


def _state(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _count(session: Session, column: Any) -> int:
    return int(session.execute(select(func.count(column))).scalar() or 0)


def _age(now: int, since_ms: int | None) -> float | None:
    return None if since_ms is None else max(0.0, round((now - since_ms) / 1000, 3))


def _deferred_ops(session: Session) -> int:
    return int(
        session.execute(select(func.count()).where(SyncReport.kind == "deferred")).scalar() or 0
    )


def _failing(now: int) -> Any:
    """Failed or dead, or in flight with a call retrying a failed attempt right now
    (`state.note_retry`): what the errors and a workspace's `last_error` show."""
    leased = and_(SyncEntity.lease_owner.is_not(None), SyncEntity.lease_expires_at >= now)
    retrying = and_(leased, SyncEntity.last_error.is_not(None))
    return or_(SyncEntity.status.in_((state.FAILED, state.DEAD)), retrying)


def _errors(session: Session, now: int) -> list[EntityBrief]:
    rows = session.scalars(
        select(SyncEntity)
        .where(_failing(now))
        .order_by(SyncEntity.updated_at.desc())
        .limit(_ERRORS_SHOWN)
    )
    return [_brief(row, now) for row in rows]


def _brief(row: SyncEntity, now: int) -> EntityBrief:
    return {
        "entity": f"{row.entity_type}:{row.entity_id}",
        "status": row.status,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "waiting_on": row.waiting_on,
        "next_attempt_in_seconds": (
            max(0.0, round((row.next_attempt_at - now) / 1000, 3))
            if row.status in (state.FAILED, state.PENDING)
            else None
        ),
    }


def entity_detail(session: Session, key: Key, now: int | None = None) -> EntityDetail | None:
    now = now_ms() if now is None else now
    row = state.get(session, key)
    if row is None:
        return None
    behind = _rows_behind(session, key, row.cursor)
    reports = session.scalars(
        select(SyncReport)
        .where(SyncReport.entity_type == key.entity_type, SyncReport.entity_id == key.entity_id)
        .order_by(SyncReport.id)
    )
    in_flight = row.lease_owner is not None and (row.lease_expires_at or 0) >= now
    return {
        **_brief(row, now),
        "azure_id": row.azure_id,
        "in_flight": in_flight,
        "lease_owner": row.lease_owner if in_flight else None,
        "cursor": row.cursor,
        "metric_hwm": row.metric_hwm,
        "outbox_rows_behind": behind,
        "lag_seconds": None if row.status == state.SYNCED else _age(now, row.first_pending_at),
        "delivery": {
            "window_seconds": delivery.WINDOW_S,
            **delivery.rates(_state(row.state), now).as_json(),
        },
        "report": [
            {"kind": r.kind, "subject": r.subject, "reason": r.reason, "outbox_id": r.outbox_id}
            for r in reports
        ],
    }


def bucket_counts(
    session: Session, workspaces: list[str], now: int | None = None
) -> dict[str, int]:
    """Bucket -> count over the entities of `workspaces` (what `tether sync run` reports)."""
    counts = dict.fromkeys(BUCKETS, 0)
    for _, bucket, n in _workspace_buckets(session, now_ms() if now is None else now, workspaces):
        counts[bucket] += n
    return counts


def _workspace_buckets(
    session: Session, now: int, workspaces: list[str] | None = None
) -> list[tuple[str, str, int]]:
    leased = and_(SyncEntity.lease_owner.is_not(None), SyncEntity.lease_expires_at >= now)
    bucket = case((leased, "in_flight"), else_=SyncEntity.status)
    query = select(SyncEntity.workspace, bucket, func.count()).group_by(
        SyncEntity.workspace, bucket
    )
    if workspaces is not None:
        query = query.where(SyncEntity.workspace.in_(workspaces))
    return [(w, str(b), int(n)) for w, b, n in session.execute(query)]


def by_workspace(
    session: Session, bound: dict[str, tuple[str, str]], now: int | None = None
) -> dict[str, WorkspaceSync]:
    """Every workspace's sync state. `bound`: workspace -> (how it is bound: `server` or
    `bound`, its Azure ML workspace); the others are local-only, a deleted one whose binding
    still retires is `deleted (draining)` (tether.sync.retiring). A name that is no workspace
    (deleted) is listed only while some entity of it is not synced."""
    now = now_ms() if now is None else now
    names = set(session.scalars(select(Workspace.name))) | set(bound)
    draining = retiring.retiring_names(session)
    out: dict[str, WorkspaceSync] = {}
    for name in sorted(names | draining):
        kind, identity = bound.get(name, ("local-only", None))
        if name in draining:  # deleted, its binding kept until its work is delivered
            kind = retiring.DRAINING
        out[name] = {
            "binding": kind,
            "azureml_workspace": identity,
            "entities": dict.fromkeys(BUCKETS, 0),
            "oldest_pending_age_seconds": None,
            "last_error": None,
        }
    buckets = _workspace_buckets(session, now)
    # A deleted workspace's entities once its binding drained and went: not a workspace any
    # more, nothing to report unless something of it is left undelivered.
    left = {name for name, bucket, _ in buckets if bucket != "synced"}
    for name, bucket, n in buckets:
        if name not in out and name not in left:
            continue
        entry = out.setdefault(
            name,
            {
                "binding": "local-only",
                "azureml_workspace": None,
                "entities": dict.fromkeys(BUCKETS, 0),
                "oldest_pending_age_seconds": None,
                "last_error": None,
            },
        )
        entry["entities"][bucket] = n
    oldest = session.execute(
        select(SyncEntity.workspace, func.min(SyncEntity.first_pending_at))
        .where(SyncEntity.status != state.SYNCED)
        .group_by(SyncEntity.workspace)
    )
    for name, first in oldest:
        if name in out:
            out[name]["oldest_pending_age_seconds"] = _age(now, first)
    for name in out:
        out[name]["last_error"] = session.execute(
            select(SyncEntity.last_error)
            .where(
                SyncEntity.workspace == name,
                _failing(now),
                SyncEntity.last_error.is_not(None),
            )
            .order_by(SyncEntity.updated_at.desc())
            .limit(1)
        ).scalar()
    return out


def due_soon(
    session: Session, within_ms: int, now: int | None = None, *, workspace: str | None = None
) -> int:
    """Entities a drain should still wait for: pending or failed, due within `within_ms`
    (of one workspace when given)."""
    now = now_ms() if now is None else now
    where = [
        SyncEntity.status.in_((state.PENDING, state.FAILED)),
        SyncEntity.next_attempt_at <= now + within_ms,
    ]
    if workspace is not None:
        where.append(SyncEntity.workspace == workspace)
    return int(session.execute(select(func.count()).where(*where)).scalar() or 0)
