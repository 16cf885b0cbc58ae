"""Metric points as MLflow's JSON shows them: NaN spelled "NaN" (protobuf's JSON mapping)."""

from __future__ import annotations

from collections.abc import Iterable

from tether.tracking.metrics.schemas import Metric


def metric(key: str, value: float, is_nan: bool, timestamp: int, step: int) -> Metric:
    """A stored point: NaN is stored as 0 with its flag; infinities are stored clamped to
    +-DBL_MAX like MLflow does, so they read back as numbers."""
    return {
        "key": key,
        "value": "NaN" if is_nan else value,
        "timestamp": timestamp,
        "step": step,
    }


def latest_metrics(rows: Iterable[tuple[str, str, float, bool, int, int]]) -> list[Metric]:
    """`metric` of each latest_metrics row (run_uuid, key, value, is_nan, timestamp, step), in
    one comprehension: a search page shows thousands, and a call per point showed in profiles."""
    return [
        {"key": key, "value": "NaN" if is_nan else value, "timestamp": timestamp, "step": step}
        for _, key, value, is_nan, timestamp, step in rows
    ]
