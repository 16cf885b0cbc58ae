"""Queries over logged models, their params, tags and metrics, and the run <-> model links."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, tuple_
from sqlalchemy.orm import Session

from tether.db.dialect import in_list, upsert_insert
from tether.db.models import (
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelTag,
    RunModelLink,
)
from tether.errors import MlflowError

# Stored status names (MLflow's LoggedModelStatus) and their protobuf names / numbers.
STATUS_PROTO = {
    "UNSPECIFIED": "LOGGED_MODEL_STATUS_UNSPECIFIED",
    "PENDING": "LOGGED_MODEL_PENDING",
    "READY": "LOGGED_MODEL_READY",
    "FAILED": "LOGGED_MODEL_UPLOAD_FAILED",
}
STATUS_NUMBER = {"UNSPECIFIED": 0, "PENDING": 1, "READY": 2, "FAILED": 3}

INPUT = "input"
OUTPUT = "output"
_CHUNK = 500


def get(session: Session, model_id: str, *, for_update: bool = False) -> LoggedModel | None:
    return session.get(LoggedModel, model_id, with_for_update=for_update)


def existing_ids(session: Session, model_ids: Iterable[str]) -> set[str]:
    ids = sorted(set(model_ids))
    found: set[str] = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        found.update(
            session.scalars(select(LoggedModel.model_id).where(LoggedModel.model_id.in_(chunk)))
        )
    return found


# ----------------------------------------------------------------------------- params, tags


def param_keys(session: Session, model_id: str, keys: Sequence[str]) -> set[str]:
    return set(
        session.scalars(
            select(LoggedModelParam.key).where(
                LoggedModelParam.model_id == model_id, LoggedModelParam.key.in_(keys)
            )
        )
    )


def insert_params(session: Session, model_id: str, params: dict[str, str]) -> None:
    if params:
        session.execute(
            insert(LoggedModelParam).values(
                [{"model_id": model_id, "key": k, "value": v} for k, v in params.items()]
            )
        )


def upsert_tags(session: Session, model_id: str, tags: dict[str, str]) -> None:
    if not tags:
        return
    stmt = upsert_insert(session, LoggedModelTag).values(
        [{"model_id": model_id, "key": k, "value": v} for k, v in tags.items()]
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[LoggedModelTag.model_id, LoggedModelTag.key],
            set_={"value": stmt.excluded.value},
        )
    )


def delete_tag(session: Session, model_id: str, key: str) -> int:
    result = session.execute(
        delete(LoggedModelTag).where(LoggedModelTag.model_id == model_id, LoggedModelTag.key == key)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ metrics


@dataclass(frozen=True, slots=True)
class ModelMetric:
    """A metric point logged with a model_id (value already sanitized like MLflow's store:
    NaN stored as 0, infinities clamped)."""

    model_id: str
    key: str
    value: float
    timestamp: int
    step: int
    dataset_name: str | None
    dataset_digest: str | None

    def identity(self) -> tuple[str, str, int, int]:
        # The primary key of MLflow's logged_model_metrics (with the run id).
        return (self.model_id, self.key, self.timestamp, self.step)


def _conflict(run_id: str, point: ModelMetric) -> MlflowError:
    return MlflowError(
        f"Metric '{point.key}' was already logged for model '{point.model_id}' by run "
        f"'{run_id}' at timestamp {point.timestamp} and step {point.step} with a different "
        "value or dataset.",
        "BAD_REQUEST",
    )


def insert_metrics(session: Session, run_id: str, points: Sequence[ModelMetric]) -> list[int]:
    """Insert the new points; exact re-logs are skipped (as MLflow does), a point that reuses
    an identity (model, key, timestamp, step, run) with another value is refused."""
    unique: dict[tuple[str, str, int, int], ModelMetric] = {}
    for point in points:
        seen = unique.setdefault(point.identity(), point)
        if seen != point:
            raise _conflict(run_id, point)
    if not unique:
        return []
    stored = _stored_points(session, run_id, list(unique.values()))
    new = []
    for identity, point in unique.items():
        existing = stored.get(identity)
        if existing is None:
            new.append(point)
        elif existing != point:
            raise _conflict(run_id, point)
    if not new:
        return []
    rows = [
        {
            "model_id": p.model_id,
            "run_id": run_id,
            "key": p.key,
            "value": p.value,
            "timestamp": p.timestamp,
            "step": p.step,
            "dataset_name": p.dataset_name,
            "dataset_digest": p.dataset_digest,
        }
        for p in new
    ]
    return list(session.scalars(insert(LoggedModelMetric).returning(LoggedModelMetric.id), rows))


def _stored_points(
    session: Session, run_id: str, points: list[ModelMetric]
) -> dict[tuple[str, str, int, int], ModelMetric]:
    found: dict[tuple[str, str, int, int], ModelMetric] = {}
    identities = [p.identity() for p in points]
    m = LoggedModelMetric
    for start in range(0, len(identities), _CHUNK):
        chunk = identities[start : start + _CHUNK]
        rows = session.execute(
            select(
                m.model_id, m.key, m.value, m.timestamp, m.step, m.dataset_name, m.dataset_digest
            ).where(
                m.run_id == run_id,
                tuple_(m.model_id, m.key, m.timestamp, m.step).in_(chunk),
            )
        )
        for model_id, key, value, timestamp, step, ds_name, ds_digest in rows:
            point = ModelMetric(model_id, key, value or 0.0, timestamp, step, ds_name, ds_digest)
            found[point.identity()] = point
    return found


# ---------------------------------------------------------------------------- run links


def linked_models(session: Session, run_id: str, direction: str) -> dict[str, int]:
    rows = session.execute(
        select(RunModelLink.model_id, RunModelLink.step).where(
            RunModelLink.run_uuid == run_id, RunModelLink.direction == direction
        )
    )
    return {model_id: step for model_id, step in rows}


def insert_links(
    session: Session, run_id: str, direction: str, links: Sequence[tuple[str, int]]
) -> None:
    if links:
        session.execute(
            insert(RunModelLink).values(
                [
                    {"run_uuid": run_id, "model_id": m, "direction": direction, "step": step}
                    for m, step in links
                ]
            )
        )


def links_for_runs(
    session: Session, run_ids: Sequence[str], direction: str
) -> dict[str, list[tuple[str, int]]]:
    """(model id, step) of each run's input or output links, by model id."""
    result: dict[str, list[tuple[str, int]]] = defaultdict(list)
    rows = session.execute(
        select(RunModelLink.run_uuid, RunModelLink.model_id, RunModelLink.step)
        .where(
            in_list(session, RunModelLink.run_uuid, run_ids), RunModelLink.direction == direction
        )
        .order_by(RunModelLink.run_uuid, RunModelLink.model_id)
    )
    for run_id, model_id, step in rows:
        result[run_id].append((model_id, step))
    return result


