"""Trace records (MLflow 3 tracing): the entity id is the trace id.

Azure ML refuses traces, so no sync capability reads these rows: discovery counts them, per
entity type, as kept in Tether (`tether sync status`). They still follow the outbox's rules
(one record per write, in the write's transaction; stored shapes never change meaning), so a
later release can read every row ever written. Payloads say what changed without copying bulk
data: a span batch is counted, its content is in the artifact store.

Not `ORDERED`: no worker replays trace rows in order, so appending skips the per-entity lock
(a delete by age may touch thousands of traces in one transaction, and PostgreSQL's lock
table would not hold one advisory lock per trace).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from tether.db.outbox.base import EntityType, Record


class TraceOp(StrEnum):
    START = "start"  # created, or completed by the client's start_trace (v3) / end (v2)
    END = "end"  # v2 end-trace
    LOG_SPANS = "log_spans"  # spans received over OTLP
    SET_TAG = "set_tag"
    DELETE_TAG = "delete_tag"
    SET_ASSESSMENT = "set_assessment"  # created or updated
    DELETE_ASSESSMENT = "delete_assessment"
    LINK_RUN = "link_run"
    LINK_PROMPTS = "link_prompts"
    DELETE = "delete"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Trace(Record):
    entity_type: ClassVar[EntityType] = EntityType.TRACE
    ORDERED: ClassVar[bool] = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceStart(_Trace):
    experiment_id: str
    state: str

    OP: ClassVar[StrEnum] = TraceOp.START


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceEnd(_Trace):
    state: str

    OP: ClassVar[StrEnum] = TraceOp.END


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceLogSpans(_Trace):
    experiment_id: str
    spans: int  # how many spans this request stored
    bytes: int  # their size in the artifact store

    OP: ClassVar[StrEnum] = TraceOp.LOG_SPANS


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceSetTag(_Trace):
    key: str
    value: str

    OP: ClassVar[StrEnum] = TraceOp.SET_TAG


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceDeleteTag(_Trace):
    key: str

    OP: ClassVar[StrEnum] = TraceOp.DELETE_TAG


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceSetAssessment(_Trace):
    assessment_id: str
    name: str

    OP: ClassVar[StrEnum] = TraceOp.SET_ASSESSMENT


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceDeleteAssessment(_Trace):
    assessment_id: str

    OP: ClassVar[StrEnum] = TraceOp.DELETE_ASSESSMENT


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceLinkRun(_Trace):
    run_id: str

    OP: ClassVar[StrEnum] = TraceOp.LINK_RUN


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceLinkPrompts(_Trace):
    prompts: tuple[str, ...]  # "name/version"

    OP: ClassVar[StrEnum] = TraceOp.LINK_PROMPTS


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceDelete(_Trace):
    experiment_id: str

    OP: ClassVar[StrEnum] = TraceOp.DELETE
