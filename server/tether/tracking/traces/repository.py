"""Queries over traces and their children. No HTTP, no validation: the service decides."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from tether.db.dialect import in_list, upsert_for, upsert_insert
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
from tether.search.sql import dialect_name
from tether.tracking.traces.spans import SpanRef


def _table(model: Any) -> Table:
    """A model's Core table: Core statements skip the ORM's per-statement work."""
    table: Table = model.__table__
    return table


_INFO = _table(TraceInfo)

# Children are read for this many traces per query: a search page is at most 500 traces.
_CHUNK = 500


@dataclass
class TraceRead:
    """One trace with its children, as loaded: `row` is a Core row of `trace_info` (its
    columns as attributes; building ORM objects took ~1/3 of a 100-trace page)."""

    row: Row[Any]
    tags: dict[str, str | None] = field(default_factory=dict)
    metadata: dict[str, str | None] = field(default_factory=dict)
    assessments: list[Assessment] = field(default_factory=list)


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


def load(
    session: Session, trace_ids: Sequence[str], experiment_ids: Sequence[int] | None = None
) -> list[TraceRead]:
    """The traces of `trace_ids` that exist (within `experiment_ids` if given), in that order,
    with their tags, metadata and assessments."""
    rows: dict[str, Row[Any]] = {}
    for start in range(0, len(trace_ids), _CHUNK):
        chunk = list(trace_ids[start : start + _CHUNK])
        stmt = select(_INFO).where(in_list(session, _INFO.c.request_id, chunk))
        if experiment_ids is not None:
            stmt = stmt.where(_INFO.c.experiment_id.in_(list(experiment_ids)))
        for row in session.execute(stmt):
            rows[row.request_id] = row
    return with_children(session, [rows[t] for t in dict.fromkeys(trace_ids) if t in rows])


def with_children(session: Session, rows: Sequence[Row[Any]]) -> list[TraceRead]:
    """`trace_info` rows (distinct) with their tags, metadata and assessments, in order. Each
    child table is one statement per chunk with the ids as one parameter (`in_list`: compiled
    once, whatever the page size)."""
    reads = [TraceRead(row) for row in rows]
    by_id = {r.row.request_id: r for r in reads}
    ids = list(by_id)
    tags, metadata = _table(TraceTag).c, _table(TraceMetadata).c
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for trace_id, key, value in session.execute(
            select(tags.request_id, tags.key, tags.value).where(
                in_list(session, tags.request_id, chunk)
            )
        ):
            by_id[trace_id].tags[key] = value
        for trace_id, key, value in session.execute(
            select(metadata.request_id, metadata.key, metadata.value).where(
                in_list(session, metadata.request_id, chunk)
            )
        ):
            by_id[trace_id].metadata[key] = value
        for assessment in session.scalars(
            select(Assessment)
            .where(in_list(session, Assessment.trace_id, chunk))
            .order_by(Assessment.created_timestamp, Assessment.assessment_id)
        ):
            by_id[assessment.trace_id].assessments.append(assessment)
    return reads


def tag_value(session: Session, trace_id: str, key: str) -> str | None:
    return session.scalar(
        select(TraceTag.value).where(TraceTag.request_id == trace_id, TraceTag.key == key)
    )


def metadata_value(session: Session, trace_id: str, key: str) -> str | None:
    return session.scalar(
        select(TraceMetadata.value).where(
            TraceMetadata.request_id == trace_id, TraceMetadata.key == key
        )
    )


def upsert_tags(session: Session, trace_id: str, tags: Mapping[str, str]) -> None:
    _upsert_pairs(session, TraceTag, trace_id, tags)


def upsert_metadata(session: Session, trace_id: str, metadata: Mapping[str, str]) -> None:
    # Sorted keys: concurrent writers of one trace take PostgreSQL's row locks in one order.
    _upsert_pairs(session, TraceMetadata, trace_id, dict(sorted(metadata.items())))


def insert_metadata_if_missing(session: Session, trace_id: str, key: str, value: str) -> None:
    stmt = upsert_insert(session, TraceMetadata).values(request_id=trace_id, key=key, value=value)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["request_id", "key"]))


def _upsert_pairs(session: Session, model: Any, trace_id: str, pairs: Mapping[str, str]) -> None:
    if not pairs:
        return
    session.execute(
        _pairs_upsert(dialect_name(session), _table(model)),
        [{"request_id": trace_id, "key": k, "value": v} for k, v in pairs.items()],
    )


# The upserts below are built once per table and executed with a list of rows (executemany):
# one statement shape, compiled once. A multi-row VALUES list has a shape per row count, which
# SQLAlchemy compiled afresh on every request (~1/4 of a logged trace's time in process).


@functools.cache
def _pairs_upsert(dialect: str, table: Table) -> Any:
    stmt = upsert_for(dialect, table)
    return stmt.on_conflict_do_update(
        index_elements=["request_id", "key"], set_={"value": stmt.excluded.value}
    )


def delete_tag(session: Session, trace_id: str, key: str) -> int:
    result = session.execute(
        delete(TraceTag).where(TraceTag.request_id == trace_id, TraceTag.key == key)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def update_row(session: Session, trace_id: str, values: Mapping[str, Any]) -> None:
    """A Core UPDATE of the table (the ORM's would also look for the row in the session to
    update it there: twice the time). Callers do not read the row's object after it."""
    if values:
        session.execute(update(_INFO).where(_INFO.c.request_id == trace_id).values(values))


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


def set_assessments_trace_time(
    session: Session, trace_id: str, timestamp_ms: int, experiment_id: int
) -> None:
    table = _table(Assessment)
    session.execute(
        update(table)
        .where(table.c.trace_id == trace_id)
        .values(trace_timestamp_ms=timestamp_ms, experiment_id=experiment_id)
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


def upsert_spans(session: Session, rows: list[dict[str, Any]]) -> None:
    """Index rows; a span sent again points to its latest line."""
    if rows:
        session.execute(_spans_upsert(dialect_name(session)), rows)


@functools.cache
def _spans_upsert(dialect: str) -> Any:
    stmt = upsert_for(dialect, _table(TraceSpan))
    return stmt.on_conflict_do_update(
        index_elements=["trace_id", "span_id"],
        set_={c: getattr(stmt.excluded, c) for c in _SPAN_COLUMNS},
    )


def insert_segments(session: Session, trace_id: str, segments: Sequence[tuple[str, bytes]]) -> None:
    """Inline segments (`spans.InlineSegment`): (name, data) pairs, names never reused."""
    if segments:
        session.execute(
            insert(_table(TraceSpanSegment)),
            [{"segment": name, "trace_id": trace_id, "data": data} for name, data in segments],
        )


def set_spans_experiment(session: Session, trace_id: str, experiment_id: int) -> None:
    table = _table(TraceSpan)
    session.execute(
        update(table).where(table.c.trace_id == trace_id).values(experiment_id=experiment_id)
    )


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
