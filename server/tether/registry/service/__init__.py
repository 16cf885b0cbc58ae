"""Model registry operations: MLflow's semantics, validation order and messages, and the outbox.

One module per concern (`registered_models`, `model_versions`, `stages_and_aliases`, with
`version_lineage` resolving a new version's source); endpoints see them as one
`RegistryService`.

Each write is one transaction that also appends one outbox record (`outbox_records`).
Deleting a tag or alias that is not there succeeds, as in MLflow, and appends nothing.
Validation that needs no data happens before the transaction; a rejected request changes
nothing. Every write locks the model's row first (SELECT ... FOR UPDATE on PostgreSQL; SQLite
has one writer), so version numbers, stage archiving and deletes never interleave.
"""

from __future__ import annotations

from tether.db.engine import Database
from tether.registry.service.model_versions import ModelVersionOperations
from tether.registry.service.registered_models import RegisteredModelOperations
from tether.registry.service.stages_and_aliases import StageAndAliasOperations
from tether.registry.sources import HostPolicy


class RegistryService(RegisteredModelOperations, ModelVersionOperations, StageAndAliasOperations):
    def __init__(self, db: Database, host_policy: HostPolicy | None = None) -> None:
        self.db = db
        self.host_policy = host_policy or HostPolicy(())


__all__ = ["RegistryService"]
