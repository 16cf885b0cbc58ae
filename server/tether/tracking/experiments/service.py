"""Experiment operations: validation, lifecycle rules and the outbox record of each write."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tether.clock import now_ms
from tether.db import outbox, workspace_scope
from tether.db.engine import Database
from tether.db.models import Experiment, Workspace
from tether.db.models.workspaces import DEFAULT_WORKSPACE
from tether.db.outbox.records import (
    ExperimentCreate,
    ExperimentDelete,
    ExperimentDeleteTag,
    ExperimentRename,
    ExperimentRestore,
    ExperimentSetTag,
)
from tether.db.visibility import EVERYTHING, Visibility
from tether.errors import MlflowError, already_exists, invalid_parameter, not_found
from tether.search.experiment_ids import parse_experiment_id, parse_experiment_ids
from tether.storage.locations import absolute_if_local
from tether.tracking import validation
from tether.tracking.experiments import repository, serialize
from tether.tracking.experiments.schemas import DatasetSummary
from tether.tracking.experiments.schemas import Experiment as ExperimentJson
from tether.tracking.experiments.search import search_experiment_ids

DEFAULT_EXPERIMENT_ID = 0
# MLflow's limits of experiments/search-datasets.
MAX_DATASET_SEARCH_EXPERIMENTS = 20
MAX_DATASET_SUMMARIES = 1000
_VIEW_TYPES = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}


def _stages(view_type: str) -> set[str]:
    return {"ACTIVE_ONLY": {"active"}, "DELETED_ONLY": {"deleted"}}.get(
        view_type, {"active", "deleted"}
    )


def normalize_view_type(value: str | int | None) -> str:
    if value is None or value == "":
        return "ACTIVE_ONLY"
    if isinstance(value, int):
        if value in _VIEW_TYPES:
            return _VIEW_TYPES[value]
    elif value.upper() in _VIEW_TYPES.values():
        return value.upper()
    elif value.isdecimal() and int(value) in _VIEW_TYPES:  # isdigit() takes "²", int() not
        return _VIEW_TYPES[int(value)]
    raise invalid_parameter(f"Invalid view type '{value}'")


def _in_workspace(row: Experiment) -> bool:
    """In the request's workspace (always, with workspaces off): the experiments endpoints'
    own check, for callers outside the routes' guard (the UI's GraphQL)."""
    active = workspace_scope.active()
    return active is None or row.workspace == active


def _name_taken(name: str) -> MlflowError:
    """Renaming onto a taken name: MLflow's store hits the unique constraint and answers 400
    BAD_REQUEST (with the SQL error as its message, which Tether does not copy)."""
    return MlflowError(f"Experiment(name={name}) already exists.", "BAD_REQUEST")


class ExperimentService:
    """`workspaces`: MLflow 3.17's workspaces are on (`--enable-workspaces`); then new
    experiments go into the request's workspace (`tether.db.workspace_scope`), under its
    `default_artifact_root` or `<artifact root>/workspaces/<name>/<id>`, as MLflow's
    workspace-aware store puts them, and an explicit `artifact_location` is refused."""

    def __init__(self, db: Database, artifact_root: str, *, workspaces: bool = False) -> None:
        self.db = db
        self.artifact_root = artifact_root
        self.workspaces = workspaces

    def _artifact_location_for(
        self, experiment_id: int, session: Session | None = None, workspace: str | None = None
    ) -> str:
        root = self.artifact_root.rstrip("/")
        if self.workspaces:
            name = workspace or workspace_scope.current()
            own = session.get(Workspace, name) if session is not None else None
            if own is not None and own.default_artifact_root:
                root = own.default_artifact_root.rstrip("/")
            else:
                root = f"{root}/workspaces/{name}"
        return f"{root}/{experiment_id}"

    def ensure_default_experiment(self) -> None:
        with self.db.write() as session:
            if repository.get(session, DEFAULT_EXPERIMENT_ID) is not None:
                return
            location = self._artifact_location_for(
                DEFAULT_EXPERIMENT_ID, session, DEFAULT_WORKSPACE
            )
            repository.insert_default(session, location, now_ms())
            outbox.append(
                session,
                ExperimentCreate(
                    str(DEFAULT_EXPERIMENT_ID), name="Default", artifact_location=location, tags={}
                ),
            )

    # Reads -------------------------------------------------------------------------------

    def get(self, experiment_id: str) -> ExperimentJson:
        exp_id = parse_experiment_id(experiment_id)
        with self.db.read() as session:
            row = repository.get(session, exp_id)
            if row is None or not _in_workspace(row):
                raise not_found(f"No Experiment with id={exp_id} exists")
            return serialize.experiment(row, repository.tags_for(session, [exp_id])[exp_id])

    def get_by_name(self, name: str) -> ExperimentJson:
        with self.db.read() as session:
            row = repository.get_by_name(session, name)
            if row is None:
                raise not_found(f"Could not find experiment with name '{name}'")
            tags = repository.tags_for(session, [row.experiment_id])[row.experiment_id]
            return serialize.experiment(row, tags)

    def search(
        self,
        *,
        view_type: str,
        max_results: int | None,
        filter_string: str,
        order_by: list[str],
        page_token: str | None,
        readable: Visibility = EVERYTHING,
    ) -> tuple[list[ExperimentJson], str | None]:
        with self.db.read() as session:
            ids, token = search_experiment_ids(
                session,
                readable=readable,
                view_type=view_type,
                filter_string=filter_string,
                max_results=1000 if max_results is None else max_results,
                order_by=order_by,
                page_token=page_token,
            )
            rows = repository.get_many(session, ids)
            tags = repository.tags_for(session, ids)
            return [serialize.experiment(rows[i], tags[i]) for i in ids], token

    def search_datasets(self, experiment_ids: list[str]) -> list[DatasetSummary]:
        """The datasets the experiments' runs used, as MLflow's search-datasets lists them
        (ids of missing experiments simply find nothing)."""
        if not experiment_ids:
            raise invalid_parameter(
                "SearchDatasets request must specify at least one experiment_id."
            )
        if len(experiment_ids) > MAX_DATASET_SEARCH_EXPERIMENTS:
            raise invalid_parameter(
                "SearchDatasets request cannot specify more than "
                f"{MAX_DATASET_SEARCH_EXPERIMENTS} experiment_ids. "
                f"Received {len(experiment_ids)} experiment_ids."
            )
        ids = parse_experiment_ids(experiment_ids)
        with self.db.read() as session:
            rows = repository.dataset_summaries(session, ids, MAX_DATASET_SUMMARIES)
        summaries: list[DatasetSummary] = []
        for experiment_id, name, digest, context in rows:
            summary: DatasetSummary = {
                "experiment_id": str(experiment_id),
                "name": name,
                "digest": digest,
            }
            if context is not None:
                summary["context"] = context
            summaries.append(summary)
        return summaries

    # Writes ------------------------------------------------------------------------------

    def create(self, name: str, artifact_location: str, tags: list[tuple[str, str]]) -> str:
        if self.workspaces and artifact_location:
            raise invalid_parameter(
                "artifact_location cannot be specified when workspaces are enabled"
            )
        validation.validate_experiment_name(name)
        artifact_location = absolute_if_local(artifact_location) if artifact_location else ""
        for key, value in tags:
            validation.validate_experiment_tag(key, value)
        tag_map = dict(tags)
        try:
            with self.db.write() as session:
                if repository.get_by_name(session, name) is not None:
                    raise already_exists(f"Experiment(name={name}) already exists.")
                row = repository.insert_experiment(
                    session, name=name, artifact_location=artifact_location or None, now=now_ms()
                )
                if not artifact_location:
                    row.artifact_location = self._artifact_location_for(row.experiment_id, session)
                repository.upsert_tags(session, row.experiment_id, tag_map)
                outbox.append(
                    session,
                    ExperimentCreate(
                        str(row.experiment_id),
                        name=name,
                        artifact_location=row.artifact_location,
                        tags=tag_map,
                    ),
                )
                return str(row.experiment_id)
        except IntegrityError:
            # Another request created the same name between our check and our insert.
            raise already_exists(f"Experiment(name={name}) already exists.") from None

    def _load(self, session: Any, experiment_id: str, stages: set[str]) -> Experiment:
        exp_id = parse_experiment_id(experiment_id)
        row = repository.get(session, exp_id)
        if row is None or row.lifecycle_stage not in stages or not _in_workspace(row):
            raise not_found(f"No Experiment with id={exp_id} exists")
        return row

    @staticmethod
    def _check_active(row: Experiment) -> None:
        if row.lifecycle_stage != "active":
            raise invalid_parameter(
                f"The experiment {row.experiment_id} must be in the 'active' state. "
                f"Current state is {row.lifecycle_stage}."
            )

    def delete(self, experiment_id: str) -> None:
        self._set_lifecycle(experiment_id, from_stage="active", to_stage="deleted")

    def restore(self, experiment_id: str) -> None:
        self._set_lifecycle(experiment_id, from_stage="deleted", to_stage="active")

    def _set_lifecycle(self, experiment_id: str, *, from_stage: str, to_stage: str) -> None:
        with self.db.write() as session:
            row = self._load(session, experiment_id, {from_stage})
            now = now_ms()
            row.lifecycle_stage = to_stage
            row.last_update_time = now
            deleted_time = now if to_stage == "deleted" else None
            run_ids = repository.set_runs_lifecycle(
                session, row.experiment_id, to_stage, deleted_time
            )
            entity_id, ids = str(row.experiment_id), tuple(run_ids)
            outbox.append(
                session,
                ExperimentDelete(entity_id, run_ids=ids)
                if to_stage == "deleted"
                else ExperimentRestore(entity_id, run_ids=ids),
            )

    def rename(self, experiment_id: str, new_name: str) -> None:
        validation.validate_experiment_name(new_name)
        try:
            with self.db.write() as session:
                row = self._load(session, experiment_id, _stages("ALL"))
                if row.lifecycle_stage != "active":
                    raise MlflowError("Cannot rename a non-active experiment.", "INVALID_STATE")
                existing = repository.get_by_name(session, new_name)
                if existing is not None and existing.experiment_id != row.experiment_id:
                    raise _name_taken(new_name)
                row.name = new_name
                row.last_update_time = now_ms()
                outbox.append(session, ExperimentRename(str(row.experiment_id), name=new_name))
        except IntegrityError:
            raise _name_taken(new_name) from None

    def set_tag(self, experiment_id: str, key: str, value: str) -> None:
        validation.validate_experiment_tag(key, value)
        with self.db.write() as session:
            row = self._load(session, experiment_id, _stages("ALL"))
            self._check_active(row)
            repository.upsert_tags(session, row.experiment_id, {key: value})
            outbox.append(session, ExperimentSetTag(str(row.experiment_id), key=key, value=value))

    def delete_tag(self, experiment_id: str, key: str) -> None:
        with self.db.write() as session:
            row = self._load(session, experiment_id, _stages("ALL"))
            self._check_active(row)
            if repository.delete_tag(session, row.experiment_id, key) == 0:
                raise not_found(f"No tag with name: {key} in experiment with id {experiment_id}")
            outbox.append(session, ExperimentDeleteTag(str(row.experiment_id), key=key))
