"""Model registry records. A registered model's entity id is its surrogate id (aliases are the
model's); a version's is "<model id>/<version>": ids, not names, so a key survives a rename and
fits the outbox's entity_id (a name may be 256 characters long). Payloads carry the names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from tether.db.outbox.base import EntityType, Record


class RegisteredModelOp(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    RENAME = "rename"
    DELETE = "delete"
    SET_TAG = "set_tag"
    DELETE_TAG = "delete_tag"
    SET_ALIAS = "set_alias"
    DELETE_ALIAS = "delete_alias"


class ModelVersionOp(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    TRANSITION_STAGE = "transition_stage"
    DELETE = "delete"
    SET_TAG = "set_tag"
    DELETE_TAG = "delete_tag"


# Registered models ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _RegisteredModel(Record):
    name: str

    entity_type: ClassVar[EntityType] = EntityType.REGISTERED_MODEL


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelCreate(_RegisteredModel):
    description: str | None
    tags: Mapping[str, str]

    OP: ClassVar[StrEnum] = RegisteredModelOp.CREATE


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelUpdate(_RegisteredModel):
    description: str | None

    OP: ClassVar[StrEnum] = RegisteredModelOp.UPDATE


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelRename(_RegisteredModel):
    old_name: str  # `name` is the new one

    OP: ClassVar[StrEnum] = RegisteredModelOp.RENAME


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelDelete(_RegisteredModel):
    OP: ClassVar[StrEnum] = RegisteredModelOp.DELETE


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelSetTag(_RegisteredModel):
    key: str
    value: str

    OP: ClassVar[StrEnum] = RegisteredModelOp.SET_TAG


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelDeleteTag(_RegisteredModel):
    key: str

    OP: ClassVar[StrEnum] = RegisteredModelOp.DELETE_TAG


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelSetAlias(_RegisteredModel):
    alias: str
    version: str

    OP: ClassVar[StrEnum] = RegisteredModelOp.SET_ALIAS


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelDeleteAlias(_RegisteredModel):
    alias: str

    OP: ClassVar[StrEnum] = RegisteredModelOp.DELETE_ALIAS


# Model versions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _ModelVersion(Record):
    name: str  # the registered model's name when the record was written
    version: str

    entity_type: ClassVar[EntityType] = EntityType.MODEL_VERSION


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersionCreate(_ModelVersion):
    source: str
    storage_location: str | None
    run_id: str | None
    run_link: str | None
    description: str | None
    model_id: str | None  # the logged model it was registered from
    tags: Mapping[str, str]
    status: str

    OP: ClassVar[StrEnum] = ModelVersionOp.CREATE


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersionUpdate(_ModelVersion):
    description: str | None

    OP: ClassVar[StrEnum] = ModelVersionOp.UPDATE


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersionTransitionStage(_ModelVersion):
    stage: str
    archive_existing_versions: bool
    archived_versions: tuple[str, ...]  # the other versions this moved to Archived

    OP: ClassVar[StrEnum] = ModelVersionOp.TRANSITION_STAGE


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersionDelete(_ModelVersion):
    deleted_aliases: tuple[str, ...]

    OP: ClassVar[StrEnum] = ModelVersionOp.DELETE


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersionSetTag(_ModelVersion):
    key: str
    value: str

    OP: ClassVar[StrEnum] = ModelVersionOp.SET_TAG


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersionDeleteTag(_ModelVersion):
    key: str

    OP: ClassVar[StrEnum] = ModelVersionOp.DELETE_TAG
