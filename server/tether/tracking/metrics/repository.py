"""Metric points: set-based inserts, latest-value upkeep, history reads and SQL sampling."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select, tuple_
from sqlalchemy.orm import Session

from tether.db.dialect import upsert_insert
from tether.db.models import LatestMetric, Metric

# Infinities are clamped like MLflow does, so both backends store and order them the same way.
_DBL_MAX = 1.7976931348623157e308


@dataclass(frozen=True, slots=True)
class Point:
    key: str
    value: float
    timestamp: int
    step: int
    is_nan: bool

    @classmethod
    def sanitized(cls, key: str, value: float, timestamp: int, step: int) -> Point:
        if value != value:  # NaN is stored as 0 with a flag, as in MLflow's schema.
            return cls(key, 0.0, timestamp, step, True)
        if value in (float("inf"), float("-inf")):
            value = _DBL_MAX if value > 0 else -_DBL_MAX
        return cls(key, value, timestamp, step, False)

    def order_key(self) -> tuple[int, int, float]:
        return (self.step, self.timestamp, self.value)


def insert_points(session: Session, run_id: str, points: Sequence[Point]) -> list[int]:
    """Insert distinct points (duplicates of stored ones are skipped); returns the new ids."""
    unique = list(dict.fromkeys(points))
    if not unique:
        return []
    stmt = (
        upsert_insert(session, Metric)
        .values(
            [
                {
                    "run_uuid": run_id,
                    "key": p.key,
                    "value": p.value,
                    "timestamp": p.timestamp,
                    "step": p.step,
                    "is_nan": p.is_nan,
                }
                for p in unique
            ]
        )
        .on_conflict_do_nothing()
        .returning(Metric.id)
    )
    ids = list(session.scalars(stmt))
    _update_latest(session, run_id, unique)
    return ids


def _update_latest(session: Session, run_id: str, points: Sequence[Point]) -> None:
    newest: dict[str, Point] = {}
    for p in points:
        current = newest.get(p.key)
        if current is None or p.order_key() > current.order_key():
            newest[p.key] = p
    stmt = upsert_insert(session, LatestMetric).values(
        [
            {
                "run_uuid": run_id,
                "key": p.key,
                "value": p.value,
                "timestamp": p.timestamp,
                "step": p.step,
                "is_nan": p.is_nan,
            }
            for p in newest.values()
        ]
    )
    excluded = stmt.excluded
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[LatestMetric.run_uuid, LatestMetric.key],
            set_={
                "value": excluded.value,
                "timestamp": excluded.timestamp,
                "step": excluded.step,
                "is_nan": excluded.is_nan,
            },
            where=tuple_(excluded.step, excluded.timestamp, excluded.value)
            > tuple_(LatestMetric.step, LatestMetric.timestamp, LatestMetric.value),
        )
    )


def history(session: Session, run_id: str, key: str, offset: int, limit: int | None) -> list[Any]:
    stmt = (
        select(Metric.key, Metric.value, Metric.is_nan, Metric.timestamp, Metric.step)
        .where(Metric.run_uuid == run_id, Metric.key == key)
        .order_by(Metric.timestamp, Metric.step, Metric.value)
        .offset(offset)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.execute(stmt))


def sampled_history(
    session: Session,
    run_ids: Sequence[str],
    key: str,
    max_results: int,
    step_range: tuple[int, int] | None,
) -> list[Any]:
    """Per run: the first point of each of `max_results` equal buckets plus the last point.

    The same sampling as MLflow's SQL store, done for all runs in one window-function query.
    """
    filters = [Metric.run_uuid.in_(run_ids), Metric.key == key]
    if step_range is not None:
        filters.append(and_(Metric.step >= step_range[0], Metric.step <= step_range[1]))
    order = (Metric.step, Metric.timestamp, Metric.value, Metric.is_nan)
    numbered = (
        select(
            Metric.run_uuid,
            Metric.value,
            Metric.is_nan,
            Metric.timestamp,
            Metric.step,
            func.ntile(max_results).over(partition_by=Metric.run_uuid, order_by=order).label("b"),
            func.row_number()
            .over(
                partition_by=Metric.run_uuid,
                order_by=[o.desc() for o in order],
            )
            .label("from_end"),
        )
        .where(*filters)
        .subquery()
    )
    c = numbered.c
    ranked = select(
        c.run_uuid,
        c.value,
        c.is_nan,
        c.timestamp,
        c.step,
        c.b,
        c.from_end,
        func.row_number()
        .over(partition_by=(c.run_uuid, c.b), order_by=(c.step, c.timestamp, c.value, c.is_nan))
        .label("rn"),
    ).subquery()
    r = ranked.c
    rows = session.execute(
        select(r.run_uuid, r.value, r.is_nan, r.timestamp, r.step, r.b, r.rn, r.from_end)
        .where((r.rn == 1) | (r.from_end == 1))
        .order_by(r.run_uuid, r.step, r.timestamp, r.value, r.is_nan)
    ).all()
    return _keep_bucket_heads_and_last(rows, max_results)


def _keep_bucket_heads_and_last(rows: Sequence[Any], max_results: int) -> list[Any]:
    """Bucket heads, with the run's last point appended (or replacing the final head when
    the sample is already full), exactly as MLflow trims it."""
    by_run: dict[str, list[Any]] = {}
    for row in rows:
        by_run.setdefault(row.run_uuid, []).append(row)
    result: list[Any] = []
    for run_rows in by_run.values():
        heads = [row for row in run_rows if row.rn == 1]
        last = next(row for row in run_rows if row.from_end == 1)
        if not heads or heads[-1] is not last:
            if len(heads) >= max_results:
                heads[-1] = last
            else:
                heads.append(last)
        result.extend(heads)
    return result
