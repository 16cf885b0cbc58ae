"""Queries over experiments and their tags."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.orm import Session

from tether.db import workspace_scope
from tether.db.dialect import upsert_insert
from tether.db.int64 import bigint
from tether.db.models import Dataset, Experiment, ExperimentTag, InputTag, Run, RunInput
from tether.db.raw import Statement


def get(session: Session, experiment_id: int) -> Experiment | None:
    """The experiment, None if there is none; any int64 id may be asked (see `db.int64`)."""
    stmt = select(Experiment).where(Experiment.experiment_id == bigint(experiment_id))
    return session.scalars(stmt).one_or_none()


_STAGE_AND_LOCATION = Statement(
    "SELECT lifecycle_stage, artifact_location FROM experiments"
    " WHERE experiment_id = :experiment_id"
)


def stage_and_location(session: Session, experiment_id: int) -> tuple[str, str | None] | None:
    """(lifecycle stage, artifact location) of an experiment, None if there is none: what a
    new run needs, without loading the ORM object."""
    row = _STAGE_AND_LOCATION.first(session, {"experiment_id": experiment_id})
    return None if row is None else (row[0], row[1])


def get_by_name(session: Session, name: str) -> Experiment | None:
    """The experiment of that name in the request's workspace (names are unique per one)."""
    stmt = select(Experiment).where(
        Experiment.workspace == workspace_scope.current(), Experiment.name == name
    )
    return session.scalars(stmt).one_or_none()


def get_many(session: Session, ids: Sequence[int]) -> dict[int, Experiment]:
    rows = session.scalars(select(Experiment).where(Experiment.experiment_id.in_(ids)))
    return {row.experiment_id: row for row in rows}


def tags_for(session: Session, ids: Sequence[int]) -> dict[int, list[tuple[str, str | None]]]:
    result: dict[int, list[tuple[str, str | None]]] = defaultdict(list)
    rows = session.execute(
        select(ExperimentTag.experiment_id, ExperimentTag.key, ExperimentTag.value)
        .where(ExperimentTag.experiment_id.in_(ids))
        .order_by(ExperimentTag.id)  # the order they were first set, as MLflow lists them
    )
    for experiment_id, key, value in rows:
        result[experiment_id].append((key, value))
    return result


# The input tag naming what a run used a dataset for (MLflow's MLFLOW_DATASET_CONTEXT).
DATASET_CONTEXT_TAG = "mlflow.data.context"


def dataset_summaries(
    session: Session, experiment_ids: Sequence[int], limit: int
) -> list[tuple[int, str, str, str | None]]:
    """Distinct (experiment id, dataset name, digest, context) of the runs' dataset inputs,
    in that order (no context first), at most `limit`. MLflow's query has no ORDER BY; on
    SQLite its rows come in the order of the datasets' unique index, (experiment, name,
    digest), which this keeps, and contexts of one dataset in its inputs' insertion order,
    for which this sorts them by name: Tether records no insertion order of inputs."""
    rows = session.execute(
        select(Dataset.experiment_id, Dataset.name, Dataset.digest, InputTag.value)
        .distinct()
        .join(RunInput, RunInput.dataset_uuid == Dataset.dataset_uuid)
        .outerjoin(
            InputTag,
            and_(
                InputTag.input_uuid == RunInput.input_uuid,
                InputTag.name == DATASET_CONTEXT_TAG,
            ),
        )
        .where(Dataset.experiment_id.in_([bigint(e) for e in experiment_ids]))
        .order_by(Dataset.experiment_id, Dataset.name, Dataset.digest, InputTag.value.nulls_first())
        .limit(limit)
    )
    return [(e, name, digest, context) for e, name, digest, context in rows]


def insert_experiment(
    session: Session,
    *,
    name: str,
    artifact_location: str | None,
    now: int,
    experiment_id: int | None = None,
) -> Experiment:
    row = Experiment(
        workspace=workspace_scope.current(),
        name=name,
        artifact_location=artifact_location,
        lifecycle_stage="active",
        creation_time=now,
        last_update_time=now,
    )
    if experiment_id is not None:
        row.experiment_id = experiment_id
    session.add(row)
    session.flush()
    return row


def upsert_tags(session: Session, experiment_id: int, tags: dict[str, str]) -> None:
    if not tags:
        return
    rows = [{"experiment_id": experiment_id, "key": k, "value": v} for k, v in tags.items()]
    stmt = upsert_insert(session, ExperimentTag).values(rows)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[ExperimentTag.experiment_id, ExperimentTag.key],
            set_={"value": stmt.excluded.value},
        )
    )


def delete_tag(session: Session, experiment_id: int, key: str) -> int:
    result = session.execute(
        delete(ExperimentTag).where(
            ExperimentTag.experiment_id == experiment_id, ExperimentTag.key == key
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def set_runs_lifecycle(
    session: Session, experiment_id: int, stage: str, deleted_time: int | None
) -> list[str]:
    run_ids = list(session.scalars(select(Run.run_uuid).where(Run.experiment_id == experiment_id)))
    session.execute(
        update(Run)
        .where(Run.experiment_id == experiment_id)
        .values(lifecycle_stage=stage, deleted_time=deleted_time)
    )
    return run_ids


def insert_default(session: Session, artifact_location: str, now: int) -> None:
    session.execute(
        insert(Experiment).values(
            experiment_id=0,
            name="Default",
            artifact_location=artifact_location,
            lifecycle_stage="active",
            creation_time=now,
            last_update_time=now,
        )
    )
