"""Logged-model operations: creation, finalization, deletion, params, tags and search.

Every write is one transaction that also appends its outbox record ("logged_model", model_id);
validation happens before the transaction starts, so rejected input changes nothing.

MLflow's server does almost no validation here (its SQL constraints do it, as raw 400
BAD_REQUEST IntegrityErrors); Tether refuses the same inputs with the same status and code and
a readable message, and additionally refuses values its columns cannot hold (so PostgreSQL
never fails with a 500 where MLflow's SQLite would have stored the value).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from tether.clock import now_ms
from tether.db import outbox
from tether.db.engine import Database
from tether.db.models import LoggedModel
from tether.db.outbox.records import (
    LoggedModelCreate,
    LoggedModelDelete,
    LoggedModelDeleteTag,
    LoggedModelFinalize,
    LoggedModelLogParams,
    LoggedModelSetTags,
)
from tether.db.visibility import EVERYTHING, Visibility
from tether.errors import MlflowError, invalid_parameter, not_found
from tether.search.experiment_ids import parse_experiment_id
from tether.tracking.experiments import repository as experiments
from tether.tracking.logged_models import repository
from tether.tracking.logged_models.schemas import LoggedModel as LoggedModelJson
from tether.tracking.logged_models.search import DatasetFilter, OrderBy, search_model_ids
from tether.tracking.logged_models.serialize import logged_model
from tether.tracking.names import random_run_name

MAX_NAME_LENGTH = 500
MAX_MODEL_TYPE_LENGTH = 500
MAX_SOURCE_RUN_ID_LENGTH = 32
MAX_KEY_LENGTH = 255
_BAD_NAME_CHARS = ("/", ":", ".", "%", '"', "'")
# LoggedModelStatus: protobuf names and numbers -> the stored name.
_STATUS_BY_PROTO = {proto: name for name, proto in repository.STATUS_PROTO.items()}
_STATUS_BY_NUMBER = {n: name for name, n in repository.STATUS_NUMBER.items()}
_LOAD_CHUNK = 500


@dataclass(frozen=True)
class KeyValueIn:
    key: str | None
    value: str | None


def model_not_found(model_id: str) -> MlflowError:
    return not_found(f"Logged model with ID '{model_id}' not found.")


def _check_length(field: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise invalid_parameter(f"'{field}' exceeds the maximum length of {limit} characters")


def _validate_name(name: str | None) -> None:
    """MLflow's `_validate_logged_model_name` (an empty name means "generate one")."""
    if not name:
        return
    if any(c in name for c in _BAD_NAME_CHARS):
        raise invalid_parameter(
            f"Invalid model name ({name!r}) provided. Model name must be a non-empty string "
            f"and cannot contain the following characters: {_BAD_NAME_CHARS}"
        )
    _check_length("name", name, MAX_NAME_LENGTH)


def _key_values(items: list[KeyValueIn], field: str) -> list[tuple[str, str]]:
    """Keys and values as MLflow stores them: absent ones are "" (protobuf's default)."""
    pairs = []
    for index, item in enumerate(items):
        key = item.key or ""
        _check_length(f"{field}[{index}].key", key, MAX_KEY_LENGTH)
        pairs.append((key, item.value or ""))
    return pairs


def _unique_params(params: list[tuple[str, str]]) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, value in params:
        if key in result:
            raise MlflowError(
                f"Duplicate param key '{key}' in the request: logged-model params are "
                "write-once, send each key once.",
                "BAD_REQUEST",
            )
        result[key] = value
    return result


def parse_status(value: str | int) -> str:
    """A LoggedModelStatus by protobuf name or number (as protobuf's JSON allows)."""
    if isinstance(value, str) and value.strip().lstrip("-").isdecimal():  # int() takes it
        value = int(value)
    if isinstance(value, int):
        if value in _STATUS_BY_NUMBER:
            return _STATUS_BY_NUMBER[value]
    elif value in _STATUS_BY_PROTO:
        return _STATUS_BY_PROTO[value]
    raise invalid_parameter(
        f"Invalid value {value!r} for parameter 'status': expected one of "
        f"{', '.join(_STATUS_BY_PROTO)} (or their numbers 0-3)."
    )


def check_body_model_id(path_id: str, body_id: str) -> None:
    if body_id != path_id:
        raise invalid_parameter(
            f"The model_id in the request body ('{body_id}') does not match the one in the "
            f"path ('{path_id}')."
        )


