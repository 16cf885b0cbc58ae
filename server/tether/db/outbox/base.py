"""What every outbox record shares: its entity, its op, and how its payload is written.

A record is a frozen dataclass: `entity_id` plus the payload's fields, its `OP` (a member of
its entity's op enum) and `entity_type` as class constants. `payload()` is the JSON object
stored in `sync_outbox.payload`: every field but the entity's, by name, in declaration order;
a `SPARSE` record leaves out fields that are None or empty (a log-batch without tags stores
no "tags"). Reading goes the other way (`decode`): the payload's keys are the field names,
a missing key takes the field's default, an unknown key is refused.

Plain data: no domain imports. `db` sits below every domain, and the sync worker, which must
not import a domain, reads these records too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import ConfigDict


class EntityType(StrEnum):
    """`sync_outbox.entity_type`: whose change a row records."""

    EXPERIMENT = "experiment"
    RUN = "run"
    LOGGED_MODEL = "logged_model"
    REGISTERED_MODEL = "registered_model"
    MODEL_VERSION = "model_version"
    ARTIFACT = "artifact"  # a file outside any run or logged model (kept here, never synced)
    TRACE = "trace"  # MLflow 3 traces: kept here, never synced (Azure ML refuses them)


IdRange = tuple[int, int]  # [first, last] ids, both included

# Fields that are the row's columns, not its payload.
_ROW_FIELDS = frozenset({"entity_id", "entity_type"})
# Every record, and the values inside one (`DatasetInput`, `ModelOutput`): a key this
# version does not know is refused by the decoder, never dropped (see `decode`).
STRICT = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class Record:
    entity_id: str

    OP: ClassVar[StrEnum]
    SPARSE: ClassVar[bool] = False
    # Appends of an ORDERED record hold a per-entity lock on PostgreSQL, so its rows' ids follow
    # commit order (db.outbox.writer); records no worker replays in order opt out.
    ORDERED: ClassVar[bool] = True
    __pydantic_config__: ClassVar[ConfigDict] = STRICT

    @property
    def op(self) -> str:
        """`OP` as the plain str stored in `sync_outbox.op` (psycopg binds an Enum by name)."""
        return str(self.OP)

    def payload(self) -> dict[str, Any]:
        """The JSON object stored for this record."""
        write = _WRITERS.get(type(self))
        if write is None:
            write = _WRITERS[type(self)] = _writer(type(self))
        return write(self)

    @classmethod
    def upgrade(cls, payload: dict[str, Any]) -> dict[str, Any]:
        """A payload in an older stored shape -> the current one. Only records whose shape
        has changed override this, and they keep every old branch forever."""
        return payload


_WRITERS: dict[type[Record], Callable[[Record], dict[str, Any]]] = {}


def _writer(cls: type[Record]) -> Callable[[Record], dict[str, Any]]:
    """`payload` of `cls`, compiled once from its fields into a dict display (as dataclasses
    compiles `__init__`): ~0.2 us, where a loop over the fields took 1-2 us (measured), on the
    path of every client write."""
    names = [f.name for f in fields(cls) if f.name not in _ROW_FIELDS]
    if cls.SPARSE:
        lines = ["def write(r):", "    d = {}"]
        for name in names:
            lines.append(f"    v = r.{name}")
            lines.append(f"    if v is not None and v != () and v != {{}}: d[{name!r}] = v")
        lines.append("    return d")
    else:
        lines = ["def write(r):", "    return {" + ", ".join(f"{n!r}: r.{n}" for n in names) + "}"]
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), namespace)  # field names are identifiers: nothing else goes in
    write: Callable[[Record], dict[str, Any]] = namespace["write"]
    return write


def id_ranges(ids: Sequence[int]) -> tuple[IdRange, ...]:
    """Compress distinct ids (primary keys) into [first, last] ranges: a record references rows,
    never copies them."""
    if not ids:
        return ()
    lo, hi = min(ids), max(ids)
    if hi - lo + 1 == len(ids):  # contiguous (distinct ids): the usual batch, one range
        return ((lo, hi),)
    ranges: list[list[int]] = []
    for i in sorted(ids):
        if ranges and ranges[-1][1] + 1 == i:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    return tuple((lo, hi) for lo, hi in ranges)
