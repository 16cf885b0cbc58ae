"""Which outbox rows each kind of sync entity works through, grouped by capability.

A sync entity (`sync_entities`, one cursor each) reads the outbox rows of one outbox entity,
optionally only some ops: a run's artifact files (`run_artifacts`) are their own sync entity
over the run's `artifact_put` / `artifact_delete` rows, so they are uploaded on their own
schedule and a slow upload never holds up the run's metrics.

Discovery keeps one cursor pair per capability (`discovery`). A capability's set of sources
never changes once released: a version that syncs more adds a *new* capability, whose cursor
starts at 0 and so finds every row written before it existed, while the old capability's
cursor (and every entity it made) is left as it is — nothing synced is sent again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, true

from tether.db.models import OutboxEntry
from tether.db.outbox.reader import RUN_FILES

ARTIFACT_OPS = RUN_FILES.ops  # artifact_put, artifact_delete


@dataclass(frozen=True)
class Source:
    sync_type: str  # the sync entity's type; its id is the outbox entity id
    outbox_type: str
    ops: tuple[str, ...] | None = None  # None: every op

    def matches(self, outbox_type: str, op: str) -> bool:
        return outbox_type == self.outbox_type and (self.ops is None or op in self.ops)


@dataclass(frozen=True)
class Capability:
    name: str
    sources: tuple[Source, ...]

    @property
    def safe_key(self) -> str:
        return f"discovery.{self.name}.safe"

    @property
    def high_key(self) -> str:
        return f"discovery.{self.name}.high"

    def source_of(self, outbox_type: str, op: str) -> Source | None:
        return next((s for s in self.sources if s.matches(outbox_type, op)), None)


TRACKING = Capability("tracking", (Source("experiment", "experiment"), Source("run", "run")))
ARTIFACTS = Capability("artifacts", (Source("run_artifacts", "run", ARTIFACT_OPS),))
MODELS = Capability(
    "models",
    (
        Source("logged_model", "logged_model"),  # its files' artifact rows included
        Source("registered_model", "registered_model"),
        Source("model_version", "model_version"),
    ),
)
CAPABILITIES = (TRACKING, ARTIFACTS, MODELS)
SOURCES = {s.sync_type: s for c in CAPABILITIES for s in c.sources}
FULLY_SYNCED_TYPES = frozenset(s.outbox_type for s in SOURCES.values() if s.ops is None)
# Kept in Tether for good, not waiting for a later version: Azure ML refuses MLflow traces.
# `tether sync status` counts them apart ("kept in Tether"), never as work left undone.
KEPT_LOCAL_TYPES = frozenset({"trace"})


def synced_by_any(outbox_type: str, op: str) -> bool:
    return any(c.source_of(outbox_type, op) is not None for c in CAPABILITIES)


def rows_of(sync_type: str, entity_id: str) -> ColumnElement[Any]:
    """The outbox rows the sync entity (`sync_type`, `entity_id`) works through."""
    source = SOURCES.get(sync_type)
    if source is None:  # an entity of an unknown type: its own rows
        return and_(OutboxEntry.entity_type == sync_type, OutboxEntry.entity_id == entity_id)
    ops = OutboxEntry.op.in_(source.ops) if source.ops is not None else true()
    return and_(
        OutboxEntry.entity_type == source.outbox_type, OutboxEntry.entity_id == entity_id, ops
    )
