"""Tracking tables: experiments, runs and what is logged to them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from tether.db.models.base import Base, BigId
from tether.db.models.workspaces import DEFAULT_WORKSPACE, WORKSPACE_NAME_LENGTH


class Experiment(Base):
    __tablename__ = "experiments"

    __table_args__ = (UniqueConstraint("workspace", "name", name="uq_experiments_workspace_name"),)

    experiment_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(500))
    artifact_location: Mapped[str | None] = mapped_column(Text)
    lifecycle_stage: Mapped[str] = mapped_column(String(32), default="active")
    creation_time: Mapped[int | None] = mapped_column(BigInteger)
    last_update_time: Mapped[int | None] = mapped_column(BigInteger)
    workspace: Mapped[str] = mapped_column(
        String(WORKSPACE_NAME_LENGTH), default=DEFAULT_WORKSPACE, server_default=DEFAULT_WORKSPACE
    )


# Params, tags and latest metrics are listed in the order they were first written, as MLflow
# lists its rows: each table's `id` (the rowid on SQLite, a sequence on PostgreSQL) records
# it, and an upsert keeps the row (and so its place); the former key (owner, key) is unique.


class ExperimentTag(Base):
    __tablename__ = "experiment_tags"
    __table_args__ = (UniqueConstraint("experiment_id", "key", name="uq_experiment_tags_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.experiment_id", ondelete="CASCADE")
    )
    key: Mapped[str] = mapped_column(String(250))
    value: Mapped[str | None] = mapped_column(Text)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        # Default search order is start_time DESC, run_uuid within the chosen experiments.
        Index("ix_runs_experiment_start", "experiment_id", "start_time"),
    )

    run_uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.experiment_id"))
    name: Mapped[str | None] = mapped_column(String(250))
    user_id: Mapped[str | None] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(20))
    start_time: Mapped[int | None] = mapped_column(BigInteger)
    end_time: Mapped[int | None] = mapped_column(BigInteger)
    deleted_time: Mapped[int | None] = mapped_column(BigInteger)
    lifecycle_stage: Mapped[str] = mapped_column(String(20), default="active")
    artifact_uri: Mapped[str | None] = mapped_column(Text)


class RunTag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("run_uuid", "key", name="uq_tags_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_uuid: Mapped[str] = mapped_column(ForeignKey("runs.run_uuid", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(250))
    value: Mapped[str | None] = mapped_column(String(8000))


class Param(Base):
    __tablename__ = "params"
    __table_args__ = (UniqueConstraint("run_uuid", "key", name="uq_params_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_uuid: Mapped[str] = mapped_column(ForeignKey("runs.run_uuid", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(250))
    value: Mapped[str] = mapped_column(String(8000))


class Metric(Base):
    """Every logged metric point. `id` is the insertion order the sync worker resumes from."""

    __tablename__ = "metrics"
    __table_args__ = (
        # MLflow keeps one row per distinct point; this index also serves history reads.
        UniqueConstraint(
            "run_uuid", "key", "step", "timestamp", "value", "is_nan", name="uq_metrics_point"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_uuid: Mapped[str] = mapped_column(ForeignKey("runs.run_uuid", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(250))
    value: Mapped[float] = mapped_column(Double)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    step: Mapped[int] = mapped_column(BigInteger)
    is_nan: Mapped[bool] = mapped_column(Boolean, default=False)


class LatestMetric(Base):
    """The latest point per (run, key) by (step, timestamp, value): what search filters on."""

    __tablename__ = "latest_metrics"
    __table_args__ = (
        UniqueConstraint("run_uuid", "key", name="uq_latest_metrics_key"),
        Index("ix_latest_metrics_key_value", "key", "value"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_uuid: Mapped[str] = mapped_column(ForeignKey("runs.run_uuid", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(250))
    value: Mapped[float] = mapped_column(Double)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    step: Mapped[int] = mapped_column(BigInteger)
    is_nan: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped by every write of this key's points: sampled histories are cached under it
    # (tracking.metrics.repository), so a repeated chart request costs one key lookup.
    points_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("experiment_id", "name", "digest", name="uq_datasets"),)

    dataset_uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.experiment_id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(500))
    digest: Mapped[str] = mapped_column(String(36))
    source_type: Mapped[str] = mapped_column(String(36))
    source: Mapped[str] = mapped_column(Text)
    schema: Mapped[str | None] = mapped_column(Text)
    profile: Mapped[str | None] = mapped_column(Text)


class RunInput(Base):
    """A dataset used by a run (MLflow's `inputs` rows with destination RUN)."""

    __tablename__ = "run_inputs"
    __table_args__ = (
        UniqueConstraint("run_uuid", "dataset_uuid", name="uq_run_inputs"),
        Index("ix_run_inputs_dataset", "dataset_uuid"),
    )

    input_uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    run_uuid: Mapped[str] = mapped_column(ForeignKey("runs.run_uuid", ondelete="CASCADE"))
    dataset_uuid: Mapped[str] = mapped_column(
        ForeignKey("datasets.dataset_uuid", ondelete="CASCADE")
    )


class InputTag(Base):
    __tablename__ = "input_tags"

    input_uuid: Mapped[str] = mapped_column(
        ForeignKey("run_inputs.input_uuid", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))
