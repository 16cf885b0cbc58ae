"""The sync outbox a running server wrote, read straight from its store.

Tests take `last_outbox_id(db)` before a request and `outbox_after(db, last)` after it: every
acknowledged write appends its record(s) in the same transaction, a refused one appends none.
Rows are read with plain SQL, so the check is on what is stored, not on the ORM's view of it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import text

from tether.db.engine import Database


@contextlib.contextmanager
def open_store(backend_uri: str) -> Iterator[Database]:
    """A `Database` on a server's backend store, disposed afterwards."""
    db = Database(backend_uri)
    try:
        yield db
    finally:
        db.dispose()


def last_outbox_id(db: Database) -> int:
    with db.read() as session:
        value = session.execute(text("SELECT coalesce(max(id), 0) FROM sync_outbox")).scalar()
    return int(value or 0)


def outbox_after(db: Database, last_id: int) -> list[dict[str, Any]]:
    """Records after `last_id`, in order: {"entity": (type, id), "op", "payload" (decoded)}."""
    with db.read() as session:
        rows = session.execute(
            text(
                "SELECT entity_type, entity_id, op, payload FROM sync_outbox "
                "WHERE id > :last ORDER BY id"
            ),
            {"last": last_id},
        ).all()
    return [{"entity": (r[0], r[1]), "op": r[2], "payload": json.loads(r[3])} for r in rows]
