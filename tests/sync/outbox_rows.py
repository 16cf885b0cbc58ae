"""Outbox rows as stored text, not through `tether.db.outbox.append`: rows of any shape a
release may have left in a database (older shapes, an op from a newer release, a broken
payload), for the tests of discovery, state and decoding."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from tether.clock import now_ms


def insert_row(
    session: Session, entity_type: str, entity_id: str, op: str, payload: str = "{}"
) -> int:
    """Append one row with `payload` as its literal JSON text; returns its id."""
    inserted = session.execute(
        text(
            "INSERT INTO sync_outbox (created_at, entity_type, entity_id, op, payload)"
            " VALUES (:created_at, :entity_type, :entity_id, :op, :payload) RETURNING id"
        ),
        {
            "created_at": now_ms(),
            "entity_type": entity_type,
            "entity_id": entity_id,
            "op": op,
            "payload": payload,
        },
    )
    return int(inserted.scalar_one())
