"""Queries over runs, their params, tags, latest metrics and dataset inputs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from tether.db.dialect import in_list
from tether.db.engine import fetch_tuples
from tether.db.models import Dataset, InputTag, LatestMetric, Param, Run, RunInput, RunTag
from tether.db.raw import Statement
from tether.tracking.logged_models import repository as logged_models


def get(session: Session, run_id: str, *, for_update: bool = False) -> Run | None:
    """`for_update` serializes concurrent writers of one run on PostgreSQL (a row lock), so
    write-once params and latest metrics are decided against committed state."""
    return session.get(Run, run_id, with_for_update=for_update)


_LIFECYCLE_STAGE = Statement(
    select(Run.lifecycle_stage).where(Run.run_uuid == bindparam("run_id")).with_for_update()
)


def lock_lifecycle_stage(session: Session, run_id: str) -> str | None:
    """The run's lifecycle stage (None: no such run), row-locked like `get(for_update=True)`
    but without loading an ORM object: the metric-logging path only needs the stage."""
    stage: str | None = _LIFECYCLE_STAGE.scalar(session, {"run_id": run_id})
    return stage


def set_name(session: Session, run_id: str, name: str) -> None:
    session.execute(update(Run).where(Run.run_uuid == run_id).values(name=name))


def params_for(session: Session, run_id: str, keys: Sequence[str]) -> dict[str, str]:
    rows = session.execute(
        select(Param.key, Param.value).where(Param.run_uuid == run_id, Param.key.in_(keys))
    )
    return {key: value for key, value in rows}


# Constant statement texts valid on both backends, run on the DBAPI cursor (tether.db.raw):
# the equivalent ON CONFLICT constructs were rebuilt and recompiled by SQLAlchemy every call.
_INSERT_PARAM = Statement(
    'INSERT INTO params (run_uuid, "key", value) VALUES (:run_uuid, :key, :value)'
    " ON CONFLICT DO NOTHING"
)
_UPSERT_TAG = Statement(
    'INSERT INTO tags (run_uuid, "key", value) VALUES (:run_uuid, :key, :value)'
    ' ON CONFLICT (run_uuid, "key") DO UPDATE SET value = excluded.value'
)


def insert_params(session: Session, run_id: str, params: dict[str, str]) -> None:
    if not params:
        return
    _INSERT_PARAM.executemany(
        session, [{"run_uuid": run_id, "key": k, "value": v} for k, v in params.items()]
    )


def upsert_tags(session: Session, run_id: str, tags: dict[str, str]) -> None:
    if not tags:
        return
    _UPSERT_TAG.executemany(
        session, [{"run_uuid": run_id, "key": k, "value": v} for k, v in tags.items()]
    )


def delete_tag(session: Session, run_id: str, key: str) -> int:
    result = session.execute(delete(RunTag).where(RunTag.run_uuid == run_id, RunTag.key == key))
    return int(result.rowcount)  # type: ignore[attr-defined]


_INSERT_RUN = Statement(
    "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time,"
    " deleted_time, lifecycle_stage, artifact_uri) VALUES (:run_uuid, :experiment_id, :name,"
    " :user_id, :status, :start_time, :end_time, :deleted_time, :lifecycle_stage, :artifact_uri)"
)


def insert_run(session: Session, run: Run) -> None:
    """Insert a new run from a transient `Run` (no unit-of-work flush)."""
    _INSERT_RUN.run(
        session,
        {
            "run_uuid": run.run_uuid,
            "experiment_id": run.experiment_id,
            "name": run.name,
            "user_id": run.user_id,
            "status": run.status,
            "start_time": run.start_time,
            "end_time": run.end_time,
            "deleted_time": run.deleted_time,
            "lifecycle_stage": run.lifecycle_stage,
            "artifact_uri": run.artifact_uri,
        },
    )


# (run_uuid, name, experiment_id, user_id, status, start_time, end_time, artifact_uri,
# lifecycle_stage): a run's own columns, as `_RUN_COLUMNS` reads them.
RunColumns = tuple[str, str | None, int, str | None, str, int | None, int | None, str | None, str]
# (run_uuid, key, value, is_nan, timestamp, step): a latest_metrics row.
MetricRow = tuple[str, str, float, bool, int, int]
KeyValueRows = list[tuple[str, str | None]]
DatasetRows = list[tuple[Dataset, list[tuple[str, str]]]]  # each with its input's tags


def columns_of(run: Run) -> RunColumns:
    return (
        run.run_uuid,
        run.name,
        run.experiment_id,
        run.user_id,
        run.status,
        run.start_time,
        run.end_time,
        run.artifact_uri,
        run.lifecycle_stage,
    )


@dataclass(frozen=True)
class RunsRead:
    """What `load_runs` read, grouped by run id. `ids`: the runs found, in the order asked;
    `model_outputs` is None when they were not read."""

    ids: list[str]
    columns: dict[str, RunColumns]
    metrics: dict[str, list[MetricRow]]
    params: dict[str, KeyValueRows]
    tags: dict[str, KeyValueRows]
    datasets: dict[str, DatasetRows]
    model_inputs: dict[str, list[tuple[str, int]]]
    model_outputs: dict[str, list[tuple[str, int]]] | None


def load_runs(
    session: Session,
    run_ids: Sequence[str],
    *,
    with_outputs: bool = False,
    with_model_inputs: bool = False,
) -> RunsRead:
    """Everything MLflow shows of the runs `run_ids`, in a few set-based queries. A run's
    metrics, params and tags come in the order they were first written (their rows' ids).

    `with_outputs` adds the logged models the run produced, which MLflow's runs/get and
    runs/search show and runs/create does not; `with_model_inputs` the logged models it read,
    which MLflow's runs/get shows and runs/search does not.
    """
    if not run_ids:
        return RunsRead([], {}, {}, {}, {}, {}, {}, {} if with_outputs else None)
    # Plain DBAPI tuples (fetch_tuples): a search page reads thousands of rows, and building
    # ORM objects or Row objects for them cost more than the queries.
    columns: dict[str, RunColumns] = {
        row[0]: row
        for row in fetch_tuples(
            session, _RUN_COLUMNS.where(in_list(session, Run.run_uuid, run_ids))
        )
    }
    metrics: dict[str, list[MetricRow]] = defaultdict(list)
    for row in fetch_tuples(
        session,
        select(
            LatestMetric.run_uuid,
            LatestMetric.key,
            LatestMetric.value,
            LatestMetric.is_nan,
            LatestMetric.timestamp,
            LatestMetric.step,
        )
        .where(in_list(session, LatestMetric.run_uuid, run_ids))
        .order_by(LatestMetric.id),
    ):
        metrics[row[0]].append(row)
    params: dict[str, KeyValueRows] = defaultdict(list)
    for run_uuid, key, value in fetch_tuples(
        session,
        select(Param.run_uuid, Param.key, Param.value)
        .where(in_list(session, Param.run_uuid, run_ids))
        .order_by(Param.id),
    ):
        params[run_uuid].append((key, value))
    tags: dict[str, KeyValueRows] = defaultdict(list)
    for run_uuid, key, tag_value in fetch_tuples(
        session,
        select(RunTag.run_uuid, RunTag.key, RunTag.value)
        .where(in_list(session, RunTag.run_uuid, run_ids))
        .order_by(RunTag.id),
    ):
        tags[run_uuid].append((key, tag_value))
    return RunsRead(
        ids=[run_id for run_id in run_ids if run_id in columns],
        columns=columns,
        metrics=metrics,
        params=params,
        tags=tags,
        datasets=_dataset_inputs(session, run_ids),
        model_inputs=(
            logged_models.links_for_runs(session, run_ids, logged_models.INPUT)
            if with_model_inputs
            else {}
        ),
        model_outputs=(
            logged_models.links_for_runs(session, run_ids, logged_models.OUTPUT)
            if with_outputs
            else None
        ),
    )


_RUN_COLUMNS = select(
    Run.run_uuid,
    Run.name,
    Run.experiment_id,
    Run.user_id,
    Run.status,
    Run.start_time,
    Run.end_time,
    Run.artifact_uri,
    Run.lifecycle_stage,
)


def _dataset_inputs(session: Session, run_ids: Sequence[str]) -> dict[str, DatasetRows]:
    rows = session.execute(
        select(RunInput.run_uuid, RunInput.input_uuid, Dataset)
        .join(Dataset, Dataset.dataset_uuid == RunInput.dataset_uuid)
        .where(in_list(session, RunInput.run_uuid, run_ids))
        .order_by(RunInput.run_uuid, Dataset.name, Dataset.digest)
    ).all()
    tags: dict[str, list[tuple[str, str]]] = defaultdict(list)
    input_ids = [row[1] for row in rows]
    if input_ids:
        for input_uuid, name, value in session.execute(
            select(InputTag.input_uuid, InputTag.name, InputTag.value).where(
                InputTag.input_uuid.in_(input_ids)
            )
        ):
            tags[input_uuid].append((name, value))
    result: dict[str, DatasetRows] = defaultdict(list)
    for run_uuid, input_uuid, dataset in rows:
        result[run_uuid].append((dataset, tags[input_uuid]))
    return result


def datasets_by_name_digest(
    session: Session, experiment_id: int, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    names = {k[0] for k in keys}
    rows = session.execute(
        select(Dataset.name, Dataset.digest, Dataset.dataset_uuid).where(
            Dataset.experiment_id == experiment_id, Dataset.name.in_(names)
        )
    )
    return {(name, digest): uuid for name, digest, uuid in rows if (name, digest) in set(keys)}


def existing_input(session: Session, run_id: str, dataset_uuid: str) -> str | None:
    return session.scalar(
        select(RunInput.input_uuid).where(
            RunInput.run_uuid == run_id, RunInput.dataset_uuid == dataset_uuid
        )
    )
