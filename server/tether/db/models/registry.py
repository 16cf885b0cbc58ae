"""Model registry tables. Registered models carry a surrogate id so a rename is one update."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from tether.db.models.base import Base, BigId
from tether.db.models.workspaces import DEFAULT_WORKSPACE, WORKSPACE_NAME_LENGTH


class RegisteredModel(Base):
    __tablename__ = "registered_models"
    __table_args__ = (
        UniqueConstraint("workspace", "name", name="uq_registered_models_workspace_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256))
    creation_time: Mapped[int] = mapped_column(BigInteger)
    last_updated_time: Mapped[int | None] = mapped_column(BigInteger)
    description: Mapped[str | None] = mapped_column(Text)
    workspace: Mapped[str] = mapped_column(
        String(WORKSPACE_NAME_LENGTH), default=DEFAULT_WORKSPACE, server_default=DEFAULT_WORKSPACE
    )


class RegisteredModelTag(Base):
    """`id`: the order tags were first set, as MLflow lists them (see models/tracking.py)."""

    __tablename__ = "registered_model_tags"
    __table_args__ = (
        UniqueConstraint("registered_model_id", "key", name="uq_registered_model_tags_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    registered_model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE")
    )
    key: Mapped[str] = mapped_column(String(250))
    value: Mapped[str | None] = mapped_column(Text)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (Index("ix_model_versions_run", "run_id"),)

    registered_model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    creation_time: Mapped[int] = mapped_column(BigInteger)
    last_updated_time: Mapped[int | None] = mapped_column(BigInteger)
    description: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(String(256))
    current_stage: Mapped[str] = mapped_column(String(20), default="None")
    source: Mapped[str | None] = mapped_column(Text)
    storage_location: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(32))
    run_link: Mapped[str | None] = mapped_column(Text)
    model_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="READY")
    status_message: Mapped[str | None] = mapped_column(Text)
    # Deleted versions keep their row so a version number is never handed out twice.
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class ModelVersionTag(Base):
    """`id`: the order tags were first set, as MLflow lists them (see models/tracking.py)."""

    __tablename__ = "model_version_tags"
    __table_args__ = (
        ForeignKeyConstraint(
            ["registered_model_id", "version"],
            ["model_versions.registered_model_id", "model_versions.version"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("registered_model_id", "version", "key", name="uq_model_version_tags_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    registered_model_id: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(250))
    value: Mapped[str | None] = mapped_column(Text)


class RegisteredModelAlias(Base):
    __tablename__ = "registered_model_aliases"

    registered_model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(256), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
