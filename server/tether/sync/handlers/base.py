"""What a handler gets to apply one outbox row, and the two ways it can refuse to yet.

A handler gets the row's typed record (`tether.db.outbox`) and matches on it, ending in
`assert_never`: mypy then proves it handles every record its entity's rows can hold. A row
that does not decode (an op this version does not know, a malformed payload) never reaches a
handler: `Route` makes it a dead letter of the entity, with the decoder's reason.

A handler makes its Azure calls, records what it changed on `ctx.work` (the Azure id, its
JSON `state`, the metric high-water mark, the cursor) and appends reports; the worker then
commits all of that in one transaction. Progress that must survive a crash before the next
request (an acknowledged metric batch, the marker that a create was sent) goes through
`ctx.checkpoint()` right away: it commits everything `ctx.work` holds. So `ctx.work` only ever
holds what Azure acknowledged (or a marker that a request may have landed), never a plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, NoReturn, TypeVar

from tether.clock import now_ms
from tether.db import outbox
from tether.db.engine import Database
from tether.db.models import SyncEntity
from tether.db.outbox.records import AnyRecord
from tether.sync import state
from tether.sync.azureml.blob import BlobStore
from tether.sync.azureml.errors import PermanentError
from tether.sync.azureml.mlflow_api import AzureMLflow
from tether.sync.files import Files
from tether.sync.state import Claimed, Key, Report

R = TypeVar("R", bound=AnyRecord)
# A dependency another lane is delivering now is looked at again this soon (an experiment
# created in one lane while its runs wait in others: about one Azure round trip).
_IN_FLIGHT_RECHECK_MS = 250


@dataclass(frozen=True)
class Row(Generic[R]):
    id: int  # the outbox row's id
    record: R


class Deferred(Exception):
    """A dependency is not in Azure yet: put the entity back until `until` (epoch ms)."""

    def __init__(self, waiting_on: Key, until: int) -> None:
        super().__init__(f"waiting for {waiting_on}")
        self.waiting_on = waiting_on
        self.until = until


class Lingering(Exception):
    """A partial batch waits for more points: put the entity back until `until` (epoch ms)."""

    def __init__(self, until: int) -> None:
        super().__init__(f"lingering until {until}")
        self.until = until


class Blocked(PermanentError):
    """A dependency is dead: this entity cannot proceed either until both are retried."""

    def __init__(self, waiting_on: Key, reason: str) -> None:
        super().__init__(f"{waiting_on} is dead: {reason}")
        self.waiting_on = waiting_on


@dataclass
class Context:
    api: AzureMLflow
    db: Database
    work: Claimed
    checkpoint: Callable[[], None]
    defer_ms: int = 1_000
    files: Files = field(default_factory=lambda: Files(None))
    blobs: BlobStore = field(default_factory=BlobStore)
    reports: list[Report] = field(default_factory=list)
    # Per claim, in memory only (never committed): e.g. SAS URLs fetched ahead for later rows.
    cache: dict[str, Any] = field(default_factory=dict)
    row_id: int = 0  # the outbox row being applied: what new reports are about
    points: int = 0  # metric points delivered since the last commit (delivery rates)
    linger_ms: int = 0  # how long a run's partial batch may wait after its oldest write
    # True when the lane should give the entity back (stopping, or its time slice is used up).
    should_yield: Callable[[], bool] = lambda: False

    def report(self, kind: str, subject: str, reason: str) -> None:
        self.reports.append(Report(kind, subject, reason))

    def take_reports(self) -> list[tuple[Report, int]]:
        """The reports so far, with the row they are about; the list starts over."""
        taken = [(report, self.row_id) for report in self.reports]
        self.reports = []
        return taken

    def require(self, key: Key) -> str:
        """The Azure id of a dependency, or Deferred / Blocked when it has none yet."""
        with self.db.read() as session:
            entity = state.get(session, key)
        if entity is not None and entity.azure_id:
            return entity.azure_id
        if entity is not None and entity.status == state.DEAD:
            raise Blocked(key, entity.last_error or "dead")
        self.wait_for(key, entity)

    def wait_for(self, key: Key, entity: SyncEntity | None = None) -> NoReturn:
        """Come back when `key` may have moved: shortly, or when its backoff ends (Blocked
        while it is dead)."""
        if entity is None:
            with self.db.read() as session:
                entity = state.get(session, key)
        if entity is not None and entity.status == state.DEAD:
            raise Blocked(key, entity.last_error or "dead")
        delay = self.defer_ms
        now = now_ms()
        if entity is not None and entity.lease_owner and (entity.lease_expires_at or 0) >= now:
            delay = min(delay, _IN_FLIGHT_RECHECK_MS)  # another lane is on it right now
        until = now + delay
        if entity is not None and entity.status == state.FAILED:
            until = max(until, entity.next_attempt_at)
        raise Deferred(key, until)


@dataclass(frozen=True)
class Route(Generic[R]):
    """How one kind of sync entity reads its outbox rows (`decode`) and applies them."""

    decode: outbox.Decoder[R]
    apply: Callable[[Context, Row[R]], None]

    def __call__(self, ctx: Context, row_id: int, op: str, payload: str) -> None:
        try:
            record = self.decode(ctx.work.key.entity_id, op, payload)
        except outbox.DecodeError as exc:
            raise PermanentError(f"outbox row {row_id}: {exc}") from None
        self.apply(ctx, Row(row_id, record))
