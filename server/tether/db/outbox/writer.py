"""Appending a record: one small INSERT, inside the write's own transaction.

Per entity, outbox ids follow commit order: the worker can then keep one cursor per entity
and never skip a row. SQLite gets that from its single writer; on PostgreSQL two transactions
touching the same entity could otherwise draw ids in one order and commit in the other, so
the append first takes a transaction-scoped advisory lock on the entity (unless the record is
not `ORDERED`: rows no worker replays, such as traces).
"""

from __future__ import annotations

import orjson
from sqlalchemy.orm import Session

from tether.clock import now_ms
from tether.db.outbox.records import AnyRecord
from tether.db.raw import Statement

# Constant statements on the DBAPI cursor (tether.db.raw): appended on every write.
_LOCK = Statement("SELECT pg_advisory_xact_lock(hashtextextended(:entity, 0))")
_INSERT = Statement(
    "INSERT INTO sync_outbox (created_at, entity_type, entity_id, op, payload)"
    " VALUES (:created_at, :entity_type, :entity_id, :op, :payload)"
)


def append(session: Session, record: AnyRecord) -> None:
    # Plain str values: psycopg binds an Enum by its member *name*.
    entity_type = str(record.entity_type)
    # A bound session (every session of `Database`) names its engine without get_bind's
    # lookup (0.3 -> 0.07 us, on every client write).
    bind = session.bind if session.bind is not None else session.get_bind()
    if record.ORDERED and bind.dialect.name == "postgresql":
        _LOCK.scalar(session, {"entity": f"{entity_type}:{record.entity_id}"})
    _INSERT.run(
        session,
        {
            "created_at": now_ms(),
            "entity_type": entity_type,
            "entity_id": record.entity_id,
            "op": record.op,
            "payload": orjson.dumps(record.payload()).decode(),
        },
    )
