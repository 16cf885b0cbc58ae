"""Run operations: creation, lifecycle, params, tags, metric logging, inputs and search.

Every write is one transaction that also appends its outbox record; validation happens
before the transaction starts, so rejected input changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from tether.clock import now_ms
from tether.db import outbox, workspace_scope
from tether.db.engine import Database
from tether.db.models import Dataset, InputTag, Run, RunInput
from tether.db.outbox.records import (
    DatasetInput,
    ModelOutput,
    RunCreate,
    RunDelete,
    RunDeleteTag,
    RunLogBatch,
    RunLogInputs,
    RunLogOutputs,
    RunRestore,
    RunSetTag,
    RunUpdate,
    id_ranges,
)
from tether.db.visibility import EVERYTHING, Visibility
from tether.errors import MlflowError, invalid_parameter, missing_value, not_found
from tether.search.experiment_ids import parse_experiment_id
from tether.tracking import validation
from tether.tracking.experiments import repository as experiments
from tether.tracking.experiments.service import DEFAULT_EXPERIMENT_ID
from tether.tracking.logged_models import repository as logged_models
from tether.tracking.logged_models.service import model_not_found
from tether.tracking.metrics.repository import Point, insert_points, sanitized_points
from tether.tracking.names import random_run_name
from tether.tracking.runs import repository, serialize
from tether.tracking.runs.schemas import MetricIn, RunInfo
from tether.tracking.runs.schemas import Run as RunJson
from tether.tracking.runs.search import search_run_ids

RUN_NAME_TAG = "mlflow.runName"
# Runs loaded per round of queries: the ids go as one parameter (db.dialect.in_list), so
# this only bounds the rows held at once.
_LOAD_CHUNK = 5000


@dataclass(frozen=True)
class DatasetIn:
    name: str | None
    digest: str | None
    source_type: str | None
    source: str | None
    schema: str | None
    profile: str | None
    tags: list[tuple[str | None, str | None]]


def _artifact_uri(experiment_location: str | None, run_id: str) -> str:
    return f"{(experiment_location or '').rstrip('/')}/{run_id}/artifacts"


def _check_metric_datasets(metrics: list[MetricIn]) -> None:
    """MLflow's Metric entity: a dataset is named by both its name and digest, or not at all."""
    for m in metrics:
        if not m.dataset_name and not m.dataset_digest:
            continue
        if (m.dataset_name or None, m.dataset_digest or None).count(None) == 1:
            raise invalid_parameter(
                "Both dataset_name and dataset_digest must be provided if one is provided"
            )


def _validate_metrics(metrics: list[MetricIn]) -> None:
    """`validate_metric` for each point, in order, with the same first error. A batch repeats
    a few keys many times, so each key's name checks (a regex and a path normalisation) run
    once; the points after that only need their value and timestamp looked at."""
    valid_keys: set[str] = set()
    for i, m in enumerate(metrics):
        key, timestamp = m.key, m.timestamp
        if key in valid_keys and m.value is not None and timestamp is not None and timestamp >= 0:
            continue
        validation.validate_metric(key, m.value, m.timestamp, m.step, path=f"metrics[{i}]")
        valid_keys.add(key)  # type: ignore[arg-type]  # validate_metric refused None


def _model_point(metric: MetricIn, point: Point) -> logged_models.ModelMetric:
    return logged_models.ModelMetric(
        model_id=metric.model_id or "",
        key=point.key,
        value=point.value,  # NaN is stored as 0 and infinities clamped, as MLflow does
        timestamp=point.timestamp,
        step=point.step,
        dataset_name=metric.dataset_name or None,
        dataset_digest=metric.dataset_digest or None,
    )


def _check_models_exist(session: Session, model_ids: list[str]) -> None:
    if not model_ids:
        return
    found = logged_models.existing_ids(session, model_ids)
    for model_id in model_ids:
        if model_id not in found:
            raise model_not_found(model_id)