# ------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class ModelRows:
    """A logged model as `load_models` reads it: its row and its children's, by key."""

    row: LoggedModel
    tags: list[tuple[str, str]]
    params: list[tuple[str, str]]
    metrics: list[LoggedModelMetric]  # in the order they were logged


def load_models(session: Session, model_ids: Sequence[str]) -> list[ModelRows]:
    """The logged models `model_ids` (those found, in that order), in four queries."""
    if not model_ids:
        return []
    ids = list(model_ids)
    rows = {
        r.model_id: r
        for r in session.scalars(select(LoggedModel).where(LoggedModel.model_id.in_(ids)))
    }
    tags: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for model_id, key, value in session.execute(
        select(LoggedModelTag.model_id, LoggedModelTag.key, LoggedModelTag.value)
        .where(LoggedModelTag.model_id.in_(ids))
        .order_by(LoggedModelTag.model_id, LoggedModelTag.key)
    ):
        tags[model_id].append((key, value))
    params: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for model_id, key, value in session.execute(
        select(LoggedModelParam.model_id, LoggedModelParam.key, LoggedModelParam.value)
        .where(LoggedModelParam.model_id.in_(ids))
        .order_by(LoggedModelParam.model_id, LoggedModelParam.key)
    ):
        params[model_id].append((key, value))
    metrics: dict[str, list[LoggedModelMetric]] = defaultdict(list)
    for point in session.execute(
        select(LoggedModelMetric)
        .where(LoggedModelMetric.model_id.in_(ids))
        .order_by(LoggedModelMetric.model_id, LoggedModelMetric.id)
    ).scalars():
        metrics[point.model_id].append(point)
    return [
        ModelRows(rows[model_id], tags[model_id], params[model_id], metrics[model_id])
        for model_id in ids
        if model_id in rows
    ]
