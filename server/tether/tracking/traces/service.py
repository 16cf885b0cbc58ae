"""Trace operations: start / end / read / search / delete traces, their tags, links and
assessments, as MLflow 3.17's SQL store behaves.

Every write is one transaction that also appends its outbox record (entity `trace`, never
synced: Azure ML refuses traces); input is checked before the transaction starts, so a
refused request changes nothing. Span content (OTLP, `ingest`) and reads of it (`reads`) are
in their own modules; this one keeps the rows.

A trace linked to a run (its `mlflow.sourceRun` metadata, `link-to-run`, the OTLP run header)
leaves a note in that run's sync report, so `tether sync status --entity run:<id>` says its
traces stay in Tether.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tether.clock import now_ms
from tether.db import outbox
from tether.db.dialect import upsert_insert
from tether.db.engine import Database
from tether.db.models import Assessment, Run, SyncReport
from tether.db.outbox.records import (
    TraceDelete,
    TraceDeleteAssessment,
    TraceDeleteTag,
    TraceEnd,
    TraceLinkPrompts,
    TraceLinkRun,
    TraceSetAssessment,
    TraceSetTag,
    TraceStart,
)
from tether.errors import MlflowError, invalid_parameter, not_found
from tether.search.experiment_ids import parse_experiment_id
from tether.tracking import validation
from tether.tracking.experiments import repository as experiments
from tether.tracking.traces import analytics, assessments, repository, schemas, serialize
from tether.tracking.traces.filters import TRACE_NAME_TAG
from tether.tracking.traces.schemas import AssessmentIn, TraceInfoIn

log = logging.getLogger(__name__)

ARTIFACT_LOCATION_TAG = "mlflow.artifactLocation"
SPANS_LOCATION_TAG = "mlflow.trace.spansLocation"
TRACKING_STORE = "TRACKING_STORE"
# Tags the API may not set (MLflow's handler refuses them): where a trace's spans are is the
# server's to say. The archival-failure tag may still be deleted.
_IMMUTABLE_TAGS = frozenset(
    {SPANS_LOCATION_TAG, "mlflow.trace.archiveLocation", "mlflow.trace.archivalFailure"}
)
_DELETABLE_IMMUTABLE = frozenset({"mlflow.trace.archivalFailure"})
MAX_TRACE_LINKS_PER_REQUEST = 100
RUN_TRACES_REPORT = (
    "traces linked to this run are kept in Tether (Azure ML does not accept MLflow traces); "
    "read them with mlflow.search_traces(run_id=...) or in Tether's UI"
)


@dataclass(frozen=True)
class DeleteSelection:
    """What a delete removed: how many traces, and their files, deleted once it committed:
    span directories (store paths) and artifact locations (URIs)."""

    count: int
    span_dirs: list[str]
    artifact_uris: list[str]


def trace_not_found(trace_id: str) -> MlflowError:
    return not_found(f"Trace with ID '{trace_id}' not found.")


def trace_artifact_location(experiment_location: str | None, trace_id: str) -> str:
    return f"{(experiment_location or '').rstrip('/')}/traces/{trace_id}/artifacts"


def note_run_has_traces(session: Session, run_ids: Sequence[str]) -> None:
    """Say, in each existing run's sync report, that its traces stay in Tether."""
    wanted = list(dict.fromkeys(r for r in run_ids if r))
    if not wanted:
        return
    runs = list(session.scalars(select(Run.run_uuid).where(Run.run_uuid.in_(wanted))))
    if not runs:
        return
    now = now_ms()
    stmt = upsert_insert(session, SyncReport).values(
        [
            {
                "entity_type": "run",
                "entity_id": run_id,
                "kind": "skipped",
                "subject": "traces",
                "reason": RUN_TRACES_REPORT,
                "outbox_id": None,
                "created_at": now,
            }
            for run_id in runs
        ]
    )
    session.execute(
        stmt.on_conflict_do_nothing(index_elements=["entity_type", "entity_id", "kind", "subject"])
    )


def check_experiment(session: Session, experiment_id: int) -> str | None:
    """The experiment's artifact location; MLflow's errors if it is missing or deleted."""
    found = experiments.stage_and_location(session, experiment_id)
    if found is None:
        raise not_found(f"No Experiment with id={experiment_id} exists")
    stage, location = found
    if stage != "active":
        raise invalid_parameter(
            f"The experiment {experiment_id} must be in the 'active' state. "
            f"Current state is {stage}."
        )
    return location


