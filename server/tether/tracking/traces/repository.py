"""Queries over traces and their children. No HTTP, no validation: the service decides."""

from __future__ import annotations

import functools
from collections import defaultdict, namedtuple
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from tether.db.dialect import in_list, upsert_insert
from tether.db.engine import fetch_tuples
from tether.db.models import (
    Assessment,
    TraceInfo,
    TraceMetadata,
    TracePromptLink,
    TraceRunLink,
    TraceSpan,
    TraceSpanSegment,
    TraceTag,
)
from tether.db.raw import Statement
from tether.search.sql import dialect_name
from tether.tracking.traces.spans import SpanRef


def _table(model: Any) -> Table:
    """A model's Core table: Core statements skip the ORM's per-statement work."""
    table: Table = model.__table__
    return table


_INFO = _table(TraceInfo)
_ASSESSMENTS = _table(Assessment)

# Rows are read as the DBAPI returns them, as named tuples with the columns as attributes
# (what `serialize` reads): SQLAlchemy's Row objects and ORM entities cost more than the
# queries on a search page (every column here needs no type processing: str, int, float; a
# Boolean is 0/1 on SQLite, which `serialize` reads with bool()).
_named_tuple: Any = namedtuple  # built from the tables' columns: typed as Any
InfoRow: Any = _named_tuple("InfoRow", [c.name for c in _INFO.columns])
AssessmentRow: Any = _named_tuple("AssessmentRow", [c.name for c in _ASSESSMENTS.columns])
_INFO_COLUMNS = ", ".join(c.name for c in _INFO.columns)
_ASSESSMENT_COLUMNS = ", ".join(c.name for c in _ASSESSMENTS.columns)

# Children are read for this many traces per query: a search page is at most 500 traces.
_CHUNK = 500


@dataclass
class TraceRead:
    """One trace with its children, as loaded: `row` is an `InfoRow` of `trace_info`."""

    row: Any
    tags: dict[str, str | None] = field(default_factory=dict)
    metadata: dict[str, str | None] = field(default_factory=dict)
    assessments: list[Any] = field(default_factory=list)  # AssessmentRow, oldest first


class _ByIds:
    """A constant statement over a list of trace ids bound as one parameter (`:ids`): a JSON
    array read by `json_each` on SQLite, an array with `= ANY` on PostgreSQL (as
    `dialect.in_list`), run on the DBAPI cursor (`tether.db.raw`)."""

    def __init__(self, sql: str) -> None:
        self._sqlite = Statement(sql.format(ids="(SELECT value FROM json_each(:ids))"))
        self._postgresql = Statement(sql.format(ids="ANY(:ids)").replace("IN ANY", "= ANY"))

    def all(self, session: Session, ids: Sequence[str]) -> list[tuple[Any, ...]]:
        if dialect_name(session) == "postgresql":
            return self._postgresql.all(session, {"ids": list(ids)})
        return self._sqlite.all(session, {"ids": orjson.dumps(list(ids)).decode()})


_INFO_ONE = Statement(f"SELECT {_INFO_COLUMNS} FROM trace_info WHERE request_id = :id")
_TAGS_ONE = Statement("SELECT key, value FROM trace_tags WHERE request_id = :id")
_METADATA_ONE = Statement("SELECT key, value FROM trace_request_metadata WHERE request_id = :id")
_ASSESSMENTS_ONE = Statement(
    f"SELECT {_ASSESSMENT_COLUMNS} FROM assessments WHERE trace_id = :id"
    " ORDER BY created_timestamp, assessment_id"
)
_TAGS_MANY = _ByIds("SELECT request_id, key, value FROM trace_tags WHERE request_id IN {ids}")
_METADATA_MANY = _ByIds(
    "SELECT request_id, key, value FROM trace_request_metadata WHERE request_id IN {ids}"
)
_ASSESSMENTS_MANY = _ByIds(
    f"SELECT {_ASSESSMENT_COLUMNS} FROM assessments WHERE trace_id IN {{ids}}"
    " ORDER BY created_timestamp, assessment_id"
)


