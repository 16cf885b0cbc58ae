"""Artifact records: a file written or deleted through the artifact proxy.

The entity is the file's owner, found from the path (`tether.storage.paths.sync_entity`): a run,
a logged model, or `artifact` (a path outside both, entity id the path or its sha256). The
payload always carries the full store path.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from tether.db.outbox.base import EntityType, Record


class ArtifactOp(StrEnum):
    PUT = "artifact_put"
    DELETE = "artifact_delete"


@dataclass(frozen=True, slots=True, kw_only=True)
class ArtifactPut(Record):
    entity_type: EntityType
    path: str
    size: int

    OP: ClassVar[StrEnum] = ArtifactOp.PUT


@dataclass(frozen=True, slots=True, kw_only=True)
class ArtifactDelete(Record):
    """`path` and everything under it."""

    entity_type: EntityType
    path: str
    size: None = None  # always null: every artifact row has the same keys

    OP: ClassVar[StrEnum] = ArtifactOp.DELETE
