"""The sync outbox: every acknowledged write appends one record, in the write's own transaction.

The Azure ML worker drains it later; a record says what changed, so nothing written before
sync was switched on is lost. Bulk data (metric points) is referenced by id ranges rather than
copied, keeping the append one small insert per request.

The records (`records`) are a persistent wire format: a deployed database holds rows written
by every earlier release, read by whatever release runs its worker later. So:
- records are append-only: a row, once written, is never rewritten;
- the meaning of a stored shape never changes: a field keeps its name, type and meaning;
- new meaning gets a new record type or a new op, never a reinterpreted field; a new field is
  a new shape too. An older worker refuses an op or a key it does not know (a dead letter,
  resumed by `tether sync retry` after the upgrade) rather than misreading the row;
- the decoder keeps accepting every shape ever stored, forever (`decode`; the record's
  `upgrade` maps an older shape to the current one, and `tests/db/test_outbox_records.py`
  holds a literal row of each shape with the release that wrote it).

Writers construct records (`append(session, RunSetTag(run_id, key=..., value=...))`); no op
string or payload dict is written anywhere else.
"""

from tether.db.outbox.reader import DecodeError, Decoder, decode
from tether.db.outbox.writer import append

__all__ = ["DecodeError", "Decoder", "append", "decode"]
