"""Metric points: set-based inserts, latest-value upkeep, history reads and SQL sampling."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, select, text
from sqlalchemy.orm import Session

from tether.db.dialect import in_list
from tether.db.engine import fetch_tuples
from tether.db.models import Metric
from tether.db.raw import Statement

# Infinities are clamped like MLflow does, so both backends store and order them the same way.
_DBL_MAX = 1.7976931348623157e308


class Point(NamedTuple):
    """A sanitized metric point. A tuple: cheap to build, hash and dedupe in bulk."""

    key: str
    value: float
    timestamp: int
    step: int
    is_nan: bool


def sanitized_points(items: Iterable[Sequence[Any]]) -> list[Point]:
    """Points from validated (key, value, timestamp, step, ...) tuples, as MLflow's store keeps
    them: NaN as 0 with a flag, infinities clamped (so both backends store and order them
    alike). One loop without per-point calls: log-batch sanitizes a thousand per request."""
    points: list[Point] = []
    append = points.append
    new = tuple.__new__  # skips the generated keyword-handling constructor
    for item in items:
        key, value, timestamp, step = item[0], item[1], item[2], item[3]
        if value != value:
            append(new(Point, (key, 0.0, timestamp, step, True)))
        elif -_DBL_MAX <= value <= _DBL_MAX:
            append(new(Point, (key, value, timestamp, step, False)))
        else:
            append(new(Point, (key, _DBL_MAX if value > 0 else -_DBL_MAX, timestamp, step, False)))
    return points


# One constant statement per backend (an executemany on SQLite, one insert of column arrays
# on PostgreSQL): building a 1000-row VALUES clause through SQLAlchemy's compiler cost more
# than the insert itself.
_SQLITE_INSERT = (
    "INSERT INTO metrics (run_uuid, key, value, timestamp, step, is_nan)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_PG_INSERT = text(
    'INSERT INTO metrics (run_uuid, "key", value, timestamp, step, is_nan)'
    " SELECT :run_uuid, * FROM unnest(CAST(:keys AS text[]), CAST(:values AS float8[]),"
    " CAST(:timestamps AS bigint[]), CAST(:steps AS bigint[]), CAST(:nans AS boolean[]))"
    " ON CONFLICT DO NOTHING RETURNING id"
)


def insert_points(session: Session, run_id: str, points: Sequence[Point]) -> list[int]:
    """Insert distinct points (duplicates of stored ones are skipped); returns the new ids."""
    unique = list(dict.fromkeys(points))
    if not unique:
        return []
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        ids = _insert_sqlite(connection, run_id, unique)
    else:
        # One statement with one array per column (unnest): no per-row SQL or parameters.
        keys, values, timestamps, steps, nans = (list(c) for c in zip(*unique, strict=True))
        result = connection.execute(
            _PG_INSERT,
            {
                "run_uuid": run_id,
                "keys": keys,
                "values": values,
                "timestamps": timestamps,
                "steps": steps,
                "nans": nans,
            },
        )
        ids = [row[0] for row in result]
    _update_latest(session, run_id, unique)
    return ids


def _insert_sqlite(connection: Connection, run_id: str, points: list[Point]) -> list[int]:
    """One executemany on the DBAPI cursor. The new ids are contiguous: writers take turns
    on one connection (db.group_commit), `metrics.id` is the rowid, and SQLite gives each
    inserted row max(rowid) + 1; conflicting rows consume no id. So the ids are the
    `rowcount` values ending at last_insert_rowid()."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(_SQLITE_INSERT, [(run_id, *p) for p in points])
        inserted = cursor.rowcount
        if inserted <= 0:
            return []
        last = cursor.execute("SELECT last_insert_rowid()").fetchone()[0]
    finally:
        cursor.close()
    return list(range(last - inserted + 1, last + 1))


# One statement text for both backends (row-value comparison: SQLite >= 3.15, PostgreSQL),
# executed with a parameter list: SQLAlchemy recompiled the equivalent ON CONFLICT construct
# on every call, the largest cost of a single log-metric. Every write bumps points_version
# (the sample cache's stamp); the latest point only moves forward. In an UPDATE's SET list
# `latest_metrics.*` is the row before the update, so the CASEs agree with each other.
_NEWER = (
    "(excluded.step, excluded.timestamp, excluded.value)"
    " > (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)"
)
_UPSERT_LATEST = Statement(
    'INSERT INTO latest_metrics (run_uuid, "key", value, timestamp, step, is_nan, points_version)'
    " VALUES (:run_uuid, :key, :value, :timestamp, :step, :is_nan, 1)"
    ' ON CONFLICT (run_uuid, "key") DO UPDATE SET'
    " points_version = latest_metrics.points_version + 1,"
    + ",".join(
        f" {column} = CASE WHEN {_NEWER} THEN excluded.{column} ELSE latest_metrics.{column} END"
        for column in ("value", "timestamp", "step", "is_nan")
    )
)


def _update_latest(session: Session, run_id: str, points: Sequence[Point]) -> None:
    """Keep the latest point per key by (step, timestamp, value), as MLflow does."""
    newest: dict[str, Point] = {}
    for p in points:
        current = newest.get(p.key)
        if current is None or (p.step, p.timestamp, p.value) > (
            current.step,
            current.timestamp,
            current.value,
        ):
            newest[p.key] = p
    _UPSERT_LATEST.executemany(
        session,
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
        ],
    )


