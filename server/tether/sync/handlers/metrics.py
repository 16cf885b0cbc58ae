"""Metric points of a run: every point once, in id order, up to 250 per request.

Azure appends metric points [INF: docs/azureml-protocol.md §7.3]: a resent batch duplicates them.
Two marks make delivery exactly-once:
- `metric_hwm` (a column): the last point id Azure acknowledged; never resent;
- `state["metrics_in_doubt"]`: the last id of a batch that was about to be sent. It is
  committed *before* the request (with whatever the run delivered before it), so after a lost
  response, a crash or a kill -9 the next attempt knows the batch may have landed and reads
  the metric histories to send only the points that are missing.
A run's metric ids grow in its outbox order (its writers serialize on the run row), which
makes one high-water mark per run enough; the records name their points by exact id ranges
(`tether.db.outbox.base.id_ranges`), so a batch is read by primary key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import or_, select

from tether.db.models import Metric
from tether.db.outbox.records import IdRange
from tether.sync.azureml.errors import PermanentError
from tether.sync.handlers.base import Context

IN_DOUBT = "metrics_in_doubt"


def send(ctx: Context, run_id: str, ranges: Sequence[IdRange]) -> int:
    """One request with the points of `ranges` (ids above the mark, at most 250, in order);
    the mark moves to the last of them. Returns how many points were sent."""
    last = ranges[-1][1]
    points = _read(ctx, ranges)
    in_doubt = int(ctx.work.state.get(IN_DOUBT, 0))
    doubtful = [p for p in points if p["id"] <= in_doubt]
    if doubtful:  # an earlier attempt may have delivered these: send only what is missing
        missing = {p["id"] for p in _missing(ctx, run_id, doubtful)}
        points = [p for p in points if p["id"] > in_doubt or p["id"] in missing]
    ctx.work.state[IN_DOUBT] = last
    ctx.checkpoint()  # durable before the request: whatever happens next, we look first
    if points:  # an AmbiguousError leaves the marker: the retry checks the histories
        batch = [{k: v for k, v in p.items() if k != "id"} for p in points]
        ctx.api.log_batch(run_id, metrics=batch)
    ctx.work.metric_hwm = last
    ctx.work.state.pop(IN_DOUBT, None)
    ctx.points += len(points)
    return len(points)


def _read(ctx: Context, ranges: Sequence[IdRange]) -> list[dict[str, Any]]:
    singles = [lo for lo, hi in ranges if lo == hi]
    spans = [(lo, hi) for lo, hi in ranges if lo != hi]
    within = [Metric.id.between(lo, hi) for lo, hi in spans]
    if singles:
        within.append(Metric.id.in_(singles))
    with ctx.db.read() as session:
        rows = session.execute(
            select(Metric.id, Metric.run_uuid, Metric.key, Metric.value, Metric.timestamp)
            .add_columns(Metric.step, Metric.is_nan)
            .where(or_(*within))
            .order_by(Metric.id)
        ).all()
    local_id = ctx.work.key.entity_id
    points = []
    for point_id, run_uuid, key, value, timestamp, step, is_nan in rows:
        if run_uuid != local_id:  # the outbox names this run's own points: never expected
            raise PermanentError(f"metric point {point_id} is not run {local_id}'s")
        points.append(
            {
                "id": point_id,
                "key": key,
                "value": "NaN" if is_nan else value,  # as MLflow's client encodes it
                "timestamp": timestamp,
                "step": step,
            }
        )
    return points


def _missing(ctx: Context, run_id: str, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points of `batch` Azure does not have (the batch may have landed unacknowledged).
    The histories are read page by page, keeping only what the batch holds: memory stays
    bounded whatever their length."""
    wanted = {_identity(p["key"], p): p for p in batch}
    present: set[tuple[str, int, int, str]] = set()
    for key in sorted({p["key"] for p in batch}):
        present.update(_matching(key, ctx.api.iter_metric_history(run_id, key), wanted))
    return [p for identity, p in wanted.items() if identity not in present]


def _matching(
    key: str, history: Iterable[dict[str, Any]], wanted: dict[tuple[str, int, int, str], Any]
) -> set[tuple[str, int, int, str]]:
    found = set()
    for point in history:
        identity = _identity(key, point)
        if identity in wanted:
            found.add(identity)
    return found


def _identity(key: str, point: dict[str, Any]) -> tuple[str, int, int, str]:
    value = point.get("value", 0.0)
    text = "NaN" if value == "NaN" or value != value else repr(float(value))
    return key, int(point.get("step", 0)), int(point.get("timestamp", 0)), text
