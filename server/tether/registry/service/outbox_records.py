"""The outbox entity ids of the registry's records (declared in `tether.db.outbox.registry`).

A registered model is keyed by its id (aliases are the model's), a version by
"<model id>/<version>": ids, not names, so a key survives a rename and fits the outbox's
entity_id (a name may be 256 characters long); payloads carry the names.
"""

from __future__ import annotations

from tether.db.models import ModelVersion, RegisteredModel


def model_key(model: RegisteredModel) -> str:
    return str(model.id)


def version_key(row: ModelVersion) -> str:
    return f"{row.registered_model_id}/{row.version}"