def history(
    session: Session, run_id: str, key: str, offset: int, limit: int | None
) -> list[tuple[Any, ...]]:
    """(value, is_nan, timestamp, step) tuples (raw DBAPI rows: is_nan may be 0/1)."""
    stmt = (
        select(Metric.value, Metric.is_nan, Metric.timestamp, Metric.step)
        .where(Metric.run_uuid == run_id, Metric.key == key)
        .order_by(Metric.timestamp, Metric.step, Metric.value)
        .offset(offset)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return fetch_tuples(session, stmt)


def history_bulk(
    session: Session, run_ids: Sequence[str], key: str, limit: int
) -> list[tuple[Any, ...]]:
    """(run_uuid, value, is_nan, timestamp, step) of every point of `key` of the runs, in
    MLflow's order (run id, timestamp, step, value), at most `limit`."""
    stmt = (
        select(Metric.run_uuid, Metric.value, Metric.is_nan, Metric.timestamp, Metric.step)
        .where(Metric.key == key, in_list(session, Metric.run_uuid, run_ids))
        .order_by(Metric.run_uuid, Metric.timestamp, Metric.step, Metric.value)
        .limit(limit)
    )
    return fetch_tuples(session, stmt)


class SampledPoint(NamedTuple):
    run_uuid: str
    value: float
    is_nan: bool
    timestamp: int
    step: int


def sampled_history(
    session: Session,
    run_ids: Sequence[str],
    key: str,
    max_results: int,
    step_range: tuple[int, int] | None,
) -> list[SampledPoint]:
    """Per run: the first point of each of `max_results` equal buckets plus the last point,
    in (step, timestamp, value) order; the same sampling as MLflow's SQL store.

    MLflow numbers the points with NTILE; which rows head a bucket only depends on the
    point count, so this reads the run's point ids in order (a covering scan of the unique
    index, no sort, no window functions), picks the positions in Python and loads just
    those rows. Several times faster than window functions over the whole history. A
    repeated request for unchanged points is answered from `_SAMPLES` after one key lookup.
    """
    result: list[SampledPoint] = []
    for run_id in run_ids:
        version = _POINTS_VERSION.scalar(session, {"run_uuid": run_id, "key": key})
        if version is None:  # no point under this key
            continue
        cache_key = (run_id, key, step_range, max_results, version)
        cached = _SAMPLES.get(cache_key)
        if cached is not None:
            result.extend(cached)
            continue
        filters = [Metric.run_uuid == run_id, Metric.key == key]
        if step_range is not None:
            filters.append(and_(Metric.step >= step_range[0], Metric.step <= step_range[1]))
        ids = fetch_tuples(session, select(Metric.id).where(*filters).order_by(*_SAMPLE_ORDER))
        picked = [ids[i][0] for i in sample_positions(len(ids), max_results)]
        rows = {
            row[0]: row
            for row in fetch_tuples(
                session,
                select(Metric.id, Metric.value, Metric.is_nan, Metric.timestamp, Metric.step).where(
                    Metric.id.in_(picked)
                ),
            )
        }
        sample = []
        for metric_id in picked:
            _, value, is_nan, timestamp, step = rows[metric_id]
            sample.append(SampledPoint(run_id, value, bool(is_nan), timestamp, step))
        _SAMPLES.put(cache_key, sample)
        result.extend(sample)
    return result


_POINTS_VERSION = Statement(
    'SELECT points_version FROM latest_metrics WHERE run_uuid = :run_uuid AND "key" = :key'
)


class _SampleCache:
    """Recent samples, for charts that poll the same metrics (the UI refreshes them).

    Keyed by the key's points_version as read before the points: every write of the key's
    points bumps it in the transaction that adds them (points are never updated; removed
    only with their run, and its latest_metrics row with them), so an unchanged version
    means an unchanged set of points, on SQLite and on PostgreSQL, whichever process wrote
    them. A write that commits between the two reads leaves a sample newer than its key
    says: still a committed state, and the next read of the version misses. Bounded;
    thread-safe (threadpool readers).
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Hashable, list[SampledPoint]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> list[SampledPoint] | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: Hashable, sample: list[SampledPoint]) -> None:
        with self._lock:
            self._items[key] = sample
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


# 256 samples of at most 2500 points: a few MB at most.
_SAMPLES = _SampleCache(256)

_SAMPLE_ORDER = (Metric.step, Metric.timestamp, Metric.value, Metric.is_nan)


def sample_positions(count: int, buckets: int) -> list[int]:
    """Positions (0-based, ascending) of the sampled points among `count` ordered points.

    NTILE(buckets) gives the first `count % buckets` buckets one point more than the rest
    (each point its own bucket when count <= buckets). The sample is each bucket's first
    point, with the last point appended, or replacing the final head when already full,
    exactly as MLflow trims it.
    """
    if count <= buckets:
        return list(range(count))
    size, bigger = divmod(count, buckets)
    heads = [b * (size + 1) for b in range(bigger)]
    offset = bigger * (size + 1)
    heads.extend(offset + k * size for k in range(buckets - bigger))
    last = count - 1
    if heads[-1] != last:
        if len(heads) >= buckets:
            heads[-1] = last
        else:
            heads.append(last)
    return heads