def _length(entity: str, limit: int, value: str | None) -> str | None:
    if value is not None and len(value) > limit:
        raise invalid_parameter(f"'{entity}' exceeds the maximum length of {limit} characters")
    return value


def _trace_name(tags: dict[str, str]) -> str | None:
    return _length("Trace name", analytics.MAX_TRACE_NAME, tags.get(TRACE_NAME_TAG))


def _promoted_columns(metadata: dict[str, str]) -> dict[str, Any]:
    columns = analytics.columns_from_metadata(metadata)
    if "session_id" in columns:
        _length("Session ID", analytics.MAX_SESSION_ID, columns["session_id"])
    return columns


def _plain_metadata(metadata: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in metadata.items() if k not in analytics.PROMOTED_KEYS}


class TraceService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # Reads -------------------------------------------------------------------------------

    def read(self, trace_id: str) -> repository.TraceRead:
        with self.db.read() as session:
            found = repository.load(session, [trace_id])
        if not found:
            raise trace_not_found(trace_id)
        return found[0]

    def get_info(self, trace_id: str) -> schemas.TraceInfoV3:
        read = self.read(trace_id)
        return serialize.trace_info(read.row, read.tags, read.metadata, read.assessments)

    def get_info_v2(self, request_id: str) -> schemas.TraceInfoV2:
        read = self.read(request_id)
        return serialize.trace_info_v2(read.row, read.tags, read.metadata)

    def batch_infos(
        self, trace_ids: Sequence[str], experiment_ids: Sequence[str]
    ) -> list[schemas.TraceInfoV3]:
        scope = [parse_experiment_id(e) for e in experiment_ids] if experiment_ids else None
        with self.db.read() as session:
            reads = repository.load(session, trace_ids, scope)
        return [serialize.trace_info(r.row, r.tags, r.metadata, r.assessments) for r in reads]

    # Start / end -------------------------------------------------------------------------

    def start(self, info: TraceInfoIn) -> schemas.TraceInfoV3:
        """StartTraceV3: create the trace, or complete the one its spans created."""
        trace_id = info.trace_id or ""
        location = info.trace_location.mlflow_experiment if info.trace_location else None
        if location is None or not location.experiment_id:
            raise invalid_parameter(
                "Missing value for required parameter "
                "'trace.trace_info.trace_location.mlflow_experiment.experiment_id'."
            )
        experiment_id = parse_experiment_id(location.experiment_id)
        tags = dict(info.tags)
        name = _trace_name(tags)
        metadata = dict(info.trace_metadata)
        columns = _promoted_columns(metadata)
        plain = _plain_metadata(metadata)
        plain[analytics.INFO_FINALIZED_KEY] = "true"
        request_time = info.request_time or 0
        with self.db.write() as session:
            artifact_root = check_experiment(session, experiment_id)
            row = repository.row_for_update(session, trace_id)
            fields: dict[str, Any] = {
                "experiment_id": experiment_id,
                "timestamp_ms": request_time,
                "execution_time_ms": info.execution_duration,
                "status": info.state,
                "client_request_id": info.client_request_id,
                **columns,
            }
            if row is None:
                repository.insert_row(
                    session,
                    {
                        "request_id": trace_id,
                        "trace_name": name,
                        "request_preview": info.request_preview,
                        "response_preview": info.response_preview,
                        "span_count": 0,
                        "span_bytes": 0,
                        **fields,
                    },
                )
            else:
                if TRACE_NAME_TAG in tags:
                    fields["trace_name"] = name
                if info.request_preview is not None:
                    fields["request_preview"] = info.request_preview
                if info.response_preview is not None:
                    fields["response_preview"] = info.response_preview
                repository.update_row(session, trace_id, fields)
                if row.span_count and row.experiment_id != experiment_id:
                    # Index rows carry the experiment their trace had when they arrived.
                    repository.set_spans_experiment(session, trace_id, experiment_id)
                repository.set_assessments_trace_time(
                    session, trace_id, request_time, experiment_id
                )
            tag_rows = {k: v for k, v in tags.items() if k != TRACE_NAME_TAG}
            tag_rows[ARTIFACT_LOCATION_TAG] = trace_artifact_location(artifact_root, trace_id)
            repository.upsert_tags(session, trace_id, tag_rows)
            repository.upsert_metadata(session, trace_id, plain)
            for item in info.assessments:
                merged = assessments.row_from(item, trace_id, experiment_id, request_time)
                session.merge(merged)
            outbox.append(
                session, TraceStart(trace_id, experiment_id=str(experiment_id), state=info.state)
            )
            if run_id := metadata.get(analytics.SOURCE_RUN_KEY):
                note_run_has_traces(session, [run_id])
            # The answer is read in the same transaction (the state it commits), on the
            # writer's connection: no second session and connection per request.
            read = repository.load_one(session, trace_id)
        assert read is not None  # written above
        return serialize.trace_info(read.row, read.tags, read.metadata, read.assessments)

    def start_v2(
        self,
        experiment_id: str | None,
        timestamp_ms: int | None,
        request_metadata: dict[str, str],
        tags: dict[str, str],
    ) -> schemas.TraceInfoV2:
        """The deprecated v2 StartTrace: a new IN_PROGRESS trace with a generated id."""
        import uuid

        exp_id = parse_experiment_id(experiment_id or "")
        name = _trace_name(tags)
        columns = _promoted_columns(request_metadata)
        request_id = uuid.uuid4().hex
        with self.db.write() as session:
            artifact_root = check_experiment(session, exp_id)
            repository.insert_row(
                session,
                {
                    "request_id": request_id,
                    "experiment_id": exp_id,
                    "timestamp_ms": timestamp_ms or 0,
                    "status": "IN_PROGRESS",
                    "trace_name": name,
                    "span_count": 0,
                    "span_bytes": 0,
                    **columns,
                },
            )
            tag_rows = {k: v for k, v in tags.items() if k != TRACE_NAME_TAG}
            tag_rows[ARTIFACT_LOCATION_TAG] = trace_artifact_location(artifact_root, request_id)
            repository.upsert_tags(session, request_id, tag_rows)
            repository.upsert_metadata(session, request_id, _plain_metadata(request_metadata))
            outbox.append(
                session, TraceStart(request_id, experiment_id=str(exp_id), state="IN_PROGRESS")
            )
            if run_id := request_metadata.get(analytics.SOURCE_RUN_KEY):
                note_run_has_traces(session, [run_id])
        return self.get_info_v2(request_id)

    def end_v2(
        self,
        request_id: str,
        timestamp_ms: int | None,
        status: str,
        request_metadata: dict[str, str],
        tags: dict[str, str],
    ) -> schemas.TraceInfoV2:
        columns = _promoted_columns(request_metadata)
        state = "STATE_UNSPECIFIED" if status == "TRACE_STATUS_UNSPECIFIED" else status
        with self.db.write() as session:
            row = repository.row_for_update(session, request_id)
            if row is None:
                raise trace_not_found(request_id)
            fields: dict[str, Any] = {
                "execution_time_ms": (timestamp_ms or 0) - row.timestamp_ms,
                "status": state,
                **columns,
            }
            tag_rows = dict(tags)
            if TRACE_NAME_TAG in tag_rows:
                fields["trace_name"] = _trace_name(tag_rows)
                del tag_rows[TRACE_NAME_TAG]
            repository.update_row(session, request_id, fields)
            repository.upsert_metadata(session, request_id, _plain_metadata(request_metadata))
            repository.upsert_tags(session, request_id, tag_rows)
            outbox.append(session, TraceEnd(request_id, state=state))
            if run_id := request_metadata.get(analytics.SOURCE_RUN_KEY):
                note_run_has_traces(session, [run_id])
        return self.get_info_v2(request_id)

    # Tags --------------------------------------------------------------------------------

    def set_tag(self, trace_id: str, key: str, value: str) -> None:
        if key in _IMMUTABLE_TAGS:
            raise invalid_parameter(f"Tag '{key}' is immutable and cannot be set on a trace.")
        value = validation.validate_tag(key, value)
        if key == TRACE_NAME_TAG:
            _length("Trace name", analytics.MAX_TRACE_NAME, value)
        with self.db.write() as session:
            if repository.get(session, trace_id) is None:
                raise trace_not_found(trace_id)
            if key == TRACE_NAME_TAG:
                repository.update_row(session, trace_id, {"trace_name": value})
            else:
                repository.upsert_tags(session, trace_id, {key: value})
            outbox.append(session, TraceSetTag(trace_id, key=key, value=value))

    def delete_tag(self, trace_id: str, key: str) -> None:
        if key in _IMMUTABLE_TAGS and key not in _DELETABLE_IMMUTABLE:
            raise invalid_parameter(f"Tag '{key}' is immutable and cannot be deleted on a trace.")
        missing = not_found(f"No trace tag with key '{key}' for trace with ID '{trace_id}'")
        with self.db.write() as session:
            row = repository.get(session, trace_id)
            if row is None:
                raise trace_not_found(trace_id)
            if key == TRACE_NAME_TAG:
                if row.trace_name is None:
                    raise missing
                repository.update_row(session, trace_id, {"trace_name": None})
            elif repository.delete_tag(session, trace_id, key) == 0:
                raise missing
            outbox.append(session, TraceDeleteTag(trace_id, key=key))

    # Links -------------------------------------------------------------------------------

    def link_to_run(self, trace_ids: Sequence[str], run_id: str) -> None:
        if not trace_ids:
            return
        if len(trace_ids) > MAX_TRACE_LINKS_PER_REQUEST:
            raise invalid_parameter(
                f"Cannot link more than {MAX_TRACE_LINKS_PER_REQUEST} traces to a run in a "
                f"single request. Provided {len(trace_ids)} traces."
            )
        with self.db.write() as session:
            run = session.scalar(select(Run.lifecycle_stage).where(Run.run_uuid == run_id))
            if run is None:
                raise not_found(f"Run with id={run_id} not found")
            found = repository.existing(session, list(trace_ids))
            for trace_id in repository.link_runs(
                session, [t for t in trace_ids if t in found], run_id
            ):
                outbox.append(session, TraceLinkRun(trace_id, run_id=run_id))
            note_run_has_traces(session, [run_id])

    def link_prompts(self, trace_id: str, prompts: Sequence[tuple[str, str]]) -> None:
        """Record the prompt versions a trace used (what `prompt = "name/version"` finds)."""
        if not prompts:
            return
        with self.db.write() as session:
            if repository.get(session, trace_id) is None:
                raise trace_not_found(trace_id)
            repository.link_prompts(session, trace_id, prompts)
            outbox.append(
                session, TraceLinkPrompts(trace_id, prompts=tuple(f"{n}/{v}" for n, v in prompts))
            )

    # Delete ------------------------------------------------------------------------------

    def delete(
        self,
        experiment_id: str,
        max_timestamp_millis: int | None,
        max_traces: int | None,
        trace_ids: Sequence[str],
    ) -> DeleteSelection:
        """MLflow's delete_traces: by ids, or by age (oldest first, at most `max_traces`)."""
        if max_timestamp_millis is None and not trace_ids:
            raise invalid_parameter(
                "Either `max_timestamp_millis` or `trace_ids` must be specified."
            )
        if max_timestamp_millis is not None and trace_ids:
            raise invalid_parameter(
                "Only one of `max_timestamp_millis` and `trace_ids` can be specified."
            )
        if trace_ids and max_traces is not None:
            raise invalid_parameter("`max_traces` can't be specified if `trace_ids` is specified.")
        if max_traces is not None and max_traces <= 0:
            raise invalid_parameter(
                f"`max_traces` must be a positive integer, received {max_traces}."
            )
        exp_id = parse_experiment_id(experiment_id)
        with self.db.write() as session:
            chosen = repository.traces_to_delete(
                session, exp_id, max_timestamp_millis, max_traces, trace_ids
            )
            ids = [trace_id for trace_id, _ in chosen]
            locations = repository.artifact_locations(session, ids)
            repository.delete_traces(session, ids)
            for trace_id in ids:
                outbox.append(session, TraceDelete(trace_id, experiment_id=str(exp_id)))
        return DeleteSelection(
            len(ids), [path for _, path in chosen if path], list(locations.values())
        )

    # Assessments -------------------------------------------------------------------------

    def create_assessment(self, trace_id: str, item: AssessmentIn) -> schemas.Assessment:
        assessments.kind_of(item)
        assessments.source_type(item)
        with self.db.write() as session:
            row = repository.get(session, trace_id, for_update=True)
            if row is None:
                raise not_found(f"Trace with ID '{trace_id}' not found.")
            new = assessments.row_from(item, trace_id, row.experiment_id, row.timestamp_ms)
            if new.overrides:
                updated = repository.set_assessment_valid(session, trace_id, new.overrides, False)
                if updated == 0:
                    raise not_found(
                        f"Assessment with ID '{new.overrides}' not found for trace '{trace_id}'"
                    )
            if repository.get_assessment(session, trace_id, new.assessment_id) is not None:
                raise MlflowError(
                    f"Failed to create assessment for trace '{trace_id}' due to a "
                    "constraint violation.",
                    "INTERNAL_ERROR",
                )
            session.add(new)
            session.flush()
            outbox.append(
                session,
                TraceSetAssessment(trace_id, assessment_id=new.assessment_id, name=new.name),
            )
            return serialize.assessment(new)

    def get_assessment(self, trace_id: str, assessment_id: str) -> schemas.Assessment:
        with self.db.read() as session:
            return serialize.assessment(_assessment_or_error(session, trace_id, assessment_id))

    def update_assessment(
        self, trace_id: str, assessment_id: str, item: AssessmentIn, paths: Sequence[str]
    ) -> schemas.Assessment:
        with self.db.write() as session:
            row = _assessment_or_error(session, trace_id, assessment_id)
            _apply_update(row, item, paths)
            session.flush()
            outbox.append(
                session, TraceSetAssessment(trace_id, assessment_id=assessment_id, name=row.name)
            )
            return serialize.assessment(row)

    def delete_assessment(self, trace_id: str, assessment_id: str) -> None:
        with self.db.write() as session:
            if repository.get(session, trace_id) is None:
                raise not_found(f"Trace with ID '{trace_id}' not found.")
            row = repository.get_assessment(session, trace_id, assessment_id)
            if row is None:
                return  # idempotent, as in MLflow
            if row.overrides:
                repository.set_assessment_valid(session, None, row.overrides, True)
            session.delete(row)
            outbox.append(session, TraceDeleteAssessment(trace_id, assessment_id=assessment_id))


