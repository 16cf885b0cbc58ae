"""Logged models as MLflow's JSON shows them (`LoggedModel.to_proto`)."""

from __future__ import annotations

from typing import cast

from tether.db.models import LoggedModelMetric
from tether.tracking.experiments.serialize import key_values
from tether.tracking.logged_models import schemas
from tether.tracking.logged_models.repository import STATUS_PROTO, ModelRows
from tether.tracking.metrics.schemas import Metric


def logged_model(rows: ModelRows) -> schemas.LoggedModel:
    data: schemas.LoggedModelData = {}
    if rows.params:
        data["params"] = key_values(rows.params)
    if rows.metrics:
        data["metrics"] = [_metric(point) for point in rows.metrics]
    return {"info": _info(rows), "data": data}


def _info(rows: ModelRows) -> schemas.LoggedModelInfo:
    row = rows.row
    status = STATUS_PROTO.get(row.status, "LOGGED_MODEL_STATUS_UNSPECIFIED")
    info: schemas.LoggedModelInfo = {
        "model_id": row.model_id,
        "experiment_id": str(row.experiment_id),
        "name": row.name,
        "creation_timestamp_ms": row.creation_time,
        "last_updated_timestamp_ms": row.last_updated_time,
        "artifact_uri": row.artifact_location,
        "status": cast(schemas.LoggedModelStatus, status),
    }
    if row.model_type is not None:
        info["model_type"] = row.model_type
    if row.source_run_id is not None:
        info["source_run_id"] = row.source_run_id
    if row.status_message is not None:
        info["status_message"] = row.status_message
    if rows.tags:
        info["tags"] = key_values(rows.tags)
    return info


def _metric(point: LoggedModelMetric) -> Metric:
    body: Metric = {
        "key": point.key,
        # NaN is stored as 0 (as MLflow's store does); no NULL is ever written.
        "value": 0.0 if point.value is None else point.value,
        "timestamp": point.timestamp,
        "step": point.step,
    }
    if point.dataset_name is not None:
        body["dataset_name"] = point.dataset_name
    if point.dataset_digest is not None:
        body["dataset_digest"] = point.dataset_digest
    body["model_id"] = point.model_id
    body["run_id"] = point.run_id
    return body
