"""The sync outbox: every acknowledged write appends one row, in the write's own transaction.

The Azure ML worker drains it later; the row says what changed, so nothing written before
sync was switched on is lost. Bulk data (metric points) is referenced by its id range rather
than copied, keeping the append one small insert per request.

Per entity, outbox ids follow commit order: the worker can then keep one cursor per entity
and never skip a row. SQLite gets that from its single writer; on PostgreSQL two transactions
touching the same entity could otherwise draw ids in one order and commit in the other, so
the append first takes a transaction-scoped advisory lock on the entity.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.orm import Session

from tether.clock import now_ms
from tether.db.raw import Statement

# Constant statements on the DBAPI cursor (tether.db.raw): appended on every write.
_LOCK = Statement("SELECT pg_advisory_xact_lock(hashtextextended(:entity, 0))")
_INSERT = Statement(
    "INSERT INTO sync_outbox (created_at, entity_type, entity_id, op, payload)"
    " VALUES (:created_at, :entity_type, :entity_id, :op, :payload)"
)


def append(session: Session, entity_type: str, entity_id: str, op: str, payload: Any) -> None:
    if session.get_bind().dialect.name == "postgresql":
        _LOCK.scalar(session, {"entity": f"{entity_type}:{entity_id}"})
    _INSERT.run(
        session,
        {
            "created_at": now_ms(),
            "entity_type": entity_type,
            "entity_id": entity_id,
            "op": op,
            "payload": orjson.dumps(payload).decode(),
        },
    )
