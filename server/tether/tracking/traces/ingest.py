"""Spans received over OTLP (`/v1/traces`): decoded, stored, indexed, and folded into their
traces as MLflow 3.17's `log_spans` does.

One request's spans of one trace become a segment (`spans`): a row of the database when small
(the usual request: decoded and indexed in one call off the event loop, its statements
constant ones on the DBAPI cursor), else files in the artifact store written first. Then one
transaction inserts the inline segments, indexes the spans, creates or updates the trace,
checks the limits, and appends the outbox record; if it fails, segment files are deleted
again. As in MLflow:
- a trace the spans are the first to name is created in the request's experiment: its start
  and duration span its spans, its state is the root span's (IN_PROGRESS until the root
  arrives), and it gets the `mlflow.artifactLocation` tag;
- the trace's start and duration widen to cover the new spans, unless the client already
  finalized it (`start_trace` ran: `mlflow.trace.infoFinalized`) and the spans carry token
  usage, cost or a session (MLflow only looks at finalization then);
- the root span fills a missing request / response preview and a state still IN_PROGRESS;
  its `mlflow.traceTag.<key>` attributes become tags, the resource's attributes too (except
  `telemetry.sdk.*` and `mlflow.*`), a span's `session.id` the session, `user.id` the user;
- `mlflow.trace.spansLocation` becomes TRACKING_STORE: the client then reads the spans back
  from this server instead of uploading `traces.json`.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.json_format import Parse as parse_json_proto
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tether.db import outbox
from tether.db.engine import Database
from tether.db.models import TraceInfo
from tether.db.outbox.records import TraceLinkRun, TraceLogSpans
from tether.errors import MlflowError, invalid_parameter, not_found
from tether.search.experiment_ids import parse_experiment_id
from tether.storage.base import ArtifactBackend
from tether.storage.locations import resolve
from tether.threads import blocking
from tether.tracking import validation
from tether.tracking.experiments import repository as experiments
from tether.tracking.traces import analytics, codec, repository
from tether.tracking.traces.codec import StoredSpan
from tether.tracking.traces.service import (
    ARTIFACT_LOCATION_TAG,
    SPANS_LOCATION_TAG,
    TRACKING_STORE,
    note_run_has_traces,
    trace_artifact_location,
)
from tether.tracking.traces.spans import InlineSegment, SpanStore

# Resource `service.name`s MLflow copies onto root spans (its allowlist of known clients).
KNOWN_SERVICE_NAMES = frozenset(
    {"claude-code", "codex_cli_rs", "codex_vscode", "gemini-cli", "qwen-code"}
)
_HEX_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class OtlpError(Exception):
    """A request `/v1/traces` refuses, answered as FastAPI's `{"detail": ...}` (as MLflow)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass
class TraceBatch:
    spans: list[StoredSpan] = field(default_factory=list)
    resource_tags: dict[str, str] = field(default_factory=dict)


def decode_request(
    body: bytes, content_type: str | None, encoding: str | None
) -> dict[str, TraceBatch]:
    """The spans of an OTLP export request, grouped by MLflow trace id."""
    media = content_type.split(";")[0].strip() if content_type else None
    if media not in ("application/x-protobuf", "application/json"):
        raise OtlpError(
            400,
            f"Invalid Content-Type: {content_type}. "
            "Expected: application/x-protobuf or application/json",
        )
    if encoding:
        body = _decompress(body, encoding.lower())
    request = ExportTraceServiceRequest()
    try:
        if media == "application/json":
            parse_json_proto(_hex_ids_to_base64(body), request, ignore_unknown_fields=True)
        else:
            request.ParseFromString(body)
    except (DecodeError, ValueError, TypeError, AttributeError):
        raise OtlpError(400, "Invalid OpenTelemetry format") from None
    except Exception:
        raise OtlpError(400, "Invalid OpenTelemetry format") from None
    if not request.resource_spans:
        raise OtlpError(400, "Invalid OpenTelemetry format - no spans found")
    batches: dict[str, TraceBatch] = defaultdict(TraceBatch)
    for resource_spans in request.resource_spans:
        attributes = [
            (a.key, codec.decode_any(a.value)) for a in resource_spans.resource.attributes
        ]
        service = next((v for k, v in attributes if k == "service.name"), None)
        known = (
            str(service) if service is not None and str(service) in KNOWN_SERVICE_NAMES else None
        )
        tags = _resource_tags(attributes)
        for scope_spans in resource_spans.scope_spans:
            for proto in scope_spans.spans:
                try:
                    span = codec.from_otlp(proto, known)
                except Exception:
                    raise OtlpError(
                        422, "Cannot convert OpenTelemetry span to MLflow span"
                    ) from None
                batch = batches[span.trace_id]
                batch.spans.append(span)
                if tags and not batch.resource_tags:
                    batch.resource_tags = tags
    return dict(batches)