_INFO_LOCKED = Statement(
    select(_INFO).where(_INFO.c.request_id == bindparam("id")).with_for_update()
)
_INSERT_INFO = Statement(
    f"INSERT INTO trace_info ({_INFO_COLUMNS})"
    f" VALUES ({', '.join(':' + c.name for c in _INFO.columns)})"
)


def row_for_update(session: Session, trace_id: str) -> Any:
    """The trace's `InfoRow` (None: no such trace), locked until the transaction ends on
    PostgreSQL (SQLite's writer holds the whole database already)."""
    found = _INFO_LOCKED.first(session, {"id": trace_id})
    return None if found is None else InfoRow._make(found)


def insert_row(session: Session, values: Mapping[str, Any]) -> None:
    """A new `trace_info` row: one constant INSERT of every column (unnamed ones NULL)."""
    _INSERT_INFO.run(session, {c: values.get(c) for c in InfoRow._fields})


def get(session: Session, trace_id: str, *, for_update: bool = False) -> TraceInfo | None:
    stmt = select(TraceInfo).where(TraceInfo.request_id == trace_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


def existing(session: Session, trace_ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(trace_ids), _CHUNK):
        chunk = trace_ids[start : start + _CHUNK]
        found.update(
            session.scalars(select(TraceInfo.request_id).where(TraceInfo.request_id.in_(chunk)))
        )
    return found


_SPANS_PATHS = _ByIds(
    "SELECT request_id, spans_path, experiment_id FROM trace_info WHERE request_id IN {ids}"
)


def spans_paths(session: Session, trace_ids: Sequence[str]) -> list[tuple[str, str | None, int]]:
    """(trace id, spans path, experiment id) of the traces of `trace_ids` that exist."""
    return [(t, p, int(e)) for t, p, e in _SPANS_PATHS.all(session, trace_ids)]


def load_one(session: Session, trace_id: str) -> TraceRead | None:
    """One trace with its children: four constant statements on the cursor."""
    found = _INFO_ONE.first(session, {"id": trace_id})
    if found is None:
        return None
    params = {"id": trace_id}
    return TraceRead(
        InfoRow._make(found),
        dict(_TAGS_ONE.all(session, params)),
        dict(_METADATA_ONE.all(session, params)),
        [AssessmentRow._make(a) for a in _ASSESSMENTS_ONE.all(session, params)],
    )


def load(
    session: Session, trace_ids: Sequence[str], experiment_ids: Sequence[int] | None = None
) -> list[TraceRead]:
    """The traces of `trace_ids` that exist (within `experiment_ids` if given), in that order,
    with their tags, metadata and assessments."""
    if len(trace_ids) == 1 and experiment_ids is None:
        one = load_one(session, trace_ids[0])
        return [] if one is None else [one]
    rows: dict[str, Any] = {}
    for start in range(0, len(trace_ids), _CHUNK):
        chunk = list(trace_ids[start : start + _CHUNK])
        stmt = select(_INFO).where(in_list(session, _INFO.c.request_id, chunk))
        if experiment_ids is not None:
            stmt = stmt.where(_INFO.c.experiment_id.in_(list(experiment_ids)))
        for found in fetch_tuples(session, stmt):
            row = InfoRow._make(found)
            rows[row.request_id] = row
    return with_children(session, [rows[t] for t in dict.fromkeys(trace_ids) if t in rows])


def info_rows(session: Session, stmt: Any) -> list[Any]:
    """The `InfoRow`s a select of every `trace_info` column returns."""
    return [InfoRow._make(found) for found in fetch_tuples(session, stmt)]


def with_children(session: Session, rows: Sequence[Any]) -> list[TraceRead]:
    """`InfoRow`s (distinct) with their tags, metadata and assessments, in order: each child
    table is one constant statement per chunk with the ids as one parameter."""
    reads = [TraceRead(row) for row in rows]
    by_id = {r.row.request_id: r for r in reads}
    ids = list(by_id)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for trace_id, key, value in _TAGS_MANY.all(session, chunk):
            by_id[trace_id].tags[key] = value
        for trace_id, key, value in _METADATA_MANY.all(session, chunk):
            by_id[trace_id].metadata[key] = value
        for found in _ASSESSMENTS_MANY.all(session, chunk):
            assessment = AssessmentRow._make(found)
            by_id[assessment.trace_id].assessments.append(assessment)
    return reads


def tag_value(session: Session, trace_id: str, key: str) -> str | None:
    return session.scalar(
        select(TraceTag.value).where(TraceTag.request_id == trace_id, TraceTag.key == key)
    )


_METADATA_VALUE = Statement(
    "SELECT value FROM trace_request_metadata WHERE request_id = :id AND key = :key"
)


def metadata_value(session: Session, trace_id: str, key: str) -> str | None:
    value: str | None = _METADATA_VALUE.scalar(session, {"id": trace_id, "key": key})
    return value


# The writes of a trace's ingest and start are constant statements on the DBAPI cursor
# (`tether.db.raw`), several rows at once by executemany: SQLAlchemy's execution path cost
# more than SQLite takes to run them (~25 statements per logged trace, bench/RESULTS.md).
_PAIRS_UPSERT = "INSERT INTO {table} (request_id, key, value) VALUES (:request_id, :key, :value)"
_UPSERT_TAG = Statement(
    _PAIRS_UPSERT.format(table="trace_tags")
    + " ON CONFLICT (request_id, key) DO UPDATE SET value = excluded.value"
)
_UPSERT_METADATA = Statement(
    _PAIRS_UPSERT.format(table="trace_request_metadata")
    + " ON CONFLICT (request_id, key) DO UPDATE SET value = excluded.value"
)
_INSERT_METADATA_IF_MISSING = Statement(
    _PAIRS_UPSERT.format(table="trace_request_metadata")
    + " ON CONFLICT (request_id, key) DO NOTHING"
)


def upsert_tags(session: Session, trace_id: str, tags: Mapping[str, str]) -> None:
    _UPSERT_TAG.executemany(
        session, [{"request_id": trace_id, "key": k, "value": v} for k, v in tags.items()]
    )


def upsert_metadata(session: Session, trace_id: str, metadata: Mapping[str, str]) -> None:
    # Sorted keys: concurrent writers of one trace take PostgreSQL's row locks in one order.
    _UPSERT_METADATA.executemany(
        session,
        [{"request_id": trace_id, "key": k, "value": v} for k, v in sorted(metadata.items())],
    )


def insert_metadata_if_missing(session: Session, trace_id: str, key: str, value: str) -> None:
    _INSERT_METADATA_IF_MISSING.run(session, {"request_id": trace_id, "key": key, "value": value})


def delete_tag(session: Session, trace_id: str, key: str) -> int:
    result = session.execute(
        delete(TraceTag).where(TraceTag.request_id == trace_id, TraceTag.key == key)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def update_row(session: Session, trace_id: str, values: Mapping[str, Any]) -> None:
    """UPDATE of the named columns (the statement of each set of columns built once).
    Callers do not read the row's ORM object after it."""
    if values:
        _update_statement(tuple(values)).run(session, {**values, "_id": trace_id})


@functools.lru_cache(maxsize=256)  # column sets are the code's, never the client's
def _update_statement(columns: tuple[str, ...]) -> Statement:
    unknown = set(columns) - set(InfoRow._fields)
    if unknown:
        raise ValueError(f"not columns of trace_info: {sorted(unknown)}")
    assignments = ", ".join(f"{c} = :{c}" for c in columns)
    return Statement(f"UPDATE trace_info SET {assignments} WHERE request_id = :_id")


# Assessments ----------------------------------------------------------------------------------


def get_assessment(session: Session, trace_id: str, assessment_id: str) -> Assessment | None:
    return session.scalars(
        select(Assessment).where(
            Assessment.trace_id == trace_id, Assessment.assessment_id == assessment_id
        )
    ).one_or_none()


def set_assessment_valid(
    session: Session, trace_id: str | None, assessment_id: str, valid: bool
) -> int:
    stmt = update(Assessment).where(Assessment.assessment_id == assessment_id)
    if trace_id is not None:
        stmt = stmt.where(Assessment.trace_id == trace_id)
    return int(session.execute(stmt.values(valid=valid)).rowcount)  # type: ignore[attr-defined]


_SET_ASSESSMENTS_TRACE_TIME = Statement(
    "UPDATE assessments SET trace_timestamp_ms = :timestamp_ms, experiment_id = :experiment_id"
    " WHERE trace_id = :id"
)


def set_assessments_trace_time(
    session: Session, trace_id: str, timestamp_ms: int, experiment_id: int
) -> None:
    _SET_ASSESSMENTS_TRACE_TIME.run(
        session, {"id": trace_id, "timestamp_ms": timestamp_ms, "experiment_id": experiment_id}
    )


# Links ----------------------------------------------------------------------------------------


def link_runs(session: Session, trace_ids: Iterable[str], run_id: str) -> list[str]:
    """Link each trace to the run; the ones newly linked."""
    wanted = list(dict.fromkeys(trace_ids))
    if not wanted:
        return []
    present = set(
        session.scalars(
            select(TraceRunLink.trace_id).where(
                TraceRunLink.run_id == run_id, TraceRunLink.trace_id.in_(wanted)
            )
        )
    )
    new = [t for t in wanted if t not in present]
    if new:
        stmt = upsert_insert(session, TraceRunLink).values(
            [{"trace_id": t, "run_id": run_id} for t in new]
        )
        session.execute(stmt.on_conflict_do_nothing(index_elements=["trace_id", "run_id"]))
    return new


def link_prompts(session: Session, trace_id: str, prompts: Sequence[tuple[str, str]]) -> None:
    if not prompts:
        return
    stmt = upsert_insert(session, TracePromptLink).values(
        [{"trace_id": trace_id, "prompt_name": n, "prompt_version": v} for n, v in prompts]
    )
    session.execute(
        stmt.on_conflict_do_nothing(index_elements=["trace_id", "prompt_name", "prompt_version"])
    )


# Spans ----------------------------------------------------------------------------------------


_SPAN_COLUMNS = (
    "experiment_id",
    "parent_span_id",
    "name",
    "type",
    "status",
    "start_time_ns",
    "end_time_ns",
    "segment",
    "line",
    "size",
)


_UPSERT_SPAN = Statement(
    "INSERT INTO trace_spans (trace_id, span_id, "
    + ", ".join(_SPAN_COLUMNS)
    + ") VALUES (:trace_id, :span_id, "
    + ", ".join(":" + c for c in _SPAN_COLUMNS)
    + ") ON CONFLICT (trace_id, span_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _SPAN_COLUMNS)
)
_INSERT_SEGMENT = Statement(
    "INSERT INTO trace_span_segments (segment, trace_id, data) VALUES (:segment, :trace_id, :data)"
)
_SET_SPANS_EXPERIMENT = Statement(
    "UPDATE trace_spans SET experiment_id = :experiment_id WHERE trace_id = :id"
)
_SPAN_TOTALS = Statement(
    "SELECT count(*), coalesce(sum(size), 0) FROM trace_spans WHERE trace_id = :id"
)


def upsert_spans(session: Session, rows: list[dict[str, Any]]) -> None:
    """Index rows; a span sent again points to its latest line."""
    _UPSERT_SPAN.executemany(session, rows)


def insert_segments(session: Session, trace_id: str, segments: Sequence[tuple[str, bytes]]) -> None:
    """Inline segments (`spans.InlineSegment`): (name, data) pairs, names never reused."""
    _INSERT_SEGMENT.executemany(
        session, [{"segment": name, "trace_id": trace_id, "data": data} for name, data in segments]
    )


def set_spans_experiment(session: Session, trace_id: str, experiment_id: int) -> None:
    _SET_SPANS_EXPERIMENT.run(session, {"id": trace_id, "experiment_id": experiment_id})


def span_totals(session: Session, trace_id: str) -> tuple[int, int]:
    """(spans, bytes of span lines) indexed for the trace."""
    found = _SPAN_TOTALS.first(session, {"id": trace_id})
    assert found is not None  # an aggregate always answers a row
    return int(found[0]), int(found[1])


def span_keys(session: Session, trace_id: str, span_ids: Sequence[str]) -> dict[str, int]:
    """(span id -> stored size) of the spans of `span_ids` already indexed for the trace."""
    out: dict[str, int] = {}
    for start in range(0, len(span_ids), _CHUNK):
        chunk = list(span_ids[start : start + _CHUNK])
        for span_id, size in session.execute(
            select(TraceSpan.span_id, TraceSpan.size).where(
                TraceSpan.trace_id == trace_id, TraceSpan.span_id.in_(chunk)
            )
        ):
            out[span_id] = int(size)
    return out


def span_refs(session: Session, trace_id: str, conditions: Sequence[Any] = ()) -> list[SpanRef]:
    """Where a trace's spans are, root first then by start time (the order MLflow answers)."""
    root_last = func.coalesce(func.length(TraceSpan.parent_span_id), 0) > 0
    stmt = (
        select(TraceSpan.segment, TraceSpan.line, TraceSpan.size)
        .where(TraceSpan.trace_id == trace_id, *conditions)
        .order_by(root_last, TraceSpan.start_time_ns, TraceSpan.span_id)
    )
    return [SpanRef(segment, int(line), int(size)) for segment, line, size in session.execute(stmt)]


def span_count(session: Session, trace_id: str) -> int:
    return int(session.scalar(select(func.count()).where(TraceSpan.trace_id == trace_id)) or 0)


# Deletion -------------------------------------------------------------------------------------


def delete_traces(session: Session, trace_ids: Sequence[str]) -> None:
    """Delete traces and every child row (explicitly: SQLite may not enforce cascades)."""
    for start in range(0, len(trace_ids), _CHUNK):
        chunk = list(trace_ids[start : start + _CHUNK])
        for model, column in (
            (TraceTag, TraceTag.request_id),
            (TraceMetadata, TraceMetadata.request_id),
            (Assessment, Assessment.trace_id),
            (TraceSpan, TraceSpan.trace_id),
            (TraceSpanSegment, TraceSpanSegment.trace_id),
            (TraceRunLink, TraceRunLink.trace_id),
            (TracePromptLink, TracePromptLink.trace_id),
            (TraceInfo, TraceInfo.request_id),
        ):
            session.execute(delete(model).where(column.in_(chunk)))


def traces_to_delete(
    session: Session,
    experiment_id: int,
    max_timestamp_millis: int | None,
    max_traces: int | None,
    trace_ids: Sequence[str],
) -> list[tuple[str, str | None]]:
    """(trace id, spans path) of the traces a delete selects: the experiment's, older than or
    at `max_timestamp_millis`, or among `trace_ids`; at most `max_traces`, oldest first."""
    stmt = select(TraceInfo.request_id, TraceInfo.spans_path).where(
        TraceInfo.experiment_id == experiment_id
    )
    if max_timestamp_millis is not None:
        stmt = stmt.where(TraceInfo.timestamp_ms <= max_timestamp_millis)
    if trace_ids:
        stmt = stmt.where(TraceInfo.request_id.in_(list(trace_ids)))
    stmt = stmt.order_by(TraceInfo.timestamp_ms, TraceInfo.request_id)
    if max_traces is not None:
        stmt = stmt.limit(max_traces)
    return [(trace_id, path) for trace_id, path in session.execute(stmt)]


def artifact_locations(session: Session, trace_ids: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for start in range(0, len(trace_ids), _CHUNK):
        chunk = list(trace_ids[start : start + _CHUNK])
        for trace_id, value in session.execute(
            select(TraceTag.request_id, TraceTag.value).where(
                TraceTag.request_id.in_(chunk), TraceTag.key == "mlflow.artifactLocation"
            )
        ):
            if value:
                out[trace_id] = value
    return out


def runs_by_trace(session: Session, trace_ids: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for trace_id, run_id in session.execute(
        select(TraceRunLink.trace_id, TraceRunLink.run_id).where(
            TraceRunLink.trace_id.in_(list(trace_ids))
        )
    ):
        out[trace_id].append(run_id)
    return out
