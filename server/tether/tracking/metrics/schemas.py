"""Request bodies of MLflow's metric history endpoints."""

from __future__ import annotations

from typing import ClassVar

from tether.wire import Int64, RequestModel, Str


class GetMetricHistory(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("run_id", "metric_key")
    run_id: Str
    metric_key: Str
    page_token: Str = ""
    max_results: Int64 | None = None


class GetMetricHistoryBulkInterval(RequestModel):
    required: ClassVar[tuple[str, ...]] = ("run_ids", "metric_key")
    run_ids: list[Str]
    metric_key: Str
    start_step: Int64 | None = None
    end_step: Int64 | None = None
    max_results: Int64 | None = None
