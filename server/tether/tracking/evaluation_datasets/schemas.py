"""Request and answer of MLflow 3's evaluation-dataset search (`/mlflow/datasets/search`)."""

from __future__ import annotations

from typing import NotRequired

from typing_extensions import TypedDict

from tether.wire import Int64, RequestModel, Str


class SearchEvaluationDatasets(RequestModel):
    experiment_ids: list[Str] = []
    filter_string: Str = ""
    max_results: Int64 | None = None
    order_by: list[Str] = []
    page_token: Str = ""


# Answers -----------------------------------------------------------------------------------


class EvaluationDataset(TypedDict):
    """`mlflow.datasets.Dataset` (without its records); `tags`, `schema` and `profile` are
    JSON documents in strings."""

    dataset_id: str
    name: str
    tags: NotRequired[str]
    schema: NotRequired[str]
    profile: NotRequired[str]
    digest: NotRequired[str]
    created_time: NotRequired[int]
    last_update_time: NotRequired[int]
    created_by: NotRequired[str]
    last_updated_by: NotRequired[str]
    experiment_ids: NotRequired[list[str]]


class SearchEvaluationDatasetsResponse(TypedDict):
    datasets: NotRequired[list[EvaluationDataset]]
    next_page_token: NotRequired[str]
