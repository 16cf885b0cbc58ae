"""Runs as MLflow's JSON shows them: what `repository.load_runs` read, shaped as `Run`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from tether.db.models import Dataset
from tether.tracking.experiments.schemas import LifecycleStage
from tether.tracking.experiments.serialize import key_values
from tether.tracking.metrics.serialize import latest_metrics
from tether.tracking.runs import schemas
from tether.tracking.runs.repository import MetricRow, RunColumns, RunsRead


def runs(read: RunsRead) -> list[schemas.Run]:
    outputs = read.model_outputs
    return [
        run(  # positionally: a search page makes a thousand calls
            read.columns[run_id],
            read.metrics.get(run_id, ()),
            read.params.get(run_id, ()),
            read.tags.get(run_id, ()),
            read.datasets.get(run_id, ()),
            read.model_inputs.get(run_id, ()),
            None if outputs is None else outputs.get(run_id, ()),
        )
        for run_id in read.ids
    ]


def run(
    columns: RunColumns,
    metrics: Sequence[MetricRow] = (),
    params: Sequence[tuple[str, str | None]] = (),
    tags: Sequence[tuple[str, str | None]] = (),
    datasets: Sequence[tuple[Dataset, list[tuple[str, str]]]] = (),
    model_inputs: Sequence[tuple[str, int]] = (),
    model_outputs: Sequence[tuple[str, int]] | None = None,
) -> schemas.Run:
    """`model_outputs` None: not read, so not shown (as runs/create answers)."""
    data: schemas.RunData = {}
    if metrics:
        data["metrics"] = latest_metrics(metrics)
    if params:
        data["params"] = key_values(params)
    if tags:
        data["tags"] = key_values(tags)
    inputs: schemas.RunInputs = {}
    if datasets:
        inputs["dataset_inputs"] = [dataset_input(ds, ds_tags) for ds, ds_tags in datasets]
    if model_inputs:
        inputs["model_inputs"] = [{"model_id": model_id} for model_id, _ in model_inputs]
    body: schemas.Run = {"info": run_info(columns), "data": data, "inputs": inputs}
    if model_outputs is not None:
        outputs: schemas.RunOutputs = {}
        if model_outputs:
            outputs["model_outputs"] = [{"model_id": m, "step": step} for m, step in model_outputs]
        body["outputs"] = outputs
    return body


def run_info(columns: RunColumns) -> schemas.RunInfo:
    run_uuid, name, experiment_id, user_id, status, start, end, artifact_uri, stage = columns
    info: schemas.RunInfo = {
        "run_id": run_uuid,
        "run_uuid": run_uuid,
        "experiment_id": str(experiment_id),
        "status": cast(schemas.RunStatus, status),
        "lifecycle_stage": cast(LifecycleStage, stage),
    }
    if name is not None:
        info["run_name"] = name
    if user_id is not None:
        info["user_id"] = user_id
    if start is not None:
        info["start_time"] = start
    if end is not None:
        info["end_time"] = end
    if artifact_uri is not None:
        info["artifact_uri"] = artifact_uri
    return info


def dataset_input(dataset: Dataset, tags: list[tuple[str, str]]) -> schemas.DatasetInput:
    described: schemas.Dataset = {
        "name": dataset.name,
        "digest": dataset.digest,
        "source_type": dataset.source_type,
        "source": dataset.source,
    }
    if dataset.schema is not None:
        described["schema"] = dataset.schema
    if dataset.profile is not None:
        described["profile"] = dataset.profile
    if tags:
        return {"tags": key_values(tags), "dataset": described}
    return {"dataset": described}