def _assessment_or_error(session: Session, trace_id: str, assessment_id: str) -> Assessment:
    row = repository.get_assessment(session, trace_id, assessment_id)
    if row is not None:
        return row
    if repository.get(session, trace_id) is None:
        raise not_found(f"Trace with request_id '{trace_id}' not found")
    raise not_found(f"Assessment with ID '{assessment_id}' not found for trace '{trace_id}'")


def _apply_update(row: Assessment, item: AssessmentIn, paths: Sequence[str]) -> None:
    """MLflow's update_assessment: name, value (of the same kind), rationale and metadata
    (merged) may change; source and span stay; the update time is now."""
    import json

    for path in paths:
        if path == "assessment_name":
            row.name = item.assessment_name or ""
        elif path in ("expectation", "feedback"):
            if path == "expectation" and item.expectation is None:
                item = item.model_copy(update={"expectation": schemas.ExpectationIn()})
            if path == "feedback" and item.feedback is None:
                item = item.model_copy(update={"feedback": schemas.FeedbackIn()})
            if row.assessment_type != path:
                other = "Expectation" if path == "feedback" else "Feedback"
                raise invalid_parameter(
                    f"Cannot update {path} value on an {other} assessment."
                    if other == "Expectation"
                    else f"Cannot update {path} value on a {other} assessment."
                )
            value = assessments.value_of(item, path)
            row.value = json.dumps(value)
            if path == "feedback":
                row.error = assessments.error_json(item, path)
            row.aggregate_value, row.is_numeric_value = analytics.assessment_aggregate(value)
        elif path == "rationale" and row.assessment_type != "expectation":
            row.rationale = item.rationale or ""
        elif path == "metadata":
            merged = json.loads(row.assessment_metadata) if row.assessment_metadata else {}
            merged.update(item.metadata)
            row.assessment_metadata = json.dumps(merged) if merged else None
    if "expectation" in paths and "feedback" in paths:
        raise invalid_parameter("Cannot specify both `expectation` and `feedback` parameters.")
    row.last_updated_timestamp = now_ms()
