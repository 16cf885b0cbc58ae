"""Experiments, and the tags and params of every tracking entity, as MLflow's JSON shows them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from tether.db.models import Experiment
from tether.tracking.experiments.schemas import Experiment as ExperimentJson
from tether.tracking.experiments.schemas import KeyValuePair, LifecycleStage


def key_values(pairs: Iterable[tuple[str, str | None]]) -> list[KeyValuePair]:
    return [{"key": k, "value": v} if v is not None else {"key": k} for k, v in pairs]


def experiment(row: Experiment, tags: list[tuple[str, str | None]]) -> ExperimentJson:
    body: ExperimentJson = {
        "experiment_id": str(row.experiment_id),
        "name": row.name,
        "lifecycle_stage": cast(LifecycleStage, row.lifecycle_stage),
        # MLflow 3.17 names every experiment's workspace ("default" while workspaces are off).
        "workspace": row.workspace,
    }
    if row.artifact_location is not None:
        body["artifact_location"] = row.artifact_location
    if row.last_update_time is not None:
        body["last_update_time"] = row.last_update_time
    if row.creation_time is not None:
        body["creation_time"] = row.creation_time
    if tags:
        body["tags"] = key_values(tags)
    return body