def _decompress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        try:
            return gzip.decompress(body)
        except Exception:
            raise OtlpError(400, "Failed to decompress gzip payload") from None
    if encoding == "deflate":
        for wbits in (zlib.MAX_WBITS, -zlib.MAX_WBITS):
            try:
                return zlib.decompress(body, wbits)
            except Exception:
                continue
        raise OtlpError(400, "Failed to decompress deflate payload")
    raise OtlpError(400, f"Unsupported Content-Encoding: {encoding}")


def _hex_ids_to_base64(body: bytes) -> bytes:
    """OTLP's JSON writes ids in hex; protobuf's JSON reads bytes as base64."""
    data = json.loads(body)
    for resource_spans in data.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in _HEX_ID_FIELDS:
                    if value := span.get(key):
                        span[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
    return json.dumps(data).encode("utf-8")


def _resource_tags(attributes: list[tuple[str, Any]]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for key, value in attributes:
        if key.startswith(("telemetry.sdk.", "mlflow.")):
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        try:
            tags[key] = validation.validate_tag(key, text)
        except MlflowError:
            continue
    return tags


# Storing ------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """One trace's part of a request: where its spans go and what it changes."""

    trace_id: str
    spans: list[StoredSpan]
    resource_tags: dict[str, str]
    spans_path: str = ""
    segments: list[str] = field(default_factory=list)  # files written: discarded on failure
    inline: list[InlineSegment] = field(default_factory=list)  # rows the transaction inserts
    placements: list[tuple[str, int]] = field(default_factory=list)


def _sort_key(span: StoredSpan) -> tuple[int, int, str]:
    return (0 if span.is_root else 1, span.start_time_ns, span.span_id)


class SpanIngest:
    def __init__(
        self,
        db: Database,
        backend: ArtifactBackend,
        store: SpanStore,
        *,
        max_spans: int,
        max_bytes: int,
    ) -> None:
        self.db = db
        self.backend = backend
        self.store = store
        self.max_spans = max_spans
        self.max_bytes = max_bytes

    def _paths(self, experiment_id: int, trace_ids: list[str]) -> dict[str, str]:
        with self.db.read() as session:
            return self._paths_in(session, experiment_id, trace_ids)

    def _paths_in(
        self, session: Session, experiment_id: int, trace_ids: list[str]
    ) -> dict[str, str]:
        """Where each trace's spans go: kept from its first span, else beside its artifacts."""
        known: dict[str, str | None] = {}
        experiment_of: dict[str, int] = {}
        for trace_id, spans_path, exp in repository.spans_paths(session, trace_ids):
            known[trace_id] = spans_path
            experiment_of[trace_id] = exp
        locations: dict[int, str | None] = {}
        missing: set[int] = set()
        for exp in {experiment_id, *experiment_of.values()}:
            found = experiments.stage_and_location(session, exp)
            if found is None:
                missing.add(exp)
            locations[exp] = None if found is None else found[1]
        if experiment_id in missing and any(t not in experiment_of for t in trace_ids):
            raise not_found(f"No Experiment with id={experiment_id} exists")
        paths: dict[str, str] = {}
        for trace_id in trace_ids:
            if known.get(trace_id):
                paths[trace_id] = str(known[trace_id])
                continue
            exp = experiment_of.get(trace_id, experiment_id)
            paths[trace_id] = self._spans_dir(locations.get(exp), exp, trace_id)
        return paths

    def _spans_dir(self, experiment_location: str | None, experiment_id: int, trace_id: str) -> str:
        artifacts = trace_artifact_location(experiment_location, trace_id)
        try:
            directory = resolve(self.backend, artifacts.removesuffix("/artifacts"))
        except MlflowError:
            # The experiment keeps its artifacts outside this server's store: the spans
            # still live in it, under Tether's own prefix.
            directory = f"_tether/traces/{experiment_id}/{trace_id}"
        return f"{directory}/spans"

    async def export(
        self,
        experiment_id: str,
        body: bytes,
        content_type: str | None,
        encoding: str | None,
        run_id: str | None,
    ) -> None:
        """Decode an OTLP request and store its spans (OtlpError: unreadable request). The
        usual request (a small trace's spans: no segment file) is decoded and indexed in one
        call off the event loop (one thread hand-off per request, not two)."""
        plans = await blocking(
            self._decode_and_index_inline, experiment_id, body, content_type, encoding, run_id
        )
        if plans is not None:
            await self._log_files(parse_experiment_id(experiment_id), plans, run_id)

    def _decode_and_index_inline(
        self,
        experiment_id: str,
        body: bytes,
        content_type: str | None,
        encoding: str | None,
        run_id: str | None,
    ) -> list[_Plan] | None:
        """Indexes the request when all its spans stay in the database (its segments are
        rows: where its files would go is settled in the indexing transaction, with no read
        session before it); else the plans, for `_log_files`."""
        batches = decode_request(body, content_type, encoding)
        exp_id = parse_experiment_id(experiment_id)
        plans = [
            _Plan(trace_id, sorted(b.spans, key=_sort_key), b.resource_tags)
            for trace_id, b in sorted(batches.items())
        ]
        if not all(self.store.fits_inline([s.line for s in p.spans]) for p in plans):
            return plans
        for plan in plans:
            written = self.store.inline([s.line for s in plan.spans])
            plan.placements = [(p.segment, p.line) for p in written.placements]
            plan.inline = written.inline
        self._index(exp_id, plans, run_id, True)
        return None

    async def _log_files(self, exp_id: int, plans: list[_Plan], run_id: str | None) -> None:
        """A request with spans too large to stay in the database: segment files first,
        then the transaction that indexes them (the files deleted again if it fails)."""
        paths = await blocking(self._paths, exp_id, [p.trace_id for p in plans])
        try:
            for plan in plans:
                plan.spans_path = paths[plan.trace_id]
                written = await self.store.write(plan.spans_path, [s.line for s in plan.spans])
                plan.placements = [(p.segment, p.line) for p in written.placements]
                plan.segments = written.files
                plan.inline = written.inline
            await blocking(self._index, exp_id, plans, run_id, False)
        except BaseException:
            for plan in plans:
                await self.store.discard(plan.spans_path, plan.segments)
            raise

    def _index(
        self, experiment_id: int, plans: list[_Plan], run_id: str | None, resolve: bool
    ) -> None:
        """`resolve`: the plans' `spans_path` are settled here (their spans are all inline)."""
        with self.db.write() as session:
            if resolve:
                paths = self._paths_in(session, experiment_id, [p.trace_id for p in plans])
                for plan in plans:
                    plan.spans_path = paths[plan.trace_id]
            completed: list[str] = []
            for plan in plans:
                self._index_trace(session, experiment_id, plan)
                if any(s.is_root for s in plan.spans):
                    completed.append(plan.trace_id)
            if run_id and completed:
                found = session.scalar(
                    select(func.count()).select_from(
                        select(TraceInfo.request_id)
                        .where(TraceInfo.request_id.in_(completed))
                        .subquery()
                    )
                )
                if found:
                    for trace_id in repository.link_runs(session, completed, run_id):
                        outbox.append(session, TraceLinkRun(trace_id, run_id=run_id))
                    note_run_has_traces(session, [run_id])

    def _index_trace(self, session: Session, experiment_id: int, plan: _Plan) -> None:
        spans = plan.spans
        trace_id = plan.trace_id
        min_start_ms = min(s.start_time_ns for s in spans) // 1_000_000
        ends = [s.end_time_ns for s in spans if s.end_time_ns]
        max_end_ms = max(ends) // 1_000_000 if ends else None
        root = next((s for s in spans if s.is_root), None)
        root_state = None if root is None else ("ERROR" if root.status == "ERROR" else "OK")
        row = repository.row_for_update(session, trace_id)
        if row is None:
            location = experiments.stage_and_location(session, experiment_id)
            if location is None:
                raise not_found(f"No Experiment with id={experiment_id} exists")
            new_row: dict[str, Any] = {
                "request_id": trace_id,
                "experiment_id": experiment_id,
                "timestamp_ms": min_start_ms,
                "execution_time_ms": (max_end_ms - min_start_ms) if max_end_ms else None,
                "status": root_state or "IN_PROGRESS",
                "spans_path": plan.spans_path,
                "span_count": 0,
                "span_bytes": 0,
            }
            repository.insert_row(session, new_row)
            row = repository.InfoRow._make(new_row.get(c) for c in repository.InfoRow._fields)
            # Upserted with the batch's own tags below (which may still override it).
            new_tags = {ARTIFACT_LOCATION_TAG: trace_artifact_location(location[1], trace_id)}
            finalized = False
        else:
            new_tags = {}
            # As in MLflow's log_spans: whether start_trace's times stand is only looked at when
            # the batch carries usage, cost or a session; otherwise the times always widen.
            finalized = _carries_analytics(spans) and (
                repository.metadata_value(session, trace_id, analytics.INFO_FINALIZED_KEY)
                is not None
            )
        values: dict[str, Any] = {}
        if row.spans_path is None:
            values["spans_path"] = plan.spans_path
        if not finalized:
            start = min(row.timestamp_ms, min_start_ms)
            values["timestamp_ms"] = start
            if max_end_ms is not None:
                old_end = (
                    row.timestamp_ms + row.execution_time_ms
                    if row.execution_time_ms is not None
                    else None
                )
                end = max_end_ms if old_end is None or old_end <= max_end_ms else old_end
                values["execution_time_ms"] = end - start
        if row.status in ("IN_PROGRESS", "STATE_UNSPECIFIED") and root_state:
            values["status"] = root_state
        tags: dict[str, str] = {**new_tags, **plan.resource_tags}
        if root is not None:
            if row.request_preview is None and (
                inputs := root.attributes.get(codec.INPUTS_ATTRIBUTE)
            ):
                values["request_preview"] = analytics.preview(inputs, "user")
            if row.response_preview is None and (
                outputs := root.attributes.get(codec.OUTPUTS_ATTRIBUTE)
            ):
                values["response_preview"] = analytics.preview(outputs, "assistant")
            for key, text in root.attributes.items():
                if not key.startswith(codec.TRACE_TAG_PREFIX):
                    continue
                tag_key, tag_value = key[len(codec.TRACE_TAG_PREFIX) :], str(_unjson(text))
                try:
                    tag_value = validation.validate_tag(tag_key, tag_value)
                except MlflowError:
                    continue
                if tag_key == "mlflow.traceName":
                    if len(tag_value) <= analytics.MAX_TRACE_NAME:
                        values["trace_name"] = tag_value
                else:
                    tags[tag_key] = tag_value
        if row.session_id is None and (session_id := _session_id(spans)) is not None:
            values["session_id"] = session_id
        repository.insert_segments(session, trace_id, [(i.name, i.data) for i in plan.inline])
        repository.upsert_spans(
            session,
            [
                {
                    "trace_id": trace_id,
                    "span_id": s.span_id,
                    "experiment_id": row.experiment_id,
                    "parent_span_id": s.parent_span_id,
                    "name": s.name,
                    "type": s.span_type,
                    "status": s.status,
                    "start_time_ns": s.start_time_ns,
                    "end_time_ns": s.end_time_ns,
                    "segment": segment,
                    "line": line,
                    "size": len(s.line),
                }
                for s, (segment, line) in zip(spans, plan.placements, strict=True)
            ],
        )
        count, size = repository.span_totals(session, trace_id)
        if count > self.max_spans:
            raise invalid_parameter(
                f"Trace '{trace_id}' would hold {count} spans; this server keeps at most "
                f"{self.max_spans} spans per trace (TETHER_TRACE_MAX_SPANS). "
                "The spans of this request were not stored."
            )
        if size > self.max_bytes:
            raise invalid_parameter(
                f"Trace '{trace_id}' would hold {size} bytes of span data; this server keeps at "
                f"most {self.max_bytes} bytes per trace (TETHER_TRACE_MAX_BYTES). "
                "The spans of this request were not stored."
            )
        # One UPDATE for the widened times, previews, state and the new totals.
        repository.update_row(
            session, trace_id, {**values, "span_count": count, "span_bytes": size}
        )
        if user_id := _user_id(spans):
            repository.insert_metadata_if_missing(session, trace_id, analytics.USER_KEY, user_id)
        tags[SPANS_LOCATION_TAG] = TRACKING_STORE
        repository.upsert_tags(session, trace_id, tags)
        outbox.append(
            session,
            TraceLogSpans(
                trace_id,
                experiment_id=str(row.experiment_id),
                spans=len(spans),
                bytes=sum(len(s.line) for s in spans),
            ),
        )


def _carries_analytics(spans: list[StoredSpan]) -> bool:
    for span in spans:
        for key in ("mlflow.chat.tokenUsage", "mlflow.llm.cost"):
            value = _unjson(span.attributes.get(key) or "")
            if isinstance(value, dict) and value:
                return True
        if any(span.attributes.get(key) for key in codec.SESSION_ATTRIBUTES):
            return True
    return False


def _unjson(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def _session_id(spans: list[StoredSpan]) -> str | None:
    for span in spans:
        for key in codec.SESSION_ATTRIBUTES:
            if text := span.attributes.get(key):
                value = str(_unjson(text))
                if len(value) > analytics.MAX_SESSION_ID:
                    raise invalid_parameter(
                        f"'Session ID' exceeds the maximum length of {analytics.MAX_SESSION_ID} "
                        "characters"
                    )
                return value
    return None


def _user_id(spans: list[StoredSpan]) -> str | None:
    for span in spans:
        if text := span.attributes.get("user.id"):
            return str(_unjson(text))
    return None
