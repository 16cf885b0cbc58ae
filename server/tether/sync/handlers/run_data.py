"""A run's outbox rows delivered together: its data coalesced into few requests, in order.

The worker hands over the run's rows after its cursor, page by page (`OutboxRow`); they are
decoded here one by one. Consecutive *data* rows (`RunLogBatch`: log-batch, log-metric,
log-parameter; `RunSetTag`) are held together (`Pending`): their params (a union: params are
write-once), their tags (the last write of a key wins) and their metric points (exact id
ranges, sent in id order). They go out:
- metric points 250 per request (Azure's limit, `limits`) as soon as 250 are held, whatever
  the number of client writes they came from;
- everything held, params up to 100 and tags up to 100 per request first, when the next row
  is a *barrier* (`runs.Barrier`: create, update, delete, restore, tag delete, inputs,
  outputs), whose meaning depends on what came before it: it is applied after the data
  before it and before the data after it, so "a tag set then deleted ends deleted" and "the
  status and end time come after the data" hold by construction; also when `MAX_HELD_ROWS`
  rows are held;
- at the end of what is pending: at once when the oldest held row is older than the linger
  (`ctx.linger_ms`), else the run is put back until then (`Lingering`). A busy run thus sends
  at most one partial request per linger, and a full batch never waits. The linger counts
  from the *oldest* held write: counting from the newest would hold a run that is written
  continuously for as long as the writes go on.
Rows without effect on the run in Azure (its files' rows, which `run_artifacts` delivers, and
an update that changed nothing) are held as already delivered.

A run's rows written after its experiment's delete or restore wait for it
(`runs.experiment_fence`): MLflow deletes and restores an experiment's runs with it.

Progress: the cursor moves to the last row fully delivered (its params and tags sent, its
points at or below the high-water mark) with every commit; `state["data_through"]` is the
last row whose params and tags were sent, committed with the budgets that decided them, so a
replayed row sends only its points; the points have their own marks (`metrics`), so a row
whose params wait for the end of its batch is read again after a crash, its points not sent
again. Each commit comes right after a request (for a metric request: with the next one's
in-doubt marker), so a crash repeats at most one request, and repeating it is harmless.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import assert_never

from tether.clock import now_ms
from tether.db.outbox import DecodeError
from tether.db.outbox.reader import RUN
from tether.db.outbox.records import (
    ArtifactDelete,
    ArtifactPut,
    IdRange,
    RunCreate,
    RunDelete,
    RunDeleteTag,
    RunLogBatch,
    RunLogInputs,
    RunLogOutputs,
    RunRestore,
    RunSetTag,
    RunUpdate,
)
from tether.sync.azureml.errors import PermanentError
from tether.sync.handlers import metrics, runs
from tether.sync.handlers.base import Context, Lingering, Row
from tether.sync.limits import (
    METRICS_PER_BATCH,
    PARAMS_PER_BATCH,
    TAGS_PER_BATCH,
    admit_params,
    chunks,
)

DATA_THROUGH = "data_through"
# Ops that end a linger at once (discovery): the rows a partial batch must go out before.
FLUSH_OPS = frozenset(
    cls.OP.value
    for cls in (RunUpdate, RunDelete, RunRestore, RunDeleteTag, RunLogInputs, RunLogOutputs)
)
# Rows held without 250 points to send (tags, params, files, single points): flushed as they
# are beyond this, so what is held stays small whatever the run's rows.
MAX_HELD_ROWS = 2_000


@dataclass(frozen=True)
class OutboxRow:
    id: int
    created_at: int
    op: str
    payload: str


@dataclass
class _Held:
    id: int
    created_at: int
    ranges: tuple[IdRange, ...]
    last_point: int  # its largest metric id (0: none)
    needs_data: bool  # params or tags not sent yet


def deliver(ctx: Context, rows: Iterable[OutboxRow]) -> bool:
    """Deliver `rows` (the run's, in id order, after its cursor); False when the lane must
    give the run back first (`ctx.should_yield`). Raises `Lingering` when a partial batch
    waits, or what a barrier or a request raises; `ctx.work` holds what was delivered."""
    pending = Pending(ctx)
    fence = runs.experiment_fence(ctx)
    for row in rows:
        if ctx.should_yield():
            return False
        if fence is not None and row.id > fence[1]:
            pending.flush()  # what came before the experiment's delete or restore goes first
            ctx.wait_for(fence[0])
        ctx.row_id = row.id
        try:
            record = RUN(ctx.work.key.entity_id, row.op, row.payload)
        except DecodeError as exc:
            pending.flush()  # what came before it is delivered; the row itself stops the run
            raise PermanentError(f"outbox row {row.id}: {exc}") from None
        match record:
            case RunLogBatch() | RunSetTag():
                pending.add(row, record)
                if pending.points >= METRICS_PER_BATCH:
                    pending.flush(full_only=True)
                elif len(pending.held) >= MAX_HELD_ROWS:
                    pending.flush()
            case (
                ArtifactPut()
                | ArtifactDelete()
                | RunUpdate(status=None, end_time=None, run_name=None)
            ):
                pending.add_delivered(row)
            case (
                RunCreate()
                | RunUpdate()
                | RunDelete()
                | RunRestore()
                | RunDeleteTag()
                | RunLogInputs()
                | RunLogOutputs()
            ):
                pending.flush()
                runs.apply(ctx, Row(row.id, record))
                ctx.work.cursor = row.id
                ctx.checkpoint()
            case _:
                assert_never(record)
    if pending.held:
        due = pending.held[0].created_at + ctx.linger_ms
        if due > now_ms():
            raise Lingering(due)
        pending.flush()
    return True


class Pending:
    """Data rows read but not fully delivered yet, and what they still have to send."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.held: deque[_Held] = deque()
        self.params: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.points = 0  # held metric points above the high-water mark
        self.data_through = int(ctx.work.state.get(DATA_THROUGH, 0))

    def add(self, row: OutboxRow, record: RunLogBatch | RunSetTag) -> None:
        ctx = self.ctx
        fresh = row.id > self.data_through  # its params and tags were not sent yet
        if fresh:
            for key, value in record.params.items():
                self.params.setdefault(key, value)
            self.tags.update(record.tags)
        ranges = record.metric_ids
        floor = ctx.work.metric_hwm + 1
        self.points += sum(max(0, hi - max(lo, floor) + 1) for lo, hi in ranges)
        size = sum(hi - lo + 1 for lo, hi in ranges)
        if size > METRICS_PER_BATCH:
            ctx.report(
                "split",
                "metrics",
                f"outbox {row.id}: {size} metric points sent in requests of at most "
                f"{METRICS_PER_BATCH} (Azure ML's per-request limit)",
            )
        if record.model_metric_ids:
            runs.model_links(ctx, "logged-model metrics")  # the points themselves are run metrics
        last = max((hi for _, hi in ranges), default=0)
        needs_data = fresh and bool(record.params or record.tags)
        self.held.append(_Held(row.id, row.created_at, ranges, last, needs_data))

    def add_delivered(self, row: OutboxRow) -> None:
        self.held.append(_Held(row.id, row.created_at, (), 0, False))
        self.cover()

    def flush(self, *, full_only: bool = False) -> None:
        """Send what is held: params and tags, then the points in batches of 250; with
        `full_only`, only the full batches of points. Commits after each request."""
        if not full_only and (self.params or self.tags):
            self._send_params_and_tags()
        while self.points >= METRICS_PER_BATCH or (self.points > 0 and not full_only):
            ranges = self._next_ranges(METRICS_PER_BATCH)
            self.cover()  # the previous request's progress goes with the next one's marker
            metrics.send(self.ctx, runs.azure_run(self.ctx, "log_batch"), ranges)
            self.points -= sum(hi - lo + 1 for lo, hi in ranges)
        self.cover()

    def cover(self) -> None:
        """Move the cursor over the rows now fully delivered."""
        work = self.ctx.work
        while self.held and not self.held[0].needs_data:
            if self.held[0].last_point > work.metric_hwm:
                break
            work.cursor = self.held.popleft().id
        if work.state.get(DATA_THROUGH, 0) and work.cursor >= work.state[DATA_THROUGH]:
            work.state.pop(DATA_THROUGH)  # nothing left it could skip

    def _next_ranges(self, limit: int) -> list[IdRange]:
        """The next `limit` point ids above the mark, as ranges, in id order."""
        out: list[IdRange] = []
        need = limit
        floor = self.ctx.work.metric_hwm + 1
        for held in self.held:
            for lo, hi in held.ranges:
                start = max(lo, floor)
                if start > hi:
                    continue
                end = min(hi, start + need - 1)
                out.append((start, end))
                need -= end - start + 1
                if need == 0:
                    return out
        return out

    def _send_params_and_tags(self) -> None:
        ctx = self.ctx
        run_id = runs.azure_run(ctx, "log_batch")
        ctx.row_id = self.held[-1].id
        budget = runs.tag_budget(ctx)
        tags = budget.admit(runs.map_parent(ctx, self.tags), ctx.reports)
        already = int(ctx.work.state.get("params", 0))
        params, sent_params = admit_params(self.params, already, ctx.reports)
        param_chunks = chunks(params, PARAMS_PER_BATCH)
        tag_chunks = chunks(tags, TAGS_PER_BATCH)
        for i in range(max(len(param_chunks), len(tag_chunks))):
            ctx.api.log_batch(
                run_id,
                params=param_chunks[i] if i < len(param_chunks) else None,
                tags=tag_chunks[i] if i < len(tag_chunks) else None,
            )
        state = ctx.work.state
        state["tags"] = sorted(budget.sent)
        state["params"] = sent_params
        state[DATA_THROUGH] = self.data_through = self.held[-1].id
        for held in self.held:
            held.needs_data = False
        self.params, self.tags = {}, {}
        self.cover()
        ctx.checkpoint()