class LoggedModelService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # Reads -------------------------------------------------------------------------------

    def get(self, model_id: str, allow_deleted: bool = False) -> LoggedModelJson:
        if "\x00" in model_id:  # PostgreSQL text cannot hold NUL: no model has such an id
            raise model_not_found(model_id)
        with self.db.read() as session:
            row = repository.get(session, model_id)
            if row is None or (row.lifecycle_stage == "deleted" and not allow_deleted):
                raise model_not_found(model_id)
            return logged_model(repository.load_models(session, [model_id])[0])

    def search(
        self,
        *,
        experiment_ids: list[str],
        filter_string: str | None,
        datasets: list[tuple[str | None, str | None]],
        max_results: int | None,
        order_by: list[OrderBy],
        page_token: str | None,
        readable: Visibility = EVERYTHING,
    ) -> tuple[list[LoggedModelJson], str | None]:
        if not all(name for name, _ in datasets):
            raise invalid_parameter("`dataset_name` in the `datasets` clause must be specified.")
        dataset_filters = [DatasetFilter(name or "", digest or None) for name, digest in datasets]
        with self.db.read() as session:
            model_ids, token = search_model_ids(
                session,
                readable=readable,
                experiment_ids=experiment_ids,
                filter_string=filter_string or None,
                datasets=dataset_filters,
                max_results=max_results,
                order_by=order_by,
                page_token=page_token or None,
            )
            models: list[LoggedModelJson] = []
            for start in range(0, len(model_ids), _LOAD_CHUNK):
                chunk = repository.load_models(session, model_ids[start : start + _LOAD_CHUNK])
                models.extend(logged_model(rows) for rows in chunk)
        return models, token

    # Writes ------------------------------------------------------------------------------

    def create(
        self,
        *,
        experiment_id: str,
        name: str | None,
        model_type: str | None,
        source_run_id: str | None,
        params: list[KeyValueIn],
        tags: list[KeyValueIn],
    ) -> LoggedModelJson:
        _validate_name(name)
        _check_length("model_type", model_type, MAX_MODEL_TYPE_LENGTH)
        _check_length("source_run_id", source_run_id, MAX_SOURCE_RUN_ID_LENGTH)
        param_map = _unique_params(_key_values(params, "params"))
        tag_pairs = _key_values(tags, "tags")
        tag_map: dict[str, str] = {}
        for key, value in tag_pairs:
            if key in tag_map:
                raise MlflowError(
                    f"Duplicate tag key '{key}' in the request: send each key once.",
                    "BAD_REQUEST",
                )
            tag_map[key] = value
        exp_id = parse_experiment_id(experiment_id)
        model_id = f"m-{uuid.uuid4().hex}"
        with self.db.write() as session:
            experiment = experiments.get(session, exp_id)
            if experiment is None:
                raise not_found(f"No Experiment with id={exp_id} exists")
            if experiment.lifecycle_stage != "active":
                raise invalid_parameter(
                    f"The experiment {exp_id} must be in the 'active' state. "
                    f"Current state is {experiment.lifecycle_stage}."
                )
            now = now_ms()
            root = (experiment.artifact_location or "").rstrip("/")
            row = LoggedModel(
                model_id=model_id,
                experiment_id=exp_id,
                name=name or random_run_name(),
                artifact_location=f"{root}/models/{model_id}/artifacts",
                creation_time=now,
                last_updated_time=now,
                status="PENDING",
                status_message=None,
                lifecycle_stage="active",
                model_type=model_type or "",
                source_run_id=source_run_id or "",
            )
            session.add(row)
            session.flush()
            repository.insert_params(session, model_id, param_map)
            repository.upsert_tags(session, model_id, tag_map)
            outbox.append(
                session,
                LoggedModelCreate(
                    model_id,
                    experiment_id=str(exp_id),
                    name=row.name,
                    model_type=row.model_type,
                    source_run_id=row.source_run_id,
                    artifact_location=row.artifact_location,
                    status=row.status,
                    creation_timestamp_ms=now,
                    params=param_map,
                    tags=tag_map,
                ),
            )
            return logged_model(repository.load_models(session, [model_id])[0])

    def finalize(self, model_id: str, status: str | int) -> LoggedModelJson:
        new_status = parse_status(status)
        with self.db.write() as session:
            row = self._model(session, model_id)
            row.status = new_status
            row.last_updated_time = now_ms()
            session.flush()
            outbox.append(
                session,
                LoggedModelFinalize(
                    model_id, status=new_status, last_updated_timestamp_ms=row.last_updated_time
                ),
            )
            return logged_model(repository.load_models(session, [model_id])[0])

    def delete(self, model_id: str) -> None:
        with self.db.write() as session:
            row = self._model(session, model_id)
            row.lifecycle_stage = "deleted"
            row.last_updated_time = now_ms()
            outbox.append(session, LoggedModelDelete(model_id))

    def set_tags(self, model_id: str, tags: list[KeyValueIn]) -> None:
        # Repeated keys: the last value wins, as in MLflow.
        tag_map = dict(_key_values(tags, "tags"))
        with self.db.write() as session:
            self._model(session, model_id)
            if not tag_map:
                return
            repository.upsert_tags(session, model_id, tag_map)
            outbox.append(session, LoggedModelSetTags(model_id, tags=tag_map))

    def delete_tag(self, model_id: str, key: str) -> None:
        with self.db.write() as session:
            self._model(session, model_id)
            if "\x00" in key or repository.delete_tag(session, model_id, key) == 0:
                raise not_found(f"No tag with key {key!r} found for model with ID {model_id!r}.")
            outbox.append(session, LoggedModelDeleteTag(model_id, key=key))

    def log_params(self, model_id: str, params: list[KeyValueIn]) -> None:
        param_map = _unique_params(_key_values(params, "params"))
        with self.db.write() as session:
            self._model(session, model_id)
            if not param_map:
                return
            existing = repository.param_keys(session, model_id, list(param_map))
            if existing:
                raise MlflowError(
                    f"Params {sorted(existing)} were already logged for model '{model_id}': "
                    "logged-model params are write-once.",
                    "BAD_REQUEST",
                )
            repository.insert_params(session, model_id, param_map)
            outbox.append(session, LoggedModelLogParams(model_id, params=param_map))

    # Helpers -----------------------------------------------------------------------------

    @staticmethod
    def _model(session: Session, model_id: str) -> LoggedModel:
        """The model (deleted ones included, as MLflow's writes accept them), row-locked."""
        if "\x00" in model_id:
            raise model_not_found(model_id)
        row = repository.get(session, model_id, for_update=True)
        if row is None:
            raise model_not_found(model_id)
        return row
