"""Registry rows as MLflow's JSON shows them (`ModelVersion` / `RegisteredModel` `to_proto`).

Fields MLflow leaves out stay out: a registered model's empty description and empty lists, a
version's None fields (description after an update without one, user_id, ...). `model_id` is
stored but not shown: MLflow's server does not show it either (its proto conversion skips it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from tether.db.models import ModelVersion, RegisteredModel
from tether.registry import schemas


def _tags(tags: Sequence[tuple[str, str | None]]) -> list[schemas.RegistryTag]:
    return [{"key": key, "value": value or ""} for key, value in tags]


def model_version(
    row: ModelVersion,
    name: str,
    tags: Sequence[tuple[str, str | None]] = (),
    aliases: Sequence[str] = (),
) -> schemas.ModelVersion:
    out: schemas.ModelVersion = {
        "name": name,
        "version": str(row.version),
        "creation_timestamp": row.creation_time,
        "current_stage": row.current_stage,
        "status": cast(schemas.VersionStatus, row.status),
    }
    if row.last_updated_time is not None:
        out["last_updated_timestamp"] = row.last_updated_time
    if row.user_id is not None:
        out["user_id"] = row.user_id
    if row.description is not None:
        out["description"] = row.description
    if row.source is not None:
        out["source"] = row.source
    if row.run_id is not None:
        out["run_id"] = row.run_id
    if row.status_message:
        out["status_message"] = row.status_message
    if tags:
        out["tags"] = _tags(tags)
    if row.run_link is not None:
        out["run_link"] = row.run_link
    if aliases:
        out["aliases"] = list(aliases)
    return out


def registered_model(
    row: RegisteredModel,
    latest_versions: Sequence[schemas.ModelVersion] = (),
    tags: Sequence[tuple[str, str | None]] = (),
    aliases: Sequence[tuple[str, int]] = (),
) -> schemas.RegisteredModel:
    out: schemas.RegisteredModel = {"name": row.name, "creation_timestamp": row.creation_time}
    if row.last_updated_time:
        out["last_updated_timestamp"] = row.last_updated_time
    if row.description:
        out["description"] = row.description
    if latest_versions:
        out["latest_versions"] = list(latest_versions)
    if tags:
        out["tags"] = _tags(tags)
    if aliases:
        out["aliases"] = [{"alias": alias, "version": str(version)} for alias, version in aliases]
    return out
