"""Queries over registered models, model versions, their tags and aliases."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tether.db import workspace_scope
from tether.db.dialect import upsert_insert
from tether.db.models import (
    LoggedModelTag,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
)

VersionKey = tuple[int, int]  # (registered model id, version)
_CHUNK = 500


def _chunks(items: Sequence[VersionKey]) -> Iterable[Sequence[VersionKey]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


# ------------------------------------------------------------------- registered models


def model_by_name(
    session: Session, name: str, *, for_update: bool = False
) -> RegisteredModel | None:
    """The model of that name in the request's workspace (names are unique per one)."""
    stmt = sa.select(RegisteredModel).where(
        RegisteredModel.workspace == workspace_scope.current(), RegisteredModel.name == name
    )
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


def models_by_id(session: Session, ids: Sequence[int]) -> dict[int, RegisteredModel]:
    if not ids:
        return {}
    rows = session.scalars(sa.select(RegisteredModel).where(RegisteredModel.id.in_(ids)))
    return {row.id: row for row in rows}


def model_tags(session: Session, ids: Sequence[int]) -> dict[int, list[tuple[str, str | None]]]:
    result: dict[int, list[tuple[str, str | None]]] = defaultdict(list)
    if not ids:
        return result
    rows = session.execute(
        sa.select(
            RegisteredModelTag.registered_model_id, RegisteredModelTag.key, RegisteredModelTag.value
        )
        .where(RegisteredModelTag.registered_model_id.in_(ids))
        .order_by(RegisteredModelTag.id)  # the order they were first set, as MLflow lists them
    )
    for model_id, key, value in rows:
        result[model_id].append((key, value))
    return result


def model_aliases(session: Session, ids: Sequence[int]) -> dict[int, list[tuple[str, int]]]:
    result: dict[int, list[tuple[str, int]]] = defaultdict(list)
    if not ids:
        return result
    rows = session.execute(
        sa.select(
            RegisteredModelAlias.registered_model_id,
            RegisteredModelAlias.alias,
            RegisteredModelAlias.version,
        )
        .where(RegisteredModelAlias.registered_model_id.in_(ids))
        .order_by(RegisteredModelAlias.registered_model_id, RegisteredModelAlias.alias)
    )
    for model_id, alias, version in rows:
        result[model_id].append((alias, version))
    return result


def latest_version_keys(session: Session, ids: Sequence[int]) -> dict[int, list[int]]:
    """The newest live version in each stage, per model.

    Listed in the order MLflow's SQL store lists them: stages by their oldest live version
    (MLflow walks the versions in order and keys a dict by stage).
    """
    result: dict[int, list[int]] = defaultdict(list)
    if not ids:
        return result
    rows = session.execute(
        sa.select(
            ModelVersion.registered_model_id,
            sa.func.min(ModelVersion.version),
            sa.func.max(ModelVersion.version),
        )
        .where(ModelVersion.registered_model_id.in_(ids), ModelVersion.deleted == sa.false())
        .group_by(ModelVersion.registered_model_id, ModelVersion.current_stage)
        .order_by(ModelVersion.registered_model_id, sa.func.min(ModelVersion.version))
    )
    for model_id, _, newest in rows:
        result[model_id].append(int(newest))
    return result


def insert_model(
    session: Session, *, name: str, description: str | None, now: int
) -> RegisteredModel:
    row = RegisteredModel(
        workspace=workspace_scope.current(),
        name=name,
        creation_time=now,
        last_updated_time=now,
        description=description,
    )
    session.add(row)
    session.flush()
    return row


def upsert_model_tags(session: Session, model_id: int, tags: dict[str, str]) -> None:
    if not tags:
        return
    rows = [{"registered_model_id": model_id, "key": k, "value": v} for k, v in tags.items()]
    stmt = upsert_insert(session, RegisteredModelTag).values(rows)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[RegisteredModelTag.registered_model_id, RegisteredModelTag.key],
            set_={"value": stmt.excluded.value},
        )
    )


