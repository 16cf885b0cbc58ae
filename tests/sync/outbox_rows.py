"""Outbox rows as stored text, not through `tether.db.outbox.append`: rows of any shape a
release may have left in a database (older shapes, an op from a newer release, a broken
payload), for the tests of discovery, state and decoding."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from tether.clock import now_ms


def insert_row(
    session: Session,
    entity_type: str,
    entity_id: str,
    op: str,
    payload: str = "{}",
    *,
    created_at: int | None = None,
) -> int:
    """Append one row with `payload` as its literal JSON text (written now, or at
    `created_at`, epoch ms); returns its id."""
    inserted = session.execute(
        text(
            "INSERT INTO sync_outbox (created_at, entity_type, entity_id, op, payload)"
            " VALUES (:created_at, :entity_type, :entity_id, :op, :payload) RETURNING id"
        ),
        {
            "created_at": now_ms() if created_at is None else created_at,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "op": op,
            "payload": payload,
        },
    )
    return int(inserted.scalar_one())
