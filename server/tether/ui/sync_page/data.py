"""What the sync page shows, read from the store in one read transaction.

Per experiment and run: its sync state (the `tether sync status` buckets: pending, in
flight, synced, failed, dead), attempts, the oldest write not yet in Azure ML
(`first_pending_at`), the last error and, once created there, its Azure id (for the studio
link). Entities of the other types (files, logged models, registry) are counted in the
summary and listed when dead or failed (with the retry button), not row by row. A list shows
at most `LIMIT` rows, most recently changed first; `status` and `experiment` narrow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, case, cast, func, null, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from tether.clock import now_ms
from tether.db.models import Experiment, Run, SyncEntity
from tether.sync import status as sync_status
from tether.sync.schemas import SyncSummary

LIMIT = 200
BUCKETS = sync_status.BUCKETS


@dataclass(frozen=True)
class Row:
    entity_type: str
    entity_id: str
    name: str  # experiment or run name ("" for other types)
    experiment_id: str | None  # the run's experiment; the experiment's own id
    status: str  # a bucket: pending, in_flight, synced, failed, dead
    attempts: int
    pending_for_seconds: float | None  # age of the oldest write not yet in Azure ML
    last_error: str | None
    waiting_on: str | None
    azure_id: str | None

    @property
    def key(self) -> str:
        return f"{self.entity_type}:{self.entity_id}"


@dataclass(frozen=True)
class Listing:
    rows: list[Row]
    total: int  # rows matching the filters, of which `rows` shows at most LIMIT


@dataclass(frozen=True)
class Page:
    summary: SyncSummary  # sync.status.summary
    experiments: Listing
    runs: Listing
    problems: Listing  # failed and dead entities of every type


def _bucket(now: int) -> ColumnElement[str]:
    leased = and_(SyncEntity.lease_owner.is_not(None), SyncEntity.lease_expires_at >= now)
    return case((leased, "in_flight"), else_=SyncEntity.status)


def load(session: Session, status: str | None, experiment: str | None) -> Page:
    now = now_ms()
    bucket = _bucket(now)
    exp_id_text = cast(Experiment.experiment_id, String)
    experiments = _listing(
        session,
        select(SyncEntity, bucket, Experiment.name, exp_id_text).outerjoin(
            Experiment, exp_id_text == SyncEntity.entity_id
        ),
        (SyncEntity.entity_type == "experiment"),
        bucket,
        status,
        now,
        experiment_filter=(SyncEntity.entity_id == experiment) if experiment else None,
    )
    run_exp_text = cast(Run.experiment_id, String)
    runs = _listing(
        session,
        select(SyncEntity, bucket, Run.name, run_exp_text).outerjoin(
            Run, Run.run_uuid == SyncEntity.entity_id
        ),
        (SyncEntity.entity_type == "run"),
        bucket,
        status,
        now,
        experiment_filter=(run_exp_text == experiment) if experiment else None,
    )
    problems = _listing(
        session,
        select(SyncEntity, bucket, null(), null()),
        SyncEntity.status.in_(("failed", "dead")),
        bucket,
        None,
        now,
    )
    return Page(sync_status.summary(session, now), experiments, runs, problems)


def _listing(
    session: Session,
    query: Any,
    where: ColumnElement[bool],
    bucket: ColumnElement[str],
    status: str | None,
    now: int,
    experiment_filter: ColumnElement[bool] | None = None,
) -> Listing:
    conditions = [where]
    if status:
        conditions.append(bucket == status)
    if experiment_filter is not None:
        conditions.append(experiment_filter)
    total = session.execute(
        select(func.count()).select_from(query.where(*conditions).subquery())
    ).scalar_one()
    result = session.execute(
        query.where(*conditions)
        .order_by(SyncEntity.updated_at.desc(), SyncEntity.entity_id)
        .limit(LIMIT)
    )
    rows = [_row(entity, name, bucket_name, exp, now) for entity, bucket_name, name, exp in result]
    return Listing(rows, int(total))


def _row(entity: SyncEntity, name: str | None, bucket: str, exp: str | None, now: int) -> Row:
    pending = entity.first_pending_at
    return Row(
        entity_type=entity.entity_type,
        entity_id=entity.entity_id,
        name=name or "",
        experiment_id=exp,
        status=bucket,
        attempts=entity.attempts,
        pending_for_seconds=None if pending is None else max(0.0, (now - pending) / 1000),
        last_error=entity.last_error,
        waiting_on=entity.waiting_on,
        azure_id=entity.azure_id,
    )
