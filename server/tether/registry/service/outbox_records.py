"""The one outbox record each registry write appends, inside the write's own transaction.

Entity "registered_model" is keyed by the model's id (aliases are the model's), and
"model_version" by "<model id>/<version>": ids, not names, so a key survives a rename and fits
the outbox's entity_id (a name may be 256 characters long); payloads carry the names.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tether.db import outbox
from tether.db.models import ModelVersion, RegisteredModel

MODEL_ENTITY = "registered_model"
VERSION_ENTITY = "model_version"


def append_model_record(
    session: Session, model: RegisteredModel, op: str, payload: dict[str, Any]
) -> None:
    outbox.append(session, MODEL_ENTITY, str(model.id), op, payload)


def append_version_record(
    session: Session, row: ModelVersion, op: str, payload: dict[str, Any]
) -> None:
    outbox.append(session, VERSION_ENTITY, f"{row.registered_model_id}/{row.version}", op, payload)