class RunService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # Reads -------------------------------------------------------------------------------

    def get(self, run_id: str) -> RunJson:
        with self.db.read() as session:
            read = repository.load_runs(
                session, [run_id], with_outputs=True, with_model_inputs=True
            )
            if not read.ids:
                raise not_found(f"Run with id={run_id} not found")
            run = serialize.runs(read)[0]
            # Another workspace's run does not exist here (the routes' guard checks this too;
            # the UI's GraphQL reads runs through this method alone).
            if not workspace_scope.holds_experiment(session, int(run["info"]["experiment_id"])):
                raise not_found(f"Run with id={run_id} not found")
        return run

    def search(
        self,
        *,
        experiment_ids: list[str],
        filter_string: str,
        run_view_type: str,
        max_results: int,
        order_by: list[str],
        page_token: str | None,
        readable: Visibility = EVERYTHING,
    ) -> tuple[list[RunJson], str | None]:
        validation.validate_search_runs_max_results(max_results)
        with self.db.read() as session:
            run_ids, token = search_run_ids(
                session,
                readable=readable,
                experiment_ids=experiment_ids,
                filter_string=filter_string,
                run_view_type=run_view_type,
                max_results=max_results,
                order_by=order_by,
                page_token=page_token,
            )
            runs: list[RunJson] = []
            for start in range(0, len(run_ids), _LOAD_CHUNK):
                chunk = run_ids[start : start + _LOAD_CHUNK]
                runs.extend(serialize.runs(repository.load_runs(session, chunk, with_outputs=True)))
        return runs, token

    # Lifecycle ---------------------------------------------------------------------------

    def create(
        self,
        *,
        experiment_id: str,
        user_id: str,
        start_time: int | None,
        run_name: str,
        tags: list[tuple[str, str]],
    ) -> RunJson:
        exp_id = parse_experiment_id(experiment_id or DEFAULT_EXPERIMENT_ID)
        tag_map = {k: validation.validate_tag(k, v) for k, v in tags}
        name_tag = tag_map.get(RUN_NAME_TAG)
        if run_name and name_tag and run_name != name_tag:
            raise invalid_parameter(
                "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
                f"different values (run_name='{run_name}', mlflow.runName='{name_tag}')."
            )
        name = run_name or name_tag or random_run_name()
        tag_map[RUN_NAME_TAG] = name
        run_id = uuid.uuid4().hex
        with self.db.write() as session:
            experiment = experiments.stage_and_location(session, exp_id)
            if experiment is None:
                raise not_found(f"No Experiment with id={exp_id} exists")
            stage, artifact_location = experiment
            if stage != "active":
                raise invalid_parameter(
                    f"The experiment {exp_id} must be in the 'active' state. "
                    f"Current state is {stage}."
                )
            run = Run(
                run_uuid=run_id,
                experiment_id=exp_id,
                name=name,
                user_id=user_id,
                status="RUNNING",
                start_time=now_ms() if start_time is None else start_time,
                lifecycle_stage="active",
                artifact_uri=_artifact_uri(artifact_location, run_id),
            )
            repository.insert_run(session, run)
            repository.upsert_tags(session, run_id, tag_map)
            outbox.append(
                session,
                RunCreate(
                    run_id,
                    experiment_id=str(exp_id),
                    name=name,
                    user_id=user_id,
                    start_time=run.start_time,
                    artifact_uri=run.artifact_uri,
                    tags=tag_map,
                ),
            )
        # A new run has only its tags: answer what load_runs would read back (in the order
        # they were inserted), without the six queries.
        return serialize.run(repository.columns_of(run), tags=list(tag_map.items()))

    def update(
        self, run_id: str, status: str | int | None, end_time: int | None, run_name: str | None
    ) -> RunInfo:
        new_status = validation.run_status(status)
        with self.db.write() as session:
            run = self._active_run(session, run_id)
            if new_status is not None:
                run.status = new_status
            if end_time is not None:
                run.end_time = end_time
            if run_name:
                run.name = run_name
                repository.upsert_tags(session, run_id, {RUN_NAME_TAG: run_name})
            outbox.append(
                session,
                RunUpdate(run_id, status=new_status, end_time=end_time, run_name=run_name or None),
            )
            return serialize.run_info(repository.columns_of(run))

    def delete(self, run_id: str) -> None:
        self._set_lifecycle(run_id, "deleted")

    def restore(self, run_id: str) -> None:
        self._set_lifecycle(run_id, "active")

    def _set_lifecycle(self, run_id: str, stage: str) -> None:
        with self.db.write() as session:
            run = self._run(session, run_id)
            run.lifecycle_stage = stage
            run.deleted_time = now_ms() if stage == "deleted" else None
            outbox.append(session, RunDelete(run_id) if stage == "deleted" else RunRestore(run_id))

    # Data --------------------------------------------------------------------------------

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        stored = validation.validate_tag(key, value)
        with self.db.write() as session:
            run = self._active_run(session, run_id)
            if key == RUN_NAME_TAG:
                run.name = stored
            repository.upsert_tags(session, run_id, {key: stored})
            outbox.append(session, RunSetTag(run_id, key=key, value=stored))

    def delete_tag(self, run_id: str, key: str) -> None:
        with self.db.write() as session:
            self._active_run(session, run_id)
            if repository.delete_tag(session, run_id, key) == 0:
                raise not_found(f"No tag with name: {key} in run with id {run_id}")
            outbox.append(session, RunDeleteTag(run_id, key=key))

    def log_param(self, run_id: str, key: str, value: str) -> None:
        stored = validation.validate_param(key, value)
        with self.db.write() as session:
            self._active_run(session, run_id)
            existing = repository.params_for(session, run_id, [key])
            if key in existing:
                if existing[key] != stored:
                    raise invalid_parameter(
                        f"Changing param values is not allowed. Param with key='{key}' was "
                        f"already logged with value='{existing[key]}' for run ID='{run_id}'. "
                        f"Attempted logging new value '{stored}'."
                    )
                return
            repository.insert_params(session, run_id, {key: stored})
            outbox.append(session, RunLogBatch(run_id, params={key: stored}))

    def log_metric(self, run_id: str, metric: MetricIn) -> None:
        _check_metric_datasets([metric])
        validation.validate_metric(metric.key, metric.value, metric.timestamp, metric.step)
        self._log(run_id, [metric], {}, {})

    def log_batch(
        self,
        run_id: str,
        metrics: list[MetricIn],
        params: list[tuple[str | None, str | None]],
        tags: list[tuple[str | None, str | None]],
    ) -> None:
        _check_metric_datasets(metrics)
        validation.validate_run_id(run_id)
        _validate_metrics(metrics)
        param_map: dict[str, str] = {}
        for i, (key, value) in enumerate(params):
            param_map[key or ""] = validation.validate_param(key, value, path=f"params[{i}]")
        tag_map: dict[str, str] = {}
        for i, (key, value) in enumerate(tags):
            tag_map[key or ""] = validation.validate_tag(key, value, path=f"tags[{i}]")
        validation.validate_batch_limits(len(metrics), len(params), len(tags))
        validation.validate_unique_param_keys([key or "" for key, _ in params])
        self._log(run_id, metrics, param_map, tag_map)

    def _log(
        self, run_id: str, metrics: list[MetricIn], params: dict[str, str], tags: dict[str, str]
    ) -> None:
        # Validation has already refused points without a key, value or timestamp.
        points = sanitized_points(metrics)
        model_points = [
            _model_point(m, p) for m, p in zip(metrics, points, strict=True) if m.model_id
        ]
        with self.db.write() as session:
            _check_active(run_id, repository.lock_lifecycle_stage(session, run_id))
            _check_models_exist(session, [p.model_id for p in model_points])
            new_params = self._check_params(session, run_id, params)
            repository.insert_params(session, run_id, new_params)
            model_metric_ids = logged_models.insert_metrics(session, run_id, model_points)
            metric_ids = insert_points(session, run_id, points)
            if RUN_NAME_TAG in tags:
                repository.set_name(session, run_id, tags[RUN_NAME_TAG])
            repository.upsert_tags(session, run_id, tags)
            if new_params or tags or metric_ids or model_metric_ids:
                outbox.append(
                    session,
                    RunLogBatch(
                        run_id,
                        params=new_params,
                        tags=tags,
                        metric_ids=id_ranges(metric_ids),
                        model_metric_ids=id_ranges(model_metric_ids),
                    ),
                )

    @staticmethod
    def _check_params(session: Session, run_id: str, params: dict[str, str]) -> dict[str, str]:
        """Params are write-once: equal re-logs are no-ops, different values are refused."""
        if not params:
            return {}
        existing = repository.params_for(session, run_id, list(params))
        conflicts = [
            {"key": k, "old_value": existing[k], "new_value": v}
            for k, v in params.items()
            if k in existing and existing[k] != v
        ]
        if conflicts:
            raise invalid_parameter(
                "Changing param values is not allowed. Params were already"
                f" logged='{conflicts}' for run ID='{run_id}'."
            )
        return {k: v for k, v in params.items() if k not in existing}

    def log_inputs(self, run_id: str, inputs: list[DatasetIn | None], model_ids: list[str]) -> None:
        validation.validate_run_id(run_id)
        for index, model_id in enumerate(model_ids):
            if not model_id:
                raise missing_value(f"models[{index}].model_id")
        datasets: list[DatasetIn] = []
        for ds in inputs:
            if ds is None:
                raise invalid_parameter("Dataset cannot be None")
            datasets.append(ds)
        for ds in datasets:
            validation.validate_dataset(
                ds.name, ds.digest, ds.source_type, ds.source, ds.schema, ds.profile, ds.tags
            )
        unique: dict[tuple[str, str], DatasetIn] = {}
        for ds in datasets:  # The first input of each (name, digest) wins, as in MLflow.
            unique.setdefault((ds.name or "", ds.digest or ""), ds)
        with self.db.write() as session:
            run = self._active_run(session, run_id)
            _check_models_exist(session, model_ids)
            linked = logged_models.linked_models(session, run_id, logged_models.INPUT)
            # Re-logging a model input is a no-op, as in MLflow.
            new_models = [m for m in dict.fromkeys(model_ids) if m not in linked]
            logged_models.insert_links(
                session, run_id, logged_models.INPUT, [(m, 0) for m in new_models]
            )
            known = repository.datasets_by_name_digest(session, run.experiment_id, list(unique))
            logged = []
            for (name, digest), ds in unique.items():
                dataset_uuid = known.get((name, digest))
                if dataset_uuid is None:
                    dataset_uuid = uuid.uuid4().hex
                    session.add(
                        Dataset(
                            dataset_uuid=dataset_uuid,
                            experiment_id=run.experiment_id,
                            name=name,
                            digest=digest,
                            source_type=ds.source_type or "",
                            source=ds.source or "",
                            schema=ds.schema,
                            profile=ds.profile,
                        )
                    )
                    session.flush()
                if repository.existing_input(session, run_id, dataset_uuid) is not None:
                    continue
                input_uuid = uuid.uuid4().hex
                session.add(
                    RunInput(input_uuid=input_uuid, run_uuid=run_id, dataset_uuid=dataset_uuid)
                )
                session.flush()
                tags = {k or "": v or "" for k, v in ds.tags}
                session.add_all(
                    InputTag(input_uuid=input_uuid, name=k, value=v) for k, v in tags.items()
                )
                logged.append(DatasetInput(name=name, digest=digest, tags=tags))
            if logged or new_models:
                outbox.append(
                    session, RunLogInputs(run_id, datasets=tuple(logged), models=tuple(new_models))
                )

    def log_outputs(self, run_id: str, models: list[tuple[str, int]]) -> None:
        """MLflow 3's runs/outputs: the logged models a run produced (at a step)."""
        for index, (model_id, _) in enumerate(models):
            if not model_id:
                raise missing_value(f"models[{index}].model_id")
        with self.db.write() as session:
            self._active_run(session, run_id)
            _check_models_exist(session, [m for m, _ in models])
            linked = logged_models.linked_models(session, run_id, logged_models.OUTPUT)
            seen: set[str] = set()
            for model_id, _ in models:
                # MLflow's store refuses a second output link of the same model (a unique
                # constraint: 400 BAD_REQUEST), whatever its step.
                if model_id in linked or model_id in seen:
                    raise MlflowError(
                        f"Model '{model_id}' is already an output of run '{run_id}'.",
                        "BAD_REQUEST",
                    )
                seen.add(model_id)
            if not models:
                return
            logged_models.insert_links(session, run_id, logged_models.OUTPUT, models)
            outputs = tuple(ModelOutput(model_id=m, step=step) for m, step in models)
            outbox.append(session, RunLogOutputs(run_id, models=outputs))

    # Helpers -----------------------------------------------------------------------------

    @staticmethod
    def _run(session: Session, run_id: str) -> Run:
        run = repository.get(session, run_id, for_update=True)
        if run is None:
            raise not_found(f"Run with id={run_id} not found")
        return run

    def _active_run(self, session: Session, run_id: str) -> Run:
        run = self._run(session, run_id)
        _check_active(run_id, run.lifecycle_stage)
        return run


def _check_active(run_id: str, lifecycle_stage: str | None) -> None:
    """None: the run does not exist."""
    if lifecycle_stage is None:
        raise not_found(f"Run with id={run_id} not found")
    if lifecycle_stage != "active":
        raise invalid_parameter(
            f"The run {run_id} must be in the 'active' state. Current state is {lifecycle_stage}."
        )
