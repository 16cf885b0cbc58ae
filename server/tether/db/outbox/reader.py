"""Reading outbox rows back: (entity type, entity id, op, payload JSON) -> the typed record.

A deployed database holds rows written by every earlier release, so decoding accepts every
shape ever stored (a record's `upgrade` maps its older shapes to the current one) and refuses
the rest with `DecodeError`, whose message says what is wrong: an op this version does not
know, a payload that is not a JSON object, a missing or mistyped field, or a key it does not
know. A key it does not know is refused rather than dropped: it was written by a newer release
(or by hand), and delivering the record without it could lose what it meant. The sync worker
makes the error a dead letter of the entity, shown by `tether sync status` until an upgrade
and `tether sync retry`.

Field types are checked by pydantic, in its lax mode: a number stored as a numeric string would
still read as a number, while a value of another kind (a number where a string belongs, a
string where a mapping of tags belongs) is refused.
"""

from __future__ import annotations

import dataclasses
from types import UnionType
from typing import Any, Generic, TypeVar, get_args

import orjson
from pydantic import TypeAdapter, ValidationError

from tether.db.outbox.base import EntityType
from tether.db.outbox.records import (
    AnyRecord,
    ArtifactRecord,
    ExperimentRecord,
    LoggedModelRecord,
    ModelVersionRecord,
    RegisteredModelRecord,
    RunRecord,
    TraceRecord,
)

R = TypeVar("R", bound=AnyRecord)


class DecodeError(ValueError):
    """A row this version cannot read as a record (the message gives the reason)."""


class Decoder(Generic[R]):
    """Decodes the rows of one entity type whose records are the union `records`."""

    def __init__(self, entity_type: EntityType, records: UnionType) -> None:
        self.entity_type = entity_type
        self.classes: dict[str, type[R]] = {cls.OP.value: cls for cls in get_args(records)}
        self._adapters: dict[str, TypeAdapter[R]] = {}
        # Artifact records name their entity's type (one class serves runs, logged models...).
        self._typed = {op for op, c in self.classes.items() if "entity_type" in _names(c)}

    @property
    def ops(self) -> tuple[str, ...]:
        return tuple(self.classes)

    def __call__(self, entity_id: str, op: str, payload: str | bytes) -> R:
        cls = self.classes.get(op)
        if cls is None:
            raise DecodeError(f"unknown op {op!r} for {self.entity_type} rows (a newer release?)")
        try:
            fields = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"{self._what(op)}: the payload is not JSON ({exc})") from None
        if not isinstance(fields, dict):
            raise DecodeError(f"{self._what(op)}: the payload is not a JSON object")
        fields = cls.upgrade(fields)
        for key in ("entity_id", "entity_type"):
            if key in fields:
                raise DecodeError(f"{self._what(op)}: unexpected key {key!r} in the payload")
        fields["entity_id"] = entity_id
        if op in self._typed:
            fields["entity_type"] = self.entity_type
        try:
            return self._adapter(op, cls).validate_python(fields)
        except ValidationError as exc:
            raise DecodeError(f"{self._what(op)}: {_problems(exc)}") from None

    def _what(self, op: str) -> str:
        return f"malformed {self.entity_type} {op!r} record"

    def _adapter(self, op: str, cls: type[R]) -> TypeAdapter[R]:
        adapter = self._adapters.get(op)
        if adapter is None:  # built on first use: ~1 ms each, and most never are
            adapter = self._adapters[op] = TypeAdapter(cls)
        return adapter


def _names(cls: type[Any]) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _problems(exc: ValidationError) -> str:
    """pydantic's errors, one line: `tags.k: Input should be a valid string; ...`."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"]) or "payload"
        message = "unknown key" if error["type"] == "unexpected_keyword_argument" else error["msg"]
        problems.append(f"{where}: {message}")
    return "; ".join(problems)


EXPERIMENT = Decoder[ExperimentRecord](EntityType.EXPERIMENT, ExperimentRecord)
RUN = Decoder[RunRecord](EntityType.RUN, RunRecord)
RUN_FILES = Decoder[ArtifactRecord](EntityType.RUN, ArtifactRecord)  # only a run's file rows
LOGGED_MODEL = Decoder[LoggedModelRecord](EntityType.LOGGED_MODEL, LoggedModelRecord)
REGISTERED_MODEL = Decoder[RegisteredModelRecord](
    EntityType.REGISTERED_MODEL, RegisteredModelRecord
)
MODEL_VERSION = Decoder[ModelVersionRecord](EntityType.MODEL_VERSION, ModelVersionRecord)
ARTIFACT = Decoder[ArtifactRecord](EntityType.ARTIFACT, ArtifactRecord)
TRACE = Decoder[TraceRecord](EntityType.TRACE, TraceRecord)

DECODERS: dict[str, Decoder[Any]] = {
    d.entity_type.value: d
    for d in (EXPERIMENT, RUN, LOGGED_MODEL, REGISTERED_MODEL, MODEL_VERSION, ARTIFACT, TRACE)
}


def decode(entity_type: str, entity_id: str, op: str, payload: str | bytes) -> AnyRecord:
    """Any outbox row as its record."""
    decoder = DECODERS.get(entity_type)
    if decoder is None:
        raise DecodeError(f"unknown entity type {entity_type!r} (a newer release?)")
    record: AnyRecord = decoder(entity_id, op, payload)
    return record
