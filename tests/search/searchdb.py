"""Helpers for the search tests: our schema on SQLite or PostgreSQL, and a loader that writes
rows the way the tracking layer stores them (NaN metrics as value 0 with is_nan set, +/-inf
clamped to the largest double, as MLflow's SQL store does)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from tether.db.models import (
    Base,
    Dataset,
    Experiment,
    ExperimentTag,
    InputTag,
    LatestMetric,
    Param,
    Run,
    RunInput,
    RunTag,
)

DB_KINDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]

_MAX_DOUBLE = 1.7976931348623157e308


def make_engine(
    kind: str, tmp_dir: Path, new_postgres_database: Callable[[], str] | None
) -> Engine:
    if kind == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_dir / 'search.db'}")
    else:
        assert new_postgres_database is not None
        url = new_postgres_database().replace("postgresql://", "postgresql+psycopg://", 1)
        engine = create_engine(url)
    Base.metadata.create_all(engine)
    return engine


def metric_row_value(value: float) -> tuple[float, bool]:
    """(stored value, is_nan) as MLflow's SQL store sanitizes a metric value."""
    if math.isnan(value):
        return 0.0, True
    if math.isinf(value):
        return (_MAX_DOUBLE if value > 0 else -_MAX_DOUBLE), False
    return value, False


class Loader:
    """Inserts experiments / runs and everything searchable about them, directly."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def experiment(
        self,
        name: str,
        *,
        experiment_id: int | None = None,
        lifecycle_stage: str = "active",
        creation_time: int | None = None,
        last_update_time: int | None = None,
        tags: dict[str, str] | None = None,
    ) -> int:
        exp = Experiment(
            name=name,
            lifecycle_stage=lifecycle_stage,
            creation_time=creation_time,
            last_update_time=last_update_time,
        )
        if experiment_id is not None:
            exp.experiment_id = experiment_id
        self.session.add(exp)
        self.session.flush()
        for key, value in (tags or {}).items():
            self.session.add(ExperimentTag(experiment_id=exp.experiment_id, key=key, value=value))
        self.session.flush()
        return exp.experiment_id

    def run(
        self,
        experiment_id: int,
        name: str | None,
        *,
        run_uuid: str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        status: str = "FINISHED",
        user_id: str | None = "alice",
        lifecycle_stage: str = "active",
        artifact_uri: str | None = None,
        metrics: dict[str, float] | None = None,
        params: dict[str, str] | None = None,
        tags: dict[str, str | None] | None = None,
        datasets: list[tuple[str, str, str | None]] | None = None,
    ) -> str:
        run_uuid = run_uuid or uuid.uuid4().hex
        self.session.add(
            Run(
                run_uuid=run_uuid,
                experiment_id=experiment_id,
                name=name,
                user_id=user_id,
                status=status,
                start_time=start_time,
                end_time=end_time,
                deleted_time=None,
                lifecycle_stage=lifecycle_stage,
                artifact_uri=artifact_uri or f"file:///artifacts/{run_uuid}",
            )
        )
        self.session.flush()
        all_tags: dict[str, str | None] = dict(tags or {})
        if name is not None:
            all_tags.setdefault("mlflow.runName", name)
        for key, tag_value in all_tags.items():
            self.session.add(RunTag(run_uuid=run_uuid, key=key, value=tag_value))
        for key, param_value in (params or {}).items():
            self.session.add(Param(run_uuid=run_uuid, key=key, value=param_value))
        for key, metric_value in (metrics or {}).items():
            stored, is_nan = metric_row_value(metric_value)
            self.session.add(
                LatestMetric(
                    run_uuid=run_uuid, key=key, value=stored, timestamp=0, step=0, is_nan=is_nan
                )
            )
        for ds_name, digest, context in datasets or []:
            self.add_dataset_input(experiment_id, run_uuid, ds_name, digest, context)
        self.session.flush()
        return run_uuid

    def add_dataset_input(
        self, experiment_id: int, run_uuid: str, name: str, digest: str, context: str | None
    ) -> None:
        existing = (
            self.session.query(Dataset)
            .filter_by(experiment_id=experiment_id, name=name, digest=digest)
            .one_or_none()
        )
        if existing is None:
            existing = Dataset(
                dataset_uuid=uuid.uuid4().hex,
                experiment_id=experiment_id,
                name=name,
                digest=digest,
                source_type="local",
                source="{}",
            )
            self.session.add(existing)
            self.session.flush()
        run_input = RunInput(
            input_uuid=uuid.uuid4().hex, run_uuid=run_uuid, dataset_uuid=existing.dataset_uuid
        )
        self.session.add(run_input)
        self.session.flush()
        if context is not None:
            self.session.add(
                InputTag(input_uuid=run_input.input_uuid, name="mlflow.data.context", value=context)
            )


def error_of(func: Callable[[], Any]) -> Any:
    """The MlflowError `func` raises (failing the test if it raises nothing or anything else)."""
    from tether.errors import MlflowError

    with pytest.raises(MlflowError) as info:
        func()
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    return info.value