def delete_model_tag(session: Session, model_id: int, key: str) -> int:
    result = session.execute(
        sa.delete(RegisteredModelTag).where(
            RegisteredModelTag.registered_model_id == model_id, RegisteredModelTag.key == key
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def delete_model(session: Session, model_id: int) -> None:
    # Tags, versions (and their tags) and aliases go with it (ON DELETE CASCADE); deleting them
    # first keeps that true even where a connection runs without foreign-key enforcement.
    session.execute(
        sa.delete(ModelVersionTag).where(ModelVersionTag.registered_model_id == model_id)
    )
    for table in (RegisteredModelAlias, RegisteredModelTag, ModelVersion):
        session.execute(sa.delete(table).where(table.registered_model_id == model_id))
    session.execute(sa.delete(RegisteredModel).where(RegisteredModel.id == model_id))


def touch_versions(session: Session, model_id: int, now: int) -> None:
    session.execute(
        sa.update(ModelVersion)
        .where(ModelVersion.registered_model_id == model_id)
        .values(last_updated_time=now)
    )


# ---------------------------------------------------------------------- model versions


def live_version(
    session: Session, model_id: int, version: int, *, for_update: bool = False
) -> ModelVersion | None:
    stmt = sa.select(ModelVersion).where(
        ModelVersion.registered_model_id == model_id,
        ModelVersion.version == version,
        ModelVersion.deleted == sa.false(),
    )
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


def live_versions(session: Session, keys: Sequence[VersionKey]) -> dict[VersionKey, ModelVersion]:
    result: dict[VersionKey, ModelVersion] = {}
    for chunk in _chunks(keys):
        rows = session.scalars(
            sa.select(ModelVersion).where(
                sa.tuple_(ModelVersion.registered_model_id, ModelVersion.version).in_(chunk),
                ModelVersion.deleted == sa.false(),
            )
        )
        for row in rows:
            result[(row.registered_model_id, row.version)] = row
    return result


def max_version(session: Session, model_id: int) -> int:
    """The highest version number ever used (deleted versions included: never reused)."""
    value = session.scalar(
        sa.select(sa.func.max(ModelVersion.version)).where(
            ModelVersion.registered_model_id == model_id
        )
    )
    return int(value or 0)


def version_tags(
    session: Session, keys: Sequence[VersionKey]
) -> dict[VersionKey, list[tuple[str, str | None]]]:
    result: dict[VersionKey, list[tuple[str, str | None]]] = defaultdict(list)
    for chunk in _chunks(keys):
        rows = session.execute(
            sa.select(
                ModelVersionTag.registered_model_id,
                ModelVersionTag.version,
                ModelVersionTag.key,
                ModelVersionTag.value,
            )
            .where(
                sa.tuple_(ModelVersionTag.registered_model_id, ModelVersionTag.version).in_(chunk)
            )
            .order_by(ModelVersionTag.id)  # the order they were first set, as in MLflow
        )
        for model_id, version, key, value in rows:
            result[(model_id, version)].append((key, value))
    return result


def version_aliases(session: Session, model_id: int, version: int) -> list[str]:
    return list(
        session.scalars(
            sa.select(RegisteredModelAlias.alias)
            .where(
                RegisteredModelAlias.registered_model_id == model_id,
                RegisteredModelAlias.version == version,
            )
            .order_by(RegisteredModelAlias.alias)
        )
    )


def aliases_by_version(session: Session, model_id: int) -> dict[int, list[str]]:
    result: dict[int, list[str]] = defaultdict(list)
    for alias, version in model_aliases(session, [model_id])[model_id]:
        result[version].append(alias)
    return result


def versions_in_stage(session: Session, model_id: int, stage: str, but: int) -> list[ModelVersion]:
    return list(
        session.scalars(
            sa.select(ModelVersion)
            .where(
                ModelVersion.registered_model_id == model_id,
                ModelVersion.version != but,
                ModelVersion.current_stage == stage,
                ModelVersion.deleted == sa.false(),
            )
            .order_by(ModelVersion.version)
        )
    )


def upsert_version_tags(
    session: Session, model_id: int, version: int, tags: dict[str, str]
) -> None:
    if not tags:
        return
    rows = [
        {"registered_model_id": model_id, "version": version, "key": k, "value": v}
        for k, v in tags.items()
    ]
    stmt = upsert_insert(session, ModelVersionTag).values(rows)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[
                ModelVersionTag.registered_model_id,
                ModelVersionTag.version,
                ModelVersionTag.key,
            ],
            set_={"value": stmt.excluded.value},
        )
    )


def delete_version_tag(session: Session, model_id: int, version: int, key: str) -> int:
    result = session.execute(
        sa.delete(ModelVersionTag).where(
            ModelVersionTag.registered_model_id == model_id,
            ModelVersionTag.version == version,
            ModelVersionTag.key == key,
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- aliases


def alias_version(session: Session, model_id: int, alias: str) -> int | None:
    value = session.scalar(
        sa.select(RegisteredModelAlias.version).where(
            RegisteredModelAlias.registered_model_id == model_id,
            RegisteredModelAlias.alias == alias,
        )
    )
    return None if value is None else int(value)


def upsert_alias(session: Session, model_id: int, alias: str, version: int) -> None:
    stmt = upsert_insert(session, RegisteredModelAlias).values(
        registered_model_id=model_id, alias=alias, version=version
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[RegisteredModelAlias.registered_model_id, RegisteredModelAlias.alias],
            set_={"version": stmt.excluded.version},
        )
    )


def delete_alias(session: Session, model_id: int, alias: str) -> int:
    result = session.execute(
        sa.delete(RegisteredModelAlias).where(
            RegisteredModelAlias.registered_model_id == model_id,
            RegisteredModelAlias.alias == alias,
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def delete_version_aliases(session: Session, model_id: int, version: int) -> list[str]:
    aliases = version_aliases(session, model_id, version)
    if aliases:
        session.execute(
            sa.delete(RegisteredModelAlias).where(
                RegisteredModelAlias.registered_model_id == model_id,
                RegisteredModelAlias.version == version,
            )
        )
    return aliases


# ------------------------------------------------------------------------ logged models


def logged_model_tag(session: Session, model_id: str, key: str) -> str | None:
    return session.scalar(
        sa.select(LoggedModelTag.value).where(
            LoggedModelTag.model_id == model_id, LoggedModelTag.key == key
        )
    )


def set_logged_model_tag(session: Session, model_id: str, key: str, value: str) -> None:
    stmt = upsert_insert(session, LoggedModelTag).values(model_id=model_id, key=key, value=value)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[LoggedModelTag.model_id, LoggedModelTag.key],
            set_={"value": stmt.excluded.value},
        )
    )
