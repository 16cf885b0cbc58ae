"""log-batch's plain-metrics fast path gives exactly what the request model gives, or
steps aside (None) so the model validates and words the error."""

from __future__ import annotations

from typing import Any

import pytest

from tether.errors import MlflowError
from tether.tracking.runs import schemas
from tether.tracking.runs.schemas import plain_metrics
from tether.tracking.runs.service import MetricIn
from tether.wire import parse_model


def _via_model(items: Any) -> list[MetricIn] | MlflowError:
    try:
        body = parse_model(schemas.LogBatch, {"run_id": "r", "metrics": items})
    except MlflowError as exc:
        return exc
    return [
        MetricIn(m.key, m.value, m.timestamp, m.step, m.model_id, m.dataset_name, m.dataset_digest)
        for m in body.metrics
    ]


PLAIN = [
    {"key": "loss", "value": 0.5, "timestamp": 1, "step": 2},
    {"key": "loss", "value": 3, "timestamp": 0},
    {"key": "a/b.c", "value": -1e308, "timestamp": 2**40, "step": -5, "extra": "ignored"},
    {"key": "k", "value": 1.0, "timestamp": 1, "model_id": None, "dataset_name": None},
]
ODD = [
    {"key": "k", "value": "NaN", "timestamp": 1},
    {"key": "k", "value": True, "timestamp": 1},
    {"key": "k", "value": 1.0, "timestamp": 1.0},
    {"key": "k", "value": 1.0, "timestamp": "1"},
    {"key": "k", "value": 1.0, "timestamp": 1, "step": None},
    {"key": "k", "value": 1.0, "timestamp": 1, "step": False},
    {"key": "", "value": 1.0, "timestamp": 1},
    {"key": "a\x00b", "value": 1.0, "timestamp": 1},
    {"key": 5, "value": 1.0, "timestamp": 1},
    {"value": 1.0, "timestamp": 1},
    {"key": "k", "timestamp": 1},
    {"key": "k", "value": 1.0},
    {"key": "k", "value": 1.0, "timestamp": None},
    {"key": "k", "value": 10**30, "timestamp": 1},
    # JSON parsers give ints up to 2**64 - 1: beyond int64 the database cannot take them.
    {"key": "k", "value": 1.0, "timestamp": 2**63},
    {"key": "k", "value": 1.0, "timestamp": 1, "step": 2**63},
    {"key": "k", "value": 1.0, "timestamp": 1, "step": -(2**63) - 1},
    {"key": "k", "value": 1.0, "timestamp": 1, "model_id": "m-1"},
    {"key": "k", "value": 1.0, "timestamp": 1, "model_id": ""},
    {"key": "k", "value": 1.0, "timestamp": 1, "dataset_name": "d", "dataset_digest": "x"},
    {"key": "k", "value": 1.0, "timestamp": 1, "dataset_digest": 0},
    "not an object",
    None,
]


def test_plain_points_match_the_model() -> None:
    fast = plain_metrics(PLAIN)
    assert fast is not None
    assert fast == _via_model(PLAIN)
    assert [type(m.value) for m in fast] == [float] * len(PLAIN)
    assert plain_metrics([]) == []


@pytest.mark.parametrize("odd", ODD, ids=repr)
def test_anything_else_falls_back_to_the_model(odd: Any) -> None:
    assert plain_metrics([*PLAIN, odd]) is None


@pytest.mark.parametrize("items", [None, {}, "x", 3])
def test_metrics_not_a_list_falls_back(items: Any) -> None:
    assert plain_metrics(items) is None
