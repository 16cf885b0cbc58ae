"""Request bodies of MLflow's experiment endpoints (field names as the MLflow client sends them)."""

from __future__ import annotations

from typing import ClassVar

from tether.wire import Int64, RequestModel, Str


class KeyValue(RequestModel):
    key: Str | None = None
    value: Str | None = None


class CreateExperiment(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("name",)
    name: Str
    artifact_location: Str = ""
    tags: list[KeyValue] = []


class ExperimentId(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("experiment_id",)
    experiment_id: Str


class GetExperimentByName(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("experiment_name",)
    experiment_name: Str


class UpdateExperiment(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("experiment_id", "new_name")
    experiment_id: Str
    new_name: Str


class SetExperimentTag(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("experiment_id", "key")
    experiment_id: Str
    key: Str
    value: Str = ""


class DeleteExperimentTag(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("experiment_id", "key")
    experiment_id: Str
    key: Str


class SearchExperiments(RequestModel):
    max_results: Int64 | None = None
    page_token: Str = ""
    filter: Str = ""
    order_by: list[Str] = []
    view_type: Str | Int64 = "ACTIVE_ONLY"
