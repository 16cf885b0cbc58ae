"""Differential tests: the same data loaded into MLflow's own SQL store (`SqlAlchemyStore`, the
installed mlflow 3.x, on its own database of the same backend) and into our tables; the same
searches on both must return the same runs / experiments in the same order, with the same page
tokens. Run ids are MLflow's, reused for our rows, so even run_uuid tie-breaks are comparable.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from mlflow.entities import (
    Dataset,
    DatasetInput,
    ExperimentTag,
    InputTag,
    Metric,
    Param,
    RunStatus,
    RunTag,
    ViewType,
)
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from search.searchdb import Loader
from tether.tracking.experiments.search import search_experiment_ids
from tether.tracking.runs.search import search_run_ids

METRIC_POOL = [0.1, 0.5, 0.5, 1.0, -3.0, 0.0, 2.5, 1e10, math.nan, math.inf, -math.inf]
OPT_POOL = ["Adam", "adam", "ADAM", "sgd", "SGD", "a_b", "a%b", "a*b", "x?y", "[z]", "a.b"]
LR_POOL = ["0.1", "0.01", "1e-3", "10", "9"]
TEAM_POOL = ["red", "Red", "blue", "", "green team", "it's"]
USER_POOL = ["alice", "bob", "Alice", "carol"]
DATASET_POOL = [("train", "d1"), ("train", "d2"), ("eval", "d3"), ("Eval", "d4")]
CONTEXT_POOL = ["training", "evaluation", "Training", None]


@dataclass
class World:
    run_experiments: list[int]
    names: dict[str, str] = field(default_factory=dict)  # run id -> run name
    experiment_names: dict[int, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def mlflow_store(
    db_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SqlAlchemyStore]:
    tmp = tmp_path_factory.mktemp("mlflow-store")
    if db_kind == "sqlite":
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
    else:
        uri = request.getfixturevalue("new_postgres_database")()
        uri = uri.replace("postgresql://", "postgresql+psycopg://", 1)
    store = SqlAlchemyStore(uri, (tmp / "artifacts").as_uri())
    try:
        yield store
    finally:
        store.engine.dispose()


def _load_experiments(store: SqlAlchemyStore, rng: random.Random) -> list[str]:
    ids = []
    for index, name in enumerate(
        ["runs-a", "runs-b", "Alpha", "alpha", "alpha_1", "beta%", "Gamma", "delta", "eps"]
    ):
        tags = []
        if rng.random() < 0.6:
            tags.append(ExperimentTag("env", rng.choice(["prod", "Prod", "dev", "x_y"])))
        if index % 3 == 0:
            tags.append(ExperimentTag("owner", rng.choice(["ann", "bo"])))
        ids.append(store.create_experiment(name, tags=tags))
    for deleted in ids[-2:]:
        store.delete_experiment(deleted)
    # Controlled times (with ties and NULLs), written straight into MLflow's table.
    with store.engine.begin() as conn:
        for experiment_id in ["0", *ids]:
            conn.execute(
                text(
                    "UPDATE experiments SET creation_time = :c, last_update_time = :u "
                    "WHERE experiment_id = :i"
                ),
                {
                    "c": rng.choice([100, 200, 200, 300, None]),
                    "u": rng.choice([400, 500, 500, None]),
                    "i": int(experiment_id),
                },
            )
    return ids


def _load_runs(
    store: SqlAlchemyStore, rng: random.Random, experiment_ids: list[str]
) -> list[dict[str, Any]]:
    runs = []
    for index in range(40):
        spec: dict[str, Any] = {
            "experiment_id": rng.choice(experiment_ids),
            "name": f"{rng.choice(['run', 'Run'])}-{index:02d}",
            "start_time": rng.choice([1000, 1010, 1020, 1030, 1030]),  # MLflow needs one
            "user_id": rng.choice(USER_POOL),
            "metrics": {},
            "params": {},
            "tags": {},
            "datasets": [],
            "status": rng.choice(["RUNNING", "FINISHED", "FINISHED", "FAILED", "KILLED"]),
            "deleted": rng.random() < 0.12,
        }
        if rng.random() < 0.7:
            spec["params"]["opt"] = rng.choice(OPT_POOL)
        if rng.random() < 0.6:
            spec["params"]["lr"] = rng.choice(LR_POOL)
        if rng.random() < 0.6:
            spec["tags"]["team"] = rng.choice(TEAM_POOL)
        if rng.random() < 0.3:
            spec["tags"]["note.x"] = rng.choice(["a", "b"])
        run = store.create_run(
            spec["experiment_id"],
            spec["user_id"],
            spec["start_time"],
            [RunTag(k, v) for k, v in spec["tags"].items()],
            spec["name"],
        )
        spec["run_id"] = run.info.run_id
        spec["artifact_uri"] = run.info.artifact_uri
        points = []
        for key in ["acc", "loss", "m x"]:
            if rng.random() < 0.75:
                # Increasing steps: the last point logged is the latest.
                values = [rng.choice(METRIC_POOL) for _ in range(rng.randint(1, 3))]
                points += [Metric(key, v, 1000 + step, step) for step, v in enumerate(values)]
                spec["metrics"][key] = values[-1]
        store.log_batch(
            spec["run_id"],
            metrics=points,
            params=[Param(k, v) for k, v in spec["params"].items()],
            tags=[],
        )
        if spec["status"] != "RUNNING":
            spec["end_time"] = (spec["start_time"] or 1000) + rng.randint(1, 50)
            store.update_run_info(
                spec["run_id"], RunStatus.from_string(spec["status"]), spec["end_time"], None
            )
        inputs = []
        for name, digest in rng.sample(DATASET_POOL, rng.choice([0, 0, 1, 2])):
            context = rng.choice(CONTEXT_POOL)
            spec["datasets"].append((name, digest, context))
            tags = [InputTag("mlflow.data.context", context)] if context else []
            inputs.append(DatasetInput(Dataset(name, digest, "local", "{}"), tags))
        if inputs:
            store.log_inputs(spec["run_id"], datasets=inputs)
        if spec["deleted"]:
            store.delete_run(spec["run_id"])
        runs.append(spec)
    return runs


@pytest.fixture(scope="module")
def world(mlflow_store: SqlAlchemyStore, engine: Engine) -> World:
    rng = random.Random(20240611)
    experiment_ids = _load_experiments(mlflow_store, rng)
    runs = _load_runs(mlflow_store, rng, experiment_ids[:2])
    world = World(run_experiments=[int(e) for e in experiment_ids[:2]])
    with Session(engine) as session, session.begin():
        load = Loader(session)
        for experiment_id in ["0", *experiment_ids]:
            exp = mlflow_store.get_experiment(experiment_id)
            load.experiment(
                exp.name,
                experiment_id=int(exp.experiment_id),
                lifecycle_stage=exp.lifecycle_stage,
                creation_time=exp.creation_time,
                last_update_time=exp.last_update_time,
                tags=dict(exp.tags),
            )
            world.experiment_names[int(exp.experiment_id)] = exp.name
        for spec in runs:
            load.run(
                int(spec["experiment_id"]),
                spec["name"],
                run_uuid=spec["run_id"],
                start_time=spec["start_time"],
                end_time=spec.get("end_time"),
                status=spec["status"],
                user_id=spec["user_id"],
                lifecycle_stage="deleted" if spec["deleted"] else "active",
                artifact_uri=spec["artifact_uri"],
                metrics=spec["metrics"],
                params=spec["params"],
                tags=spec["tags"],
                datasets=spec["datasets"],
            )
            world.names[spec["run_id"]] = spec["name"]
    return world


def _token(token: Any) -> str | None:
    if token is None:
        return None
    return token.decode() if isinstance(token, bytes) else str(token)


def _compare_runs(
    store: SqlAlchemyStore,
    engine: Engine,
    world: World,
    filter_string: str,
    order_by: list[str],
    view: str = "ACTIVE_ONLY",
    max_results: int = 1000,
    experiment_ids: list[int] | None = None,
) -> list[str]:
    """Page through both stores; assert identical pages and tokens; return the run names."""
    experiment_ids = experiment_ids or world.run_experiments
    names: list[str] = []
    ours_token: str | None = None
    theirs_token: str | None = None
    for _ in range(100):
        theirs = store.search_runs(
            [str(e) for e in experiment_ids],
            filter_string,
            ViewType.from_string(view.lower()),
            max_results,
            order_by,
            theirs_token,
        )
        with Session(engine) as session:
            ours, ours_token = search_run_ids(
                session,
                experiment_ids=experiment_ids,
                filter_string=filter_string,
                run_view_type=view,
                max_results=max_results,
                order_by=order_by,
                page_token=ours_token,
            )
        theirs_names = [world.names[r.info.run_id] for r in theirs]
        ours_names = [world.names[r] for r in ours]
        assert ours_names == theirs_names, (filter_string, order_by, view)
        assert ours == [r.info.run_id for r in theirs]
        theirs_token = _token(theirs.token)
        assert ours_token == theirs_token
        names += ours_names
        if ours_token is None:
            return names
    raise AssertionError("paging did not end")


RUN_FILTERS = [
    "",
    "metrics.acc > 0.5",
    "metrics.acc >= 0.5",
    "metrics.acc = 0.5",
    "metrics.acc = 0",
    "metrics.acc != 0.5",
    "metrics.acc != 0",
    "metrics.acc < 0",
    "metrics.acc <= -1e308",
    "metrics.acc > 1e300",
    "metrics.`m x` > 0",
    'metrics."m x" <= 1',
    "metrics.loss > 0 AND metrics.acc < 1",
    "params.opt = 'adam'",
    "params.opt != 'adam'",
    "params.opt LIKE 'a%'",
    "params.opt LIKE 'A%'",
    "params.opt ILIKE 'a%'",
    "params.opt LIKE 'a_b'",
    "params.opt LIKE 'a*b'",
    "params.opt LIKE 'x?y'",
    "params.opt LIKE '[z]'",
    "params.opt LIKE '%.%'",
    "params.opt LIKE 'a%b'",
    "params.opt ILIKE '%D%'",
    "params.lr IS NULL",
    "params.lr IS NOT NULL",
    "params.lr = '10' AND params.opt IS NOT NULL",
    "tags.team = 'red'",
    "tags.team != 'red'",
    "tags.team = ''",
    "tags.team LIKE '%team'",
    "tags.team ILIKE 'RED'",
    'tags.team = "it\'s"',
    "tags.team IS NULL",
    "tags.`note.x` IS NOT NULL",
    "tags.note.x = 'a'",
    "tags.`mlflow.runName` LIKE 'Run%'",
    "attributes.status = 'FINISHED'",
    "attributes.status != 'RUNNING'",
    "status LIKE 'F%'",
    "status ILIKE 'f%'",
    "attributes.user_id = 'alice'",
    "user_id ILIKE 'alice'",
    "user_id != 'bob'",
    "attributes.run_name = 'Run-03'",
    "run_name LIKE 'run-1%'",
    "run_name ILIKE 'RUN-1_'",
    "`Run Name` != 'run-00'",
    "attributes.start_time > 1010",
    "start_time <= 1010",
    "created = 1030",
    "Created != 1030",
    "end_time > 1020",
    "attributes.end_time < 1040",
    "attributes.artifact_uri LIKE '%artifacts%'",
    "datasets.name = 'train'",
    "datasets.name LIKE 'E%'",
    "datasets.name ILIKE 'eval'",
    "datasets.name != 'train'",
    "datasets.digest IN ('d1', 'd4')",
    "datasets.digest NOT IN ('d1')",
    "datasets.name IN ('eval')",
    "datasets.context = 'training'",
    "datasets.context ILIKE 'training'",
    "datasets.context != 'training'",
    "datasets.context IN ('evaluation', 'Training')",
    "datasets.context NOT IN ('training')",
    "datasets.name = 'train' AND datasets.context = 'evaluation'",
    "metrics.acc > 0 AND params.opt ILIKE 'a%' AND tags.team IS NOT NULL",
]


@pytest.mark.parametrize("filter_string", RUN_FILTERS)
def test_run_filters(
    mlflow_store: SqlAlchemyStore, engine: Engine, world: World, filter_string: str
) -> None:
    names = _compare_runs(mlflow_store, engine, world, filter_string, [])
    if filter_string == "":
        assert len(names) > 25  # the data set is what we think it is


def test_run_filters_select_something(
    mlflow_store: SqlAlchemyStore, engine: Engine, world: World
) -> None:
    """Most filters above must match some runs but not all, or the comparison says little."""
    everything = set(_compare_runs(mlflow_store, engine, world, "", [], view="ALL"))
    informative = 0
    for filter_string in RUN_FILTERS:
        with Session(engine) as session:
            ids, _ = search_run_ids(
                session,
                experiment_ids=world.run_experiments,
                filter_string=filter_string,
                run_view_type="ALL",
                max_results=1000,
                order_by=[],
                page_token=None,
            )
        informative += 0 < len(ids) < len(everything)
    assert informative >= 0.75 * len(RUN_FILTERS)


RUN_ORDER_BYS = [
    ["metrics.acc"],
    ["metrics.acc DESC"],
    ["metrics.`m x` DESC"],
    ["metrics.loss ASC", "metrics.acc DESC"],
    ["params.opt"],
    ["params.opt DESC"],
    ["params.lr DESC", "params.opt ASC"],
    ["tags.team"],
    ["tags.team DESC"],
    ["tags.`note.x` DESC", "metrics.acc"],
    ["attributes.start_time"],
    ["start_time DESC"],
    ["created ASC"],
    ["end_time"],
    ["end_time DESC"],
    ["status", "user_id DESC"],
    ["user_id"],
    ["run_name DESC"],
    ["attributes.run_id"],
    ["run_id DESC"],
    ["artifact_uri"],
    ["tags.`mlflow.runName` DESC"],
    ["metrics.acc DESC", "start_time ASC"],
]


@pytest.mark.parametrize("order_by", RUN_ORDER_BYS, ids=str)
def test_run_order_by(
    mlflow_store: SqlAlchemyStore, engine: Engine, world: World, order_by: list[str]
) -> None:
    _compare_runs(mlflow_store, engine, world, "", order_by, view="ALL")


@pytest.mark.parametrize(
    ("filter_string", "order_by", "view", "max_results"),
    [
        ("", [], "ACTIVE_ONLY", 7),
        ("", [], "ALL", 5),
        ("", [], "DELETED_ONLY", 1),
        ("metrics.acc != 0.5", ["metrics.acc DESC"], "ALL", 4),
        ("params.opt IS NOT NULL", ["params.opt ASC", "metrics.loss DESC"], "ACTIVE_ONLY", 3),
        ("datasets.name = 'train'", ["tags.team"], "ALL", 2),
        ("tags.team != 'red'", ["end_time DESC"], "ALL", 6),
    ],
)
def test_run_paging(
    mlflow_store: SqlAlchemyStore,
    engine: Engine,
    world: World,
    filter_string: str,
    order_by: list[str],
    view: str,
    max_results: int,
) -> None:
    names = _compare_runs(
        mlflow_store, engine, world, filter_string, order_by, view=view, max_results=max_results
    )
    assert names == _compare_runs(mlflow_store, engine, world, filter_string, order_by, view=view)


def test_single_experiment(mlflow_store: SqlAlchemyStore, engine: Engine, world: World) -> None:
    for experiment_id in world.run_experiments:
        _compare_runs(
            mlflow_store, engine, world, "metrics.acc > 0", ["params.opt"],
            experiment_ids=[experiment_id],
        )  # fmt: skip


# ---------------------------------------------------------------------------- experiments


def _compare_experiments(
    store: SqlAlchemyStore,
    engine: Engine,
    world: World,
    filter_string: str,
    order_by: list[str],
    view: str = "ACTIVE_ONLY",
    max_results: int = 1000,
) -> list[str]:
    names: list[str] = []
    ours_token: str | None = None
    theirs_token: str | None = None
    for _ in range(100):
        theirs = store.search_experiments(
            ViewType.from_string(view.lower()), max_results, filter_string, order_by, theirs_token
        )
        with Session(engine) as session:
            ours, ours_token = search_experiment_ids(
                session,
                view_type=view,
                filter_string=filter_string,
                max_results=max_results,
                order_by=order_by,
                page_token=ours_token,
            )
        assert ours == [int(e.experiment_id) for e in theirs], (filter_string, order_by, view)
        theirs_token = _token(theirs.token)
        assert ours_token == theirs_token
        names += [world.experiment_names[i] for i in ours]
        if ours_token is None:
            return names
    raise AssertionError("paging did not end")


EXPERIMENT_CASES = [
    ("", []),
    ("", ["name"]),
    ("", ["name DESC"]),
    ("", ["creation_time"]),
    ("", ["creation_time DESC", "name"]),
    ("", ["last_update_time DESC"]),
    ("", ["last_update_time", "experiment_id"]),
    ("", ["experiment_id DESC"]),
    ("name = 'alpha'", []),
    ("name LIKE 'a%'", []),
    ("name LIKE 'alpha_'", []),
    ("name ILIKE 'ALPHA%'", ["name"]),
    ("name LIKE 'beta%'", []),
    ("name != 'Alpha'", ["creation_time"]),
    ("tags.env = 'prod'", []),
    ("tags.env ILIKE 'prod'", []),
    ("tags.env LIKE 'x_%'", []),
    ("tags.env != 'dev'", []),
    ("tags.owner IS NULL", []),
    ("tags.owner IS NOT NULL", ["name DESC"]),
    ("creation_time > 100", []),
    ("creation_time = 200", ["last_update_time"]),
    ("last_update_time <= 450", []),
    ("last_update_time != 500", []),
    ("experiment_id IN ('1', '3', '5')", []),
    ("experiment_id NOT IN ('1')", []),
    ("experiment_id = '2'", []),
    ("name LIKE '%a%' AND creation_time >= 200", []),
]


@pytest.mark.parametrize(("filter_string", "order_by"), EXPERIMENT_CASES, ids=str)
@pytest.mark.parametrize("view", ["ACTIVE_ONLY", "ALL"])
def test_experiments(
    mlflow_store: SqlAlchemyStore,
    engine: Engine,
    world: World,
    filter_string: str,
    order_by: list[str],
    view: str,
) -> None:
    _compare_experiments(mlflow_store, engine, world, filter_string, order_by, view=view)


def test_experiment_paging(mlflow_store: SqlAlchemyStore, engine: Engine, world: World) -> None:
    for view in ["ACTIVE_ONLY", "ALL", "DELETED_ONLY"]:
        full = _compare_experiments(mlflow_store, engine, world, "", [], view=view)
        assert _compare_experiments(mlflow_store, engine, world, "", [], view, 3) == full
    assert len(full) == 2
