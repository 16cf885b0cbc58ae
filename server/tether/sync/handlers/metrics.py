"""Metric points of a run: every point once, in id order, 250 per request.

Azure appends metric points [INF: docs/azureml-protocol.md §7.3]: a resent batch duplicates them.
Two marks make delivery exactly-once:
- `metric_hwm` (a column): the last point id Azure acknowledged; never resent;
- `state["metrics_in_doubt"]`: the last id of a batch that was about to be sent. It is
  committed *before* the request, so after a lost response, a crash or a kill -9 the next
  attempt knows the batch may have landed and reads the metric histories to send only the
  points that are missing.
A run's metric ids grow in its outbox order (its writers serialize on the run row), which
makes one high-water mark per run enough.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, select

from tether.db.models import Metric
from tether.db.outbox.records import IdRange
from tether.sync.azureml.errors import AmbiguousError
from tether.sync.handlers.base import Context
from tether.sync.limits import METRICS_PER_BATCH

IN_DOUBT = "metrics_in_doubt"


def send(ctx: Context, run_id: str, ranges: Sequence[IdRange]) -> int:
    """Send the points of `ranges` above the mark; returns how many were sent."""
    local_id = ctx.work.key.entity_id
    within = or_(*[and_(Metric.id >= lo, Metric.id <= hi) for lo, hi in ranges])
    sent = 0
    while True:
        with ctx.db.read() as session:
            rows = session.execute(
                select(Metric.id, Metric.key, Metric.value, Metric.timestamp, Metric.step)
                .add_columns(Metric.is_nan)
                .where(Metric.run_uuid == local_id, Metric.id > ctx.work.metric_hwm, within)
                .order_by(Metric.id)
                .limit(METRICS_PER_BATCH)
            ).all()
        if not rows:
            return sent
        batch = [
            {
                "key": key,
                "value": "NaN" if is_nan else value,  # as MLflow's client encodes it
                "timestamp": timestamp,
                "step": step,
            }
            for _, key, value, timestamp, step, is_nan in rows
        ]
        last = int(rows[-1][0])
        if ctx.work.state.get(IN_DOUBT, 0) >= rows[0][0]:
            batch = _missing(ctx, run_id, batch)
        else:
            ctx.work.state[IN_DOUBT] = last
            ctx.checkpoint()
        if batch:
            try:
                ctx.api.log_batch(run_id, metrics=batch)
            except AmbiguousError:
                ctx.work.state[IN_DOUBT] = last  # already committed; kept for the retry
                raise
        ctx.work.metric_hwm = last
        ctx.work.state.pop(IN_DOUBT, None)
        ctx.checkpoint()
        sent += len(rows)


def _missing(ctx: Context, run_id: str, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points of `batch` Azure does not have (the batch may have landed unacknowledged)."""
    present: set[tuple[str, int, int, str]] = set()
    for key in sorted({p["key"] for p in batch}):
        for point in ctx.api.metric_history(run_id, key):
            present.add(_identity(key, point))
    return [p for p in batch if _identity(p["key"], p) not in present]


def _identity(key: str, point: dict[str, Any]) -> tuple[str, int, int, str]:
    value = point.get("value", 0.0)
    text = "NaN" if value == "NaN" or value != value else repr(float(value))
    return key, int(point.get("step", 0)), int(point.get("timestamp", 0)), text
