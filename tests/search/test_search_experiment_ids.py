"""The experiment-id parser: MLflow's own (`_parse_experiment_id`) is the spec, except beyond
int64, where MLflow's answer is its database's crash and ours a clean refusal."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import _parse_experiment_id

from search.searchdb import error_of
from tether.db.int64 import INT64_MAX, INT64_MIN
from tether.search.experiment_ids import parse_experiment_id, parse_experiment_ids


@pytest.mark.parametrize(
    "value",
    ["0", "7", "-3", "+7", " 7 ", "1_000", "007", 12, str(INT64_MAX), str(INT64_MIN), INT64_MAX],
)
def test_reads_what_mlflow_reads(value: str | int) -> None:
    assert parse_experiment_id(value) == _parse_experiment_id(value)


@pytest.mark.parametrize("value", ["", "abc", "1.0", "1e3", "0x1", "1 2", "٣x", "1" * 5000])
def test_refuses_what_mlflow_refuses(value: str) -> None:
    with pytest.raises(MlflowException) as theirs:
        _parse_experiment_id(value)
    ours = error_of(lambda: parse_experiment_id(value))
    assert (ours.error_code, ours.message) == (theirs.value.error_code, theirs.value.message)


@pytest.mark.parametrize("value", [str(INT64_MAX + 1), str(INT64_MIN - 1), 2**70])
def test_refuses_beyond_int64(value: str | int) -> None:
    assert _parse_experiment_id(value) == int(value)  # MLflow passes it on to its database
    error = error_of(lambda: parse_experiment_id(value))
    assert error.error_code == "INVALID_PARAMETER_VALUE"
    assert error.message == (
        f"Invalid experiment ID '{value}'. Experiment ID must be a valid integer."
    )


def test_many() -> None:
    assert parse_experiment_ids(["1", 2, " 3"]) == [1, 2, 3]
    assert parse_experiment_ids([]) == []
    assert "'x'" in error_of(lambda: parse_experiment_ids(["1", "x"])).message
