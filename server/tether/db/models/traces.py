"""MLflow 3 tracing: traces (`trace_info`), their tags, metadata, assessments, the index of
their spans, and their links to runs and prompt versions.

Table and column names follow MLflow's SQL store, so its filter grammar maps one to one.
Span *content* lives in segments (`tether.tracking.traces.spans`): small ones in
`trace_span_segments`, written in the transaction that indexes them, larger ones as files in
the artifact store; `trace_spans` indexes them (what span filters and metrics read, and where
each span's line is).
Children carry the trace id with ON DELETE CASCADE; the services also delete them explicitly,
so a store where foreign keys are not enforced never keeps orphans.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tether.db.models.base import Base


class TraceInfo(Base):
    __tablename__ = "trace_info"
    __table_args__ = (
        # The UI's default view: an experiment's traces, newest first.
        Index("ix_trace_info_experiment_timestamp", "experiment_id", "timestamp_ms"),
        Index("ix_trace_info_timestamp_request", "timestamp_ms", "request_id"),
        Index("ix_trace_info_experiment_session", "experiment_id", "session_id"),
    )

    request_id: Mapped[str] = mapped_column(String(50), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.experiment_id"))
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    execution_time_ms: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(50))
    client_request_id: Mapped[str | None] = mapped_column(Text)
    request_preview: Mapped[str | None] = mapped_column(Text)
    response_preview: Mapped[str | None] = mapped_column(Text)
    # Denormalised as in MLflow: the `mlflow.traceName` tag, `mlflow.trace.session` metadata,
    # and the token usage / cost metadata (JSON objects there, one column per item here).
    trace_name: Mapped[str | None] = mapped_column(Text)
    session_id: Mapped[str | None] = mapped_column(Text)
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    total_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cache_read_input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cache_creation_input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cache_creation_input_tokens_above_1hr: Mapped[int | None] = mapped_column(BigInteger)
    input_cost: Mapped[float | None] = mapped_column(Double)
    output_cost: Mapped[float | None] = mapped_column(Double)
    total_cost: Mapped[float | None] = mapped_column(Double)
    # Tether's own: where the spans received over OTLP are stored (a directory of the artifact
    # store, fixed when the first span arrives) and how many / how many bytes (the limits).
    spans_path: Mapped[str | None] = mapped_column(Text)
    span_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    span_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class TraceTag(Base):
    __tablename__ = "trace_tags"

    request_id: Mapped[str] = mapped_column(
        ForeignKey("trace_info.request_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)


class TraceMetadata(Base):
    __tablename__ = "trace_request_metadata"

    request_id: Mapped[str] = mapped_column(
        ForeignKey("trace_info.request_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)


class Assessment(Base):
    """Feedback and expectations on a trace (MLflow's `assessments`). `value`, `error` and
    `assessment_metadata` hold JSON; `aggregate_value` is the value as a number for metrics."""

    __tablename__ = "assessments"
    __table_args__ = (
        Index("ix_assessments_trace_created", "trace_id", "created_timestamp"),
        Index("ix_assessments_experiment_trace_ts", "experiment_id", "trace_timestamp_ms"),
    )

    assessment_id: Mapped[str] = mapped_column(String(50), primary_key=True)
    trace_id: Mapped[str] = mapped_column(ForeignKey("trace_info.request_id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(250))
    assessment_type: Mapped[str] = mapped_column(String(50))
    value: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_timestamp: Mapped[int] = mapped_column(BigInteger)
    last_updated_timestamp: Mapped[int] = mapped_column(BigInteger)
    experiment_id: Mapped[int | None] = mapped_column(Integer)
    trace_timestamp_ms: Mapped[int | None] = mapped_column(BigInteger)
    aggregate_value: Mapped[float | None] = mapped_column(Double)
    is_numeric_value: Mapped[bool] = mapped_column(Boolean, default=False)
    source_type: Mapped[str] = mapped_column(String(50))
    source_id: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(32))
    span_id: Mapped[str | None] = mapped_column(String(50))
    rationale: Mapped[str | None] = mapped_column(Text)
    overrides: Mapped[str | None] = mapped_column(String(50))
    valid: Mapped[bool] = mapped_column(Boolean, default=True)
    assessment_metadata: Mapped[str | None] = mapped_column(Text)


class TraceSpan(Base):
    """One span received over OTLP: what span filters and metrics read, and where its content
    is (line `line` of segment `segment` under the trace's `spans_path`)."""

    __tablename__ = "trace_spans"
    __table_args__ = (Index("ix_trace_spans_experiment_start", "experiment_id", "start_time_ns"),)

    trace_id: Mapped[str] = mapped_column(
        ForeignKey("trace_info.request_id", ondelete="CASCADE"), primary_key=True
    )
    span_id: Mapped[str] = mapped_column(String(50), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(Integer)
    parent_span_id: Mapped[str | None] = mapped_column(String(50))
    name: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(50))
    start_time_ns: Mapped[int] = mapped_column(BigInteger)
    end_time_ns: Mapped[int | None] = mapped_column(BigInteger)
    segment: Mapped[str] = mapped_column(String(40))
    line: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)


class TraceSpanSegment(Base):
    """A small segment of span lines kept in the database (one OTLP request's spans of one
    trace, up to `trace_inline_segment_bytes`): committed with the index rows that point to
    it, so it costs no file write and no extra fsync. Segment names are unique."""

    __tablename__ = "trace_span_segments"
    __table_args__ = (Index("ix_trace_span_segments_trace", "trace_id"),)

    segment: Mapped[str] = mapped_column(String(40), primary_key=True)
    trace_id: Mapped[str] = mapped_column(ForeignKey("trace_info.request_id", ondelete="CASCADE"))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class TraceRunLink(Base):
    """A trace linked to a run (`traces/link-to-run`, the OTLP `x-mlflow-run-id` header);
    MLflow's entity associations of type TRACE -> RUN."""

    __tablename__ = "trace_run_links"
    __table_args__ = (Index("ix_trace_run_links_run", "run_id"),)

    trace_id: Mapped[str] = mapped_column(
        ForeignKey("trace_info.request_id", ondelete="CASCADE"), primary_key=True
    )
    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)


class TracePromptLink(Base):
    """A prompt version a trace used (`traces/link-prompts`)."""

    __tablename__ = "trace_prompt_links"

    trace_id: Mapped[str] = mapped_column(
        ForeignKey("trace_info.request_id", ondelete="CASCADE"), primary_key=True
    )
    prompt_name: Mapped[str] = mapped_column(String(256), primary_key=True)
    prompt_version: Mapped[str] = mapped_column(String(32), primary_key=True)
