"""MLflow 3 logged models and the links between runs and models."""

from __future__ import annotations

from sqlalchemy import BigInteger, Double, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tether.db.models.base import Base, BigId


class LoggedModel(Base):
    __tablename__ = "logged_models"
    __table_args__ = (Index("ix_logged_models_experiment", "experiment_id", "creation_time"),)

    model_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.experiment_id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(500))
    artifact_location: Mapped[str] = mapped_column(Text)
    creation_time: Mapped[int] = mapped_column(BigInteger)
    last_updated_time: Mapped[int] = mapped_column(BigInteger)
    # MLflow's LoggedModelStatus names: PENDING, READY, FAILED.
    status: Mapped[str] = mapped_column(String(32))
    status_message: Mapped[str | None] = mapped_column(Text)
    lifecycle_stage: Mapped[str] = mapped_column(String(32), default="active")
    model_type: Mapped[str | None] = mapped_column(String(500))
    source_run_id: Mapped[str | None] = mapped_column(String(32))


class LoggedModelParam(Base):
    __tablename__ = "logged_model_params"

    model_id: Mapped[str] = mapped_column(
        ForeignKey("logged_models.model_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class LoggedModelTag(Base):
    __tablename__ = "logged_model_tags"

    model_id: Mapped[str] = mapped_column(
        ForeignKey("logged_models.model_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class LoggedModelMetric(Base):
    """A metric point logged with a `model_id` (it is also a run metric of `run_id`)."""

    __tablename__ = "logged_model_metrics"
    __table_args__ = (Index("ix_logged_model_metrics_model", "model_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("logged_models.model_id", ondelete="CASCADE"))
    run_id: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(500))
    value: Mapped[float | None] = mapped_column(Double)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    step: Mapped[int] = mapped_column(BigInteger)
    dataset_name: Mapped[str | None] = mapped_column(String(500))
    dataset_digest: Mapped[str | None] = mapped_column(String(36))


class RunModelLink(Base):
    """A run's model inputs (log-inputs `models`) and outputs (runs/outputs)."""

    __tablename__ = "run_model_links"
    __table_args__ = (Index("ix_run_model_links_model", "model_id"),)

    run_uuid: Mapped[str] = mapped_column(
        ForeignKey("runs.run_uuid", ondelete="CASCADE"), primary_key=True
    )
    model_id: Mapped[str] = mapped_column(
        ForeignKey("logged_models.model_id", ondelete="CASCADE"), primary_key=True
    )
    direction: Mapped[str] = mapped_column(String(8), primary_key=True)  # "input" | "output"
    step: Mapped[int] = mapped_column(BigInteger, default=0)
