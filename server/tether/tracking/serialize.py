"""Shape rows as MLflow's protobuf JSON: int64 as numbers, NaN as "NaN", empty lists omitted."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tether.db.models import Dataset, Experiment, Run


def float_value(value: float, is_nan: bool) -> float | str:
    # Protobuf's JSON mapping spells non-finite doubles as strings; stored infinities are
    # already clamped to +-DBL_MAX like MLflow does.
    return "NaN" if is_nan else value


def key_values(pairs: Iterable[tuple[str, str | None]]) -> list[dict[str, Any]]:
    return [{"key": k, "value": v} if v is not None else {"key": k} for k, v in pairs]


def experiment(row: Experiment, tags: list[tuple[str, str | None]]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "experiment_id": str(row.experiment_id),
        "name": row.name,
        "artifact_location": row.artifact_location,
        "lifecycle_stage": row.lifecycle_stage,
        "last_update_time": row.last_update_time,
        "creation_time": row.creation_time,
    }
    body = {k: v for k, v in body.items() if v is not None}
    if tags:
        body["tags"] = key_values(tags)
    return body


def run_info(row: Run) -> dict[str, Any]:
    body: dict[str, Any] = {
        "run_id": row.run_uuid,
        "run_uuid": row.run_uuid,
        "run_name": row.name,
        "experiment_id": str(row.experiment_id),
        "user_id": row.user_id,
        "status": row.status,
        "start_time": row.start_time,
        "end_time": row.end_time,
        "artifact_uri": row.artifact_uri,
        "lifecycle_stage": row.lifecycle_stage,
    }
    return {k: v for k, v in body.items() if v is not None}


def metric(key: str, value: float, is_nan: bool, timestamp: int, step: int) -> dict[str, Any]:
    return {
        "key": key,
        "value": float_value(value, is_nan),
        "timestamp": timestamp,
        "step": step,
    }


def dataset_input(dataset: Dataset, tags: list[tuple[str, str]]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if tags:
        body["tags"] = key_values(tags)
    ds: dict[str, Any] = {
        "name": dataset.name,
        "digest": dataset.digest,
        "source_type": dataset.source_type,
        "source": dataset.source,
        "schema": dataset.schema,
        "profile": dataset.profile,
    }
    body["dataset"] = {k: v for k, v in ds.items() if v is not None}
    return body
