"""Loading registry rows by name and version, with MLflow's not-found messages, and their JSON.

Deleted versions keep their rows (see `model_versions`), so every lookup here reads live
versions only.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from tether.db.models import ModelVersion, RegisteredModel
from tether.errors import not_found
from tether.registry import repository, schemas, serialize
from tether.registry.repository import VersionKey
from tether.registry.validation import (
    is_prompt_tags,
    parse_version,
    storable_version,
    validate_model_name,
)


def load_model(session: Session, name: str, *, for_update: bool = False) -> RegisteredModel:
    validate_model_name(name)
    row = repository.model_by_name(session, name, for_update=for_update)
    if row is None:
        raise not_found(f"Registered Model with name={name} not found")
    return row


def load_version(
    session: Session, name: str, version: str | int, *, for_update: bool = False
) -> tuple[RegisteredModel, ModelVersion]:
    validate_model_name(name)
    number = parse_version(version)
    model = repository.model_by_name(session, name, for_update=for_update)
    row = None
    # Beyond INTEGER the number would fail to bind; no row can hold it anyway.
    if model is not None and storable_version(number):
        row = repository.live_version(session, model.id, number, for_update=for_update)
    if model is None or row is None:
        raise not_found(f"Model Version (name={name}, version={number}) not found")
    return model, row


def latest_keys(session: Session, model: RegisteredModel) -> list[VersionKey]:
    """The model's newest live version in each stage, in MLflow's order."""
    return [(model.id, v) for v in repository.latest_version_keys(session, [model.id])[model.id]]


def models_json(session: Session, rows: Sequence[RegisteredModel]) -> list[schemas.RegisteredModel]:
    # Batched per kind of row rather than per model: a search page may list many models.
    ids = [row.id for row in rows]
    latest = repository.latest_version_keys(session, ids)
    keys = [(model_id, version) for model_id in ids for version in latest[model_id]]
    versions = repository.live_versions(session, keys)
    version_tags = repository.version_tags(session, keys)
    tags = repository.model_tags(session, ids)
    aliases = repository.model_aliases(session, ids)
    out = []
    for row in rows:
        latest_versions = [
            serialize.model_version(versions[key], row.name, version_tags[key])
            for key in ((row.id, v) for v in latest[row.id])
            if key in versions  # (deleted by a concurrent request since)
        ]
        out.append(serialize.registered_model(row, latest_versions, tags[row.id], aliases[row.id]))
    return out


def model_json(session: Session, row: RegisteredModel) -> schemas.RegisteredModel:
    return models_json(session, [row])[0]


def version_json(
    session: Session, model: RegisteredModel, row: ModelVersion
) -> schemas.ModelVersion:
    key = (row.registered_model_id, row.version)
    return serialize.model_version(
        row,
        model.name,
        repository.version_tags(session, [key])[key],
        repository.version_aliases(session, model.id, row.version),
    )


def is_prompt_model(session: Session, model: RegisteredModel) -> bool:
    tags = dict(repository.model_tags(session, [model.id])[model.id])
    return is_prompt_tags({k: v or "" for k, v in tags.items()})
