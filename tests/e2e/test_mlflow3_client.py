"""End to end: the installed MLflow 3.x client, in-process, against Tether and `mlflow server`.

Every scenario is written once as a function of a `Ctx` (a tracking URI, an `MlflowClient` and
a unique name prefix) and returns plain data with ids, timestamps and artifact URIs replaced by
stable labels. The test runs the scenario against the reference server (once per session,
cached) and against Tether (once per backend) and requires the two results to be equal; a few
absolute checks on the reference result make sure the comparison is not vacuous.

Scenarios starting with `errors_` are part 3 of the brief: bad input through the client must
raise `MlflowException` with the same error code as MLflow and leave the stored data unchanged.
"""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import mlflow
import mlflow.config
import mlflow.data
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType

from support import ReferenceServer, TetherServer, unique_name
from support.compare import assert_same, scrub
from support.mlflow3 import capture, once_per_session, tracking_to

pytestmark = [
    pytest.mark.usefixtures("clean_mlflow_client"),
    pytest.mark.filterwarnings(
        "ignore:Starting with pandas version 4.0",  # mlflow.data's digest code, not ours
        "ignore:Hint. Inferred schema contains integer column",
    ),
]

BASE_TS = 1_700_000_000_000  # explicit timestamps (ms) so histories compare exactly

# ------------------------------------------------------------------------- scenario context


class Ctx:
    """What a scenario gets: `.client`, `.name(suffix)`, and id -> label bookkeeping."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = unique_name("e2e3")
        self.client = MlflowClient(tracking_uri=url)
        self.run_labels: dict[str, str] = {}
        self.exp_labels: dict[str, str] = {}

    def name(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    # ids -> labels
    def register_run(self, run: Any, label: str | None = None) -> str:
        run_id = run.info.run_id
        self.run_labels[run_id] = label or run.info.run_name
        return str(run_id)

    def register_experiment(self, experiment_id: str, label: str) -> str:
        self.exp_labels[experiment_id] = label
        return experiment_id

    def run_label(self, run_id: str) -> str:
        return self.run_labels.get(run_id, f"<unknown run {len(self.run_labels)}>")

    def exp_label(self, experiment_id: str) -> str:
        if experiment_id == "0":
            return "Default"
        return self.exp_labels.get(experiment_id, "<unknown experiment>")

    def scrub(self, obj: Any) -> Any:
        """Known run ids replaced by labels and the unique prefix by `<P>`, recursively."""
        return scrub(obj, lambda s: self.run_labels.get(s, s).replace(self.prefix, "<P>"))

    # entities -> plain data
    def norm_run(self, run: Any) -> dict[str, Any]:
        info = run.info
        inputs = []
        if run.inputs is not None:
            for di in run.inputs.dataset_inputs:
                ds = di.dataset
                inputs.append(
                    {
                        "name": ds.name,
                        "digest": ds.digest,
                        "source_type": ds.source_type,
                        "source": ds.source,
                        "schema": ds.schema,
                        "profile": ds.profile,
                        "tags": sorted((t.key, t.value) for t in di.tags),
                    }
                )
        inputs.sort(key=lambda d: (d["name"], d["digest"], d["tags"]))
        return {
            "run": self.run_label(info.run_id),
            "experiment": self.exp_label(info.experiment_id),
            "run_name": self.scrub(info.run_name),
            "status": info.status,
            "lifecycle_stage": info.lifecycle_stage,
            "user_id": info.user_id,
            "has_start_time": isinstance(info.start_time, int) and info.start_time > 0,
            "has_end_time": info.end_time is not None,
            "end_not_before_start": info.end_time is None or info.end_time >= info.start_time,
            "metrics": self.scrub(dict(run.data.metrics)),
            "params": dict(run.data.params),
            "tags": self.scrub(dict(run.data.tags)),
            "inputs": self.scrub(inputs),
        }

    def norm_experiment(self, exp: Any) -> dict[str, Any] | None:
        if exp is None:
            return None
        return {
            "name": self.scrub(exp.name),
            "lifecycle_stage": exp.lifecycle_stage,
            "tags": self.scrub(dict(exp.tags)),
            "has_creation_time": bool(exp.creation_time),
            "updated_not_before_created": (exp.last_update_time or 0) >= (exp.creation_time or 0),
        }

    def history(self, run_id: str, key: str, *, timestamps: bool = True) -> list[Any]:
        points = self.client.get_metric_history(run_id, key)
        if timestamps:
            return self.scrub([[m.step, m.value, m.timestamp] for m in points])
        return self.scrub([[m.step, m.value] for m in points])

    def names(self, runs: Any) -> list[str]:
        return [self.run_label(r.info.run_id) for r in runs]


def run_scenario(scenario: Callable[[Ctx], Any], url: str) -> Any:
    with tracking_to(url):
        return scenario(Ctx(url))


def reference_result(scenario: Callable[[Ctx], Any], server: ReferenceServer) -> Any:
    """The scenario's result on the reference server, computed once per session."""
    return once_per_session(scenario, lambda: run_scenario(scenario, server.url))


def _loosen(result: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    out = dict(result)
    for key in keys:
        if isinstance(out.get(key), dict) and "error" in out[key]:
            out[key] = {"error": "<any error code>"}
    return out


def compare(
    scenario: Callable[[Ctx], Any],
    tether: TetherServer,
    reference: ReferenceServer,
    *,
    any_error_for: tuple[str, ...] = (),
) -> tuple[Any, Any]:
    """Run `scenario` on both servers, assert equal results, return (tether, reference).

    `any_error_for`: top-level keys where MLflow's error code is an accident of its
    implementation (an SQL IntegrityError surfacing as BAD_REQUEST, INVALID_STATE as HTTP 500):
    there Tether only has to fail too.
    """
    expected = reference_result(scenario, reference)
    got = run_scenario(scenario, tether.url)
    assert_same(_loosen(got, any_error_for), _loosen(expected, any_error_for))
    return got, expected


# ============================================================================== scenarios


def scenario_training_loop(ctx: Ctx) -> dict[str, Any]:
    """What a new user writes: set_experiment, a run with a loop, nested runs, end_run."""
    out: dict[str, Any] = {}
    exp = mlflow.set_experiment(ctx.name("train"))
    ctx.register_experiment(exp.experiment_id, "train")
    out["set_again_same_id"] = mlflow.set_experiment(ctx.name("train")).experiment_id == (
        exp.experiment_id
    )
    out["set_by_id_same_name"] = ctx.scrub(
        mlflow.set_experiment(experiment_id=exp.experiment_id).name
    )
    run_ids: list[str] = []
    with mlflow.start_run(run_name="parent", tags={"team": "e2e"}, description="notes") as parent:
        run_ids.append(ctx.register_run(parent))
        out["active_is_parent"] = ctx.run_label(mlflow.active_run().info.run_id)
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"epochs": 5, "optimizer": "adam", "layers": [64, 32], "none": None})
        for epoch in range(5):
            ts = BASE_TS + epoch * 1000
            mlflow.log_metric("loss", 1.0 / (epoch + 1), step=epoch, timestamp=ts)
            mlflow.log_metrics(
                {"acc": 0.5 + epoch / 10, "val_loss": 2.0 - epoch * 0.25}, step=epoch, timestamp=ts
            )
        mlflow.log_metric("lr_schedule", 0.5)  # no step: step 0, client-side timestamp
        mlflow.set_tag("stage", "dev")
        mlflow.set_tags({"x": "xyz", "framework": "none", "empty": ""})
        for i, status in enumerate(["FINISHED", "FAILED", "KILLED"]):
            child = mlflow.start_run(run_name=f"child-{i}", nested=True)
            run_ids.append(ctx.register_run(child))
            mlflow.log_param("fold", i)
            mlflow.log_metric("loss", 0.1 * (i + 1), step=0, timestamp=BASE_TS)
            mlflow.end_run(status=status)
        with (
            contextlib.suppress(RuntimeError),
            mlflow.start_run(run_name="child-crash", nested=True) as crash,
        ):
            run_ids.append(ctx.register_run(crash))
            with mlflow.start_run(run_name="grandchild", nested=True) as grandchild:
                run_ids.append(ctx.register_run(grandchild))
                mlflow.set_tag("depth", "2")
            raise RuntimeError("training blew up")
        out["active_after_children"] = ctx.run_label(mlflow.active_run().info.run_id)
    out["no_active_run_after_parent"] = mlflow.active_run() is None
    out["last_active_run"] = ctx.norm_run(mlflow.last_active_run())
    out["runs"] = [ctx.norm_run(ctx.client.get_run(r)) for r in run_ids]
    out["loss_history"] = ctx.history(run_ids[0], "loss")
    out["acc_history"] = ctx.history(run_ids[0], "acc")
    out["lr_schedule_history"] = ctx.history(run_ids[0], "lr_schedule", timestamps=False)
    out["experiment"] = ctx.norm_experiment(ctx.client.get_experiment(exp.experiment_id))
    out["experiment_by_name"] = ctx.norm_experiment(
        ctx.client.get_experiment_by_name(ctx.name("train"))
    )
    # The runs are all there, children pointing at their parent.
    children = ctx.client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{run_ids[0]}'",
        order_by=["attributes.run_name ASC"],
    )
    out["children_of_parent"] = ctx.names(children)
    return out


def test_training_loop(tether_server: TetherServer, reference_server: ReferenceServer) -> None:
    _, ref = compare(scenario_training_loop, tether_server, reference_server)
    runs = {r["run"]: r for r in ref["runs"]}
    assert runs["parent"]["status"] == "FINISHED"
    assert runs["parent"]["params"]["lr"] == "0.1"
    assert runs["parent"]["metrics"]["loss"] == pytest.approx(0.2)
    assert runs["child-1"]["status"] == "FAILED" and runs["child-2"]["status"] == "KILLED"
    assert runs["child-crash"]["status"] == "FAILED"
    assert runs["grandchild"]["tags"]["mlflow.parentRunId"] == "child-crash"
    assert runs["child-0"]["tags"]["mlflow.parentRunId"] == "parent"
    assert [p[0] for p in ref["loss_history"]] == [0, 1, 2, 3, 4]


def scenario_default_experiment_and_async(ctx: Ctx) -> dict[str, Any]:
    """No set_experiment: runs land in Default ('0'). Async logging batches in the background."""
    c = ctx.client
    with mlflow.start_run(run_name=ctx.name("in-default")) as run:
        ctx.register_run(run, "in-default")
        mlflow.log_param("where", "default")
    out: dict[str, Any] = {"default_run": ctx.norm_run(c.get_run(run.info.run_id))}
    exp = mlflow.set_experiment(ctx.name("async"))
    ctx.register_experiment(exp.experiment_id, "async")
    mlflow.config.enable_async_logging(True)
    try:
        with mlflow.start_run(run_name="async") as arun:
            ctx.register_run(arun)
            for step in range(50):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=BASE_TS + step)
                mlflow.log_metrics({"a": step * 2.0, "b": -step * 1.0}, step=step)
            mlflow.log_params({f"p{i}": i for i in range(30)})
            mlflow.set_tags({"async": "yes", "n": "50"})
            mlflow.flush_async_logging()
    finally:
        mlflow.config.enable_async_logging(False)
    out["async_run"] = ctx.norm_run(c.get_run(arun.info.run_id))
    out["async_loss"] = ctx.history(arun.info.run_id, "loss")
    out["async_b"] = ctx.history(arun.info.run_id, "b", timestamps=False)
    return out


def test_default_experiment_and_async_logging(
    tether_server: TetherServer, reference_server: ReferenceServer
) -> None:
    _, ref = compare(scenario_default_experiment_and_async, tether_server, reference_server)
    assert ref["default_run"]["experiment"] == "Default"
    assert ref["default_run"]["params"] == {"where": "default"}
    assert len(ref["async_loss"]) == 50 and ref["async_run"]["metrics"]["b"] == -49.0
    assert len(ref["async_run"]["params"]) == 30


def scenario_artifact_location(ctx: Ctx) -> dict[str, Any]:
    """An explicit artifact location is kept verbatim; runs get <location>/<run_id>/artifacts."""
    c = ctx.client
    out: dict[str, Any] = {}
    for label, location in [
        ("s3", f"s3://bucket/e2e/{ctx.prefix}"),
        ("file", f"file:///tmp/tether-e2e/{ctx.prefix}"),
        ("trailing-slash", f"s3://bucket/e2e/{ctx.prefix}/slash/"),
    ]:
        exp_id = ctx.register_experiment(
            c.create_experiment(ctx.name(label), artifact_location=location), label
        )
        run = c.create_run(exp_id, run_name=label)
        ctx.register_run(run)
        got = c.get_run(run.info.run_id)
        out[label] = {
            "experiment": ctx.scrub(c.get_experiment(exp_id).artifact_location),
            "run": ctx.scrub(got.info.artifact_uri.replace(run.info.run_id, "<RUN_ID>")),
        }
    return out


def test_artifact_location(tether_server: TetherServer, reference_server: ReferenceServer) -> None:
    _, ref = compare(scenario_artifact_location, tether_server, reference_server)
    assert ref["s3"] == {
        "experiment": "s3://bucket/e2e/<P>",
        "run": "s3://bucket/e2e/<P>/<RUN_ID>/artifacts",
    }


# ------------------------------------------------------------------------- search runs


SEARCH_SPECS = [
    # name, lr param, loss metric, tag x, final status (None: still RUNNING)
    ("r1", "0.1", 0.9, "xyz", "FINISHED"),
    ("r2", "0.01", 0.3, "abc", "FINISHED"),
    ("r3", "0.1", 0.2, "yyy", "FAILED"),
    ("r4", "0.001", None, "zzz", None),
    ("R5", "0.1", 0.45, None, "KILLED"),
    ("r6", None, 0.7, "y", "FINISHED"),
]


def _search_setup(ctx: Ctx, label: str) -> tuple[str, dict[str, str]]:
    c = ctx.client
    exp_id = ctx.register_experiment(c.create_experiment(ctx.name(label)), label)
    ids: dict[str, str] = {}
    for i, (name, lr, loss, x, status) in enumerate(SEARCH_SPECS):
        tags = {"idx": str(i), **({"x": x} if x is not None else {})}
        run = c.create_run(exp_id, start_time=BASE_TS + i * 1000, run_name=name, tags=tags)
        run_id = ids[name] = ctx.register_run(run)
        if lr is not None:
            c.log_param(run_id, "lr", lr)
        if loss is not None:
            c.log_metric(run_id, "loss", loss, timestamp=BASE_TS, step=0)
        c.log_metric(run_id, "acc", i / 10, timestamp=BASE_TS, step=0)
        if status is not None:
            c.set_terminated(run_id, status=status, end_time=BASE_TS + i * 1000 + 500)
    return exp_id, ids


SEARCH_FILTERS = [
    "",
    "metrics.loss < 0.5",
    "metrics.loss >= 0.45",
    "metrics.loss != 0.3",
    "metrics.acc > 0.2 AND metrics.loss <= 0.7",
    "params.lr = '0.1'",
    "params.lr != '0.1'",
    'params.lr = "0.01"',
    "params.lr LIKE '0.0%'",
    "params.lr IN ('0.1', '0.001')",
    "tags.x LIKE '%y%'",
    "tags.x ILIKE '%Y%'",
    "tags.x = 'xyz'",
    "tags.`x` != 'xyz'",
    "tags.idx IN ('1', '3')",
    "attributes.status = 'FINISHED'",
    "attributes.status != 'FINISHED'",
    "status = 'RUNNING'",
    "attributes.run_name = 'r3'",
    "run_name LIKE 'r%'",
    "attributes.run_name ILIKE 'r%'",
    "attributes.`run_name` != 'r1'",
    f"attributes.start_time > {BASE_TS + 2500}",
    f"attributes.start_time <= {BASE_TS + 2000} AND attributes.status = 'FINISHED'",
    f"attributes.end_time < {BASE_TS + 3000}",
    "metrics.loss < 0.5 AND params.lr = '0.1'",
    "metrics.loss < 0.5 and params.lr = '0.1' and tags.x LIKE 'y%'",
    "metrics.missing > 0",
    "params.missing = 'x'",
]

SEARCH_ORDERS: list[list[str] | None] = [
    None,
    ["metrics.loss ASC"],
    ["metrics.loss DESC"],
    ["metrics.loss"],
    ["params.lr DESC", "metrics.loss ASC"],
    ["params.lr ASC", "metrics.loss DESC"],
    ["attributes.start_time ASC"],
    ["start_time DESC"],
    ["tags.x ASC", "attributes.run_name DESC"],
    ["tags.x DESC"],
    ["attributes.status", "run_name"],
    ["attributes.run_name DESC"],
    ["attributes.end_time DESC"],
    ["metrics.acc DESC"],
    ["metrics.missing ASC", "run_name ASC"],
]


def scenario_search_runs_client(ctx: Ctx) -> dict[str, Any]:
    c = ctx.client
    exp_id, ids = _search_setup(ctx, "search")
    other = ctx.register_experiment(c.create_experiment(ctx.name("search-other")), "other")
    ctx.register_run(c.create_run(other, start_time=BASE_TS + 10_000, run_name="o1"))
    out: dict[str, Any] = {"filters": {}, "orders": {}, "combined": {}, "pages": {}}
    for flt in SEARCH_FILTERS:
        out["filters"][flt] = capture(lambda f=flt: c.search_runs([exp_id], f), ctx.names)
    for order in SEARCH_ORDERS:
        key = " | ".join(order) if order else "<default>"
        out["orders"][key] = capture(lambda o=order: c.search_runs([exp_id], order_by=o), ctx.names)
    combos = [
        ("params.lr = '{}'", ["metrics.loss DESC"]),
        ("tags.x LIKE '%y%'", ["attributes.run_name ASC"]),
        ("attributes.status != 'RUNNING'", ["params.lr DESC", "attributes.start_time ASC"]),
        ("attributes.run_id IN ('{r1}', '{r3}', '{R5}')", ["metrics.loss"]),
        ("attributes.run_id = '{r2}'", None),
        ("run_id IN ('{r2}') AND metrics.loss > 0", None),
    ]
    for template, order in combos:
        key = template + " || " + " | ".join(order or [])
        flt = template.replace("'{}'", "'0.1'").format(**ids)
        out["combined"][key] = capture(
            lambda f=flt, o=order: c.search_runs([exp_id], f, order_by=o), ctx.names
        )
    out["two_experiments"] = ctx.names(
        c.search_runs([exp_id, other], order_by=["attributes.start_time DESC"])
    )
    out["two_experiments_filtered"] = ctx.names(
        c.search_runs([other, exp_id], "attributes.start_time > 1", order_by=["run_name DESC"])
    )
    for label, flt, order, size in [
        ("all-by-2", "", None, 2),
        ("all-by-4", "", ["attributes.run_name ASC"], 4),
        ("loss-by-1", "metrics.loss < 0.8", ["metrics.loss ASC"], 1),
        ("exact", "", ["metrics.acc DESC"], 3),
    ]:
        pages: list[Any] = []
        token = None
        for _ in range(10):
            page = c.search_runs([exp_id], flt, order_by=order, max_results=size, page_token=token)
            pages.append(ctx.names(page))
            token = page.token
            if not token:
                break
        out["pages"][label] = {"pages": pages, "ended": not token}
    # A full run as search returns it (same as get_run, the data is all there).
    (found,) = c.search_runs([exp_id], "attributes.run_name = 'r2'")
    out["search_result_run"] = ctx.norm_run(found)
    out["get_run_same"] = ctx.norm_run(c.get_run(ids["r2"])) == ctx.norm_run(found)
    return out


def test_search_runs_client(tether_server: TetherServer, reference_server: ReferenceServer) -> None:
    _, ref = compare(scenario_search_runs_client, tether_server, reference_server)
    assert ref["filters"]["metrics.loss < 0.5"] == {"ok": ["R5", "r3", "r2"]}
    assert ref["filters"]["params.lr = '0.1'"] == {"ok": ["R5", "r3", "r1"]}
    assert ref["orders"]["metrics.loss ASC"]["ok"][-1] == "r4"  # no loss: last
    assert ref["pages"]["all-by-2"] == {
        "pages": [["r6", "R5"], ["r4", "r3"], ["r2", "r1"]],
        "ended": True,
    }


def scenario_search_runs_pandas(ctx: Ctx) -> dict[str, Any]:
    exp_id, _ = _search_setup(ctx, "pandas")

    def frame(df: pd.DataFrame) -> dict[str, Any]:
        rows = []
        for record in df.to_dict(orient="records"):
            row: dict[str, Any] = {}
            for col, value in record.items():
                if col in ("run_id", "artifact_uri"):
                    continue
                if col in ("start_time", "end_time"):
                    row[col] = None if pd.isna(value) else "set"
                elif col == "experiment_id":
                    row[col] = ctx.exp_label(value)
                elif not isinstance(value, str) and pd.isna(value):
                    row[col] = None
                else:
                    row[col] = ctx.scrub(value)
            rows.append(row)
        return {
            "columns": sorted(df.columns),
            "dtypes": {c: str(t) for c, t in sorted(df.dtypes.items())},
            "rows": rows,
        }

    out: dict[str, Any] = {}
    out["all"] = frame(mlflow.search_runs([exp_id], order_by=["attributes.run_name ASC"]))
    out["lr"] = frame(
        mlflow.search_runs(
            experiment_ids=[exp_id],
            filter_string="params.lr = '0.1'",
            order_by=["metrics.loss DESC"],
        )
    )
    out["by_name"] = frame(
        mlflow.search_runs(
            experiment_names=[ctx.name("pandas")],
            filter_string="tags.x LIKE '%y%' AND attributes.status = 'FINISHED'",
            order_by=["attributes.start_time ASC"],
        )
    )
    out["empty"] = frame(mlflow.search_runs([exp_id], filter_string="metrics.loss > 100"))
    out["max_results"] = frame(
        mlflow.search_runs([exp_id], max_results=2, order_by=["metrics.acc ASC"])
    )
    listed = mlflow.search_runs([exp_id], order_by=["params.lr DESC"], output_format="list")
    out["list"] = ctx.names(listed)
    return out


def test_search_runs_pandas(tether_server: TetherServer, reference_server: ReferenceServer) -> None:
    _, ref = compare(scenario_search_runs_pandas, tether_server, reference_server)
    assert [r["tags.mlflow.runName"] for r in ref["lr"]["rows"]] == ["r1", "R5", "r3"]
    assert "metrics.loss" in ref["all"]["columns"] and "params.lr" in ref["all"]["columns"]
    assert ref["empty"]["rows"] == []
    assert len(ref["max_results"]["rows"]) == 2


# --------------------------------------------------------------------------- metric history


def scenario_metric_history(ctx: Ctx) -> dict[str, Any]:
    c = ctx.client
    exp_id = ctx.register_experiment(c.create_experiment(ctx.name("hist")), "hist")
    run_id = ctx.register_run(c.create_run(exp_id, run_name="h"))
    points = [Metric("curve", round(math.sin(i / 50), 12), BASE_TS + i, i) for i in range(1500)]
    c.log_batch(run_id, metrics=points[:1000])
    c.log_batch(run_id, metrics=points[1000:])
    # Same step logged again later, and a far step logged with an early timestamp.
    c.log_metric(run_id, "curve", 5.0, timestamp=BASE_TS + 5_000, step=3)
    c.log_metric(run_id, "curve", -1.0, timestamp=BASE_TS - 10, step=1600)
    # Same (step, timestamp) twice with different values.
    c.log_metric(run_id, "dup", 2.0, timestamp=BASE_TS, step=1)
    c.log_metric(run_id, "dup", 1.0, timestamp=BASE_TS, step=1)
    # Negative steps and steps out of order.
    for step, value in [(5, 0.5), (-2, 0.2), (3, 0.3), (0, 0.0)]:
        c.log_metric(run_id, "scrambled", value, timestamp=BASE_TS + 100 - step, step=step)
    with mlflow.start_run(run_id=run_id):
        for step in range(3):
            mlflow.log_metric("fluent", step * 1.5, step=step)
    history = ctx.history(run_id, "curve")
    return {
        "curve_len": len(history),
        "curve": history,
        "dup": ctx.history(run_id, "dup"),
        "scrambled": ctx.history(run_id, "scrambled"),
        "fluent": ctx.history(run_id, "fluent", timestamps=False),
        "missing": ctx.history(run_id, "no-such-metric"),
        "run": ctx.norm_run(c.get_run(run_id)),
    }


def test_metric_history(tether_server: TetherServer, reference_server: ReferenceServer) -> None:
    _, ref = compare(scenario_metric_history, tether_server, reference_server)
    assert ref["curve_len"] == 1502
    assert ref["run"]["metrics"]["curve"] == -1.0  # the highest step wins
    assert ref["missing"] == []


def scenario_special_metric_values(ctx: Ctx) -> dict[str, Any]:
    c = ctx.client
    exp_id = ctx.register_experiment(c.create_experiment(ctx.name("special")), "special")
    run_id = ctx.register_run(c.create_run(exp_id, run_name="s"))
    values = [float("nan"), float("inf"), float("-inf"), 1e308, -0.0, 5e-324, 123456789.123456789]
    for step, value in enumerate(values):
        c.log_metric(run_id, "v", value, timestamp=BASE_TS + step, step=step)
        c.log_metric(run_id, f"v{step}", value, timestamp=BASE_TS, step=0)
    c.log_metric(run_id, "bigstep", 1.0, timestamp=BASE_TS, step=2**40)
    return {
        "history": ctx.history(run_id, "v"),
        "bigstep": ctx.history(run_id, "bigstep"),
        "run": ctx.norm_run(c.get_run(run_id)),
    }


def test_special_metric_values(
    tether_server: TetherServer, reference_server: ReferenceServer
) -> None:
    _, ref = compare(scenario_special_metric_values, tether_server, reference_server)
    # MLflow's SQL store keeps NaN and clamps +-inf to the largest finite double.
    assert ref["history"][0][1] == "nan"
    assert ref["history"][1][1] == 1.7976931348623157e308
    assert ref["bigstep"] == [[2**40, 1.0, BASE_TS]]


def scenario_search_special_values(ctx: Ctx) -> dict[str, Any]:
    """Search and order over NaN, +-inf and missing metric values."""
    c = ctx.client
    exp_id = ctx.register_experiment(c.create_experiment(ctx.name("nan")), "nan")
    values = {
        "nan": float("nan"),
        "pinf": float("inf"),
        "ninf": float("-inf"),
        "zero": 0.0,
        "neg": -2.5,
        "big": 1e300,
        "none": None,
    }
    for i, (name, value) in enumerate(values.items()):
        run_id = ctx.register_run(c.create_run(exp_id, start_time=BASE_TS + i, run_name=name))
        if value is not None:
            c.log_metric(run_id, "v", value, timestamp=BASE_TS, step=0)
    queries: list[tuple[str, list[str] | None]] = [
        ("", ["metrics.v ASC"]),
        ("", ["metrics.v DESC"]),
        ("metrics.v > 0", ["run_name ASC"]),
        ("metrics.v < 0", ["run_name ASC"]),
        ("metrics.v >= -1e308", ["run_name ASC"]),
        ("metrics.v != 0", ["run_name ASC"]),
        ("metrics.v = 0", ["run_name ASC"]),
    ]
    return {
        f"{f} || {o}": capture(lambda f=f, o=o: c.search_runs([exp_id], f, order_by=o), ctx.names)
        for f, o in queries
    }


def test_search_special_values(
    tether_server: TetherServer, reference_server: ReferenceServer
) -> None:
    _, ref = compare(scenario_search_special_values, tether_server, reference_server)
    ascending = ref[" || ['metrics.v ASC']"]["ok"]
    assert ascending[0] == "ninf" and ascending[-1] == "none"


def scenario_unicode_and_limits(ctx: Ctx) -> dict[str, Any]:
    """Unusual but valid keys and values, and values just past MLflow's limits."""
    c = ctx.client
    exp_id = ctx.register_experiment(c.create_experiment(ctx.name("ünï-🚀")), "unicode")
    run_id = ctx.register_run(c.create_run(exp_id, run_name="日本語の実行 🚀"))
    out: dict[str, Any] = {}
    c.log_param(run_id, "path/to.key-name_1 with space", "v")
    c.log_param(run_id, "emoji", "🚀 ünïcødé\ttab \n new\nline \\ backslash")
    c.log_param(run_id, "long", "x" * 6000)
    c.set_tag(run_id, "long_tag", "t" * 8000)
    c.set_tag(run_id, "quote", 'it\'s "quoted" %_')
    c.log_metric(run_id, "metric/with.slash", 1.5, timestamp=BASE_TS, step=0)
    c.set_experiment_tag(exp_id, "note", "ü" * 1000)
    out["too_long_param"] = capture(lambda: c.log_param(run_id, "too_long", "x" * 6001))
    out["too_long_tag"] = capture(lambda: c.set_tag(run_id, "too_long", "t" * 8001))
    out["bad_key"] = capture(lambda: c.log_param(run_id, "../escape", "1"))
    out["bad_metric_key"] = capture(lambda: c.log_metric(run_id, "a\tb", 1.0))
    out["long_key"] = capture(lambda: c.log_param(run_id, "k" * 251, "1"))
    out["run"] = ctx.norm_run(c.get_run(run_id))
    out["experiment"] = ctx.norm_experiment(c.get_experiment(exp_id))
    out["by_name"] = ctx.norm_experiment(c.get_experiment_by_name(ctx.name("ünï-🚀")))
    out["search"] = {
        f: capture(lambda f=f: c.search_runs([exp_id], f), ctx.names)
        for f in [
            "attributes.run_name = '日本語の実行 🚀'",
            "params.emoji LIKE '%ünï%'",
            "tags.quote = 'it\\'s \"quoted\" %_'",
            "tags.quote LIKE '%\"quoted\"%'",
            "metrics.`metric/with.slash` = 1.5",
            "params.`path/to.key-name_1 with space` = 'v'",
        ]
    }
    return out


def test_unicode_and_limits(tether_server: TetherServer, reference_server: ReferenceServer) -> None:
    _, ref = compare(scenario_unicode_and_limits, tether_server, reference_server)
    assert ref["run"]["run_name"] == "日本語の実行 🚀"
    assert len(ref["run"]["params"]["long"]) == 6000
    assert len(ref["run"]["tags"]["long_tag"]) == 8000
    # The 3.x client truncates over-long param and tag values (MLFLOW_TRUNCATE_LONG_VALUES).
    assert len(ref["run"]["params"]["too_long"]) == 6000
    assert ref["long_key"] == {"error": "INVALID_PARAMETER_VALUE"}
    assert ref["search"]["metrics.`metric/with.slash` = 1.5"] == {"ok": ["日本語の実行 🚀"]}


# ------------------------------------------------------------------------ search experiments


def scenario_nul_byte(ctx: Ctx) -> dict[str, Any]:
    """A NUL character in a param/tag value: MLflow on SQLite stores it as is."""
    c = ctx.client
    exp_id = ctx.register_experiment(c.create_experiment(ctx.name("nul")), "nul")
    run_id = ctx.register_run(c.create_run(exp_id, run_name="nul"))
    c.log_param(run_id, "ok", "1")
    out = {
        "param": capture(lambda: c.log_param(run_id, "p", "a\x00b")),
        "tag": capture(lambda: c.set_tag(run_id, "t", "a\x00b")),
        "batch": capture(lambda: c.log_batch(run_id, params=[Param("q", "a\x00b")])),
    }
    out["run"] = ctx.norm_run(c.get_run(run_id))
    return out


def test_nul_byte_in_values(tether_server: TetherServer, reference_server: ReferenceServer) -> None:
    expected = reference_result(scenario_nul_byte, reference_server)
    got = run_scenario(scenario_nul_byte, tether_server.url)
    assert expected["param"] == {"ok": None}
    assert expected["run"]["params"]["p"] == "a\x00b"
    for op in ("param", "tag", "batch"):
        # Storing the value as MLflow does is right; refusing it as bad input is acceptable
        # (PostgreSQL text cannot hold NUL) -- a 500 with a database traceback is not.
        assert got[op] in ({"ok": None}, {"error": "INVALID_PARAMETER_VALUE"}), (op, got)
        key = {"param": "p", "tag": "t", "batch": "q"}[op]
        stored = got["run"]["tags" if op == "tag" else "params"]
        if got[op] == {"ok": None}:
            assert stored.get(key) == "a\x00b", (op, got["run"])
        else:
            assert key not in stored, (op, got["run"])  # refused: nothing half-written
    assert got["run"]["params"]["ok"] == "1"


def test_connection_survives_a_failed_request(tether_server: TetherServer) -> None:
    """A client reusing its keep-alive connection after an error reply must not be reset.

    Any failing request would do; a NUL in a value is refused (PostgreSQL text cannot hold
    it). The unexpected-exception path is covered in tests/api/test_errors.py.
    """
    with tether_server.rest() as rest:
        exp_id = rest.post("experiments/create", {"name": unique_name()}).json["experiment_id"]
        created = rest.post("runs/create", {"experiment_id": exp_id})
        run_id = created.json["run"]["info"]["run_id"]
        failing = rest.post("runs/log-parameter", {"run_id": run_id, "key": "p", "value": "a\x00b"})
        try:
            after = rest.get("runs/get", {"run_id": run_id})  # same pooled connection
            next_request = f"{after.status}"
        except httpx.TransportError as exc:
            next_request = f"{type(exc).__name__}: {exc}"
    assert next_request == "200", (
        f"after POST runs/log-parameter answered {failing.status} {failing.text!r}, the next "
        f"request on the same connection got {next_request}"
    )
    assert failing.status in (200, 400), (failing.status, failing.text)


def scenario_search_experiments(ctx: Ctx) -> dict[str, Any]:
    c = ctx.client
    teams = {"a": "red", "b": "blue", "c": "red", "d": None, "e": "green", "f": "red"}
    for suffix, team in teams.items():
        tags = {"team": team} if team else {}
        ctx.register_experiment(c.create_experiment(ctx.name(suffix), tags=tags), suffix)
        time.sleep(0.003)  # distinct creation times: the default order is by creation time
    by_name = {s: e for e, s in ctx.exp_labels.items()}
    c.delete_experiment(by_name["f"])
    like = f"name LIKE '{ctx.prefix}-%'"
    queries: list[tuple[str, list[str] | None, int]] = [
        (like, None, ViewType.ACTIVE_ONLY),
        (like, ["name DESC"], ViewType.ACTIVE_ONLY),
        (like, ["name ASC"], ViewType.ALL),
        (like, ["name"], ViewType.DELETED_ONLY),
        (like, ["experiment_id DESC"], ViewType.ACTIVE_ONLY),
        (like, ["creation_time ASC"], ViewType.ACTIVE_ONLY),
        (like, ["last_update_time DESC", "name ASC"], ViewType.ALL),
        (f"name = '{ctx.prefix}-b'", None, ViewType.ACTIVE_ONLY),
        (f"name != '{ctx.prefix}-b' AND {like}", ["name"], ViewType.ACTIVE_ONLY),
        (f"name ILIKE '{ctx.prefix.upper()}-%'", ["name"], ViewType.ACTIVE_ONLY),
        (f"{like} AND tags.team = 'red'", ["name ASC"], ViewType.ACTIVE_ONLY),
        (f"{like} AND tags.team = 'red'", ["name ASC"], ViewType.ALL),
        (f"{like} AND tags.team != 'red'", ["name ASC"], ViewType.ACTIVE_ONLY),
        (f"{like} AND tags.team LIKE 'r%'", ["name DESC"], ViewType.ACTIVE_ONLY),
        (f"{like} AND tags.`team` ILIKE '%E%'", ["name"], ViewType.ACTIVE_ONLY),
        (f"{like} AND tags.team IN ('blue', 'green')", ["name"], ViewType.ACTIVE_ONLY),
    ]

    def names(exps: Any) -> list[Any]:
        return [[ctx.exp_label(e.experiment_id), e.lifecycle_stage, dict(e.tags)] for e in exps]

    out: dict[str, Any] = {"queries": {}}
    for flt, order, view in queries:
        key = f"{ctx.scrub(flt).replace(ctx.prefix.upper(), '<P>')} || {order} || {view}"
        out["queries"][key] = capture(
            lambda f=flt, o=order, v=view: c.search_experiments(
                view_type=v, filter_string=f, order_by=o
            ),
            names,
        )
    pages: list[Any] = []
    token = None
    for _ in range(10):
        page = c.search_experiments(
            filter_string=like, order_by=["name ASC"], max_results=2, page_token=token
        )
        pages.append(names(page))
        token = page.token
        if not token:
            break
    out["pages"] = pages
    out["fluent"] = [
        ctx.exp_label(e.experiment_id)
        for e in mlflow.search_experiments(filter_string=like, order_by=["name DESC"])
    ]
    out["default_experiment"] = [
        (e.experiment_id, e.name)
        for e in c.search_experiments(filter_string="name = 'Default'", view_type=ViewType.ALL)
    ]
    return out


def test_search_experiments(tether_server: TetherServer, reference_server: ReferenceServer) -> None:
    _, ref = compare(scenario_search_experiments, tether_server, reference_server)
    first = next(iter(ref["queries"].values()))
    assert [e[0] for e in first["ok"]] == ["e", "d", "c", "b", "a"]
    assert [[e[0] for e in p] for p in ref["pages"]] == [["a", "b"], ["c", "d"], ["e"]]
    assert ref["default_experiment"] == [("0", "Default")]


# --------------------------------------------------------------------- delete and restore


def scenario_delete_restore(ctx: Ctx) -> dict[str, Any]:
    c = ctx.client
    name = ctx.name("dr")
    exp_id = ctx.register_experiment(c.create_experiment(name), "dr")
    ids = {}
    for i, run_name in enumerate(["a", "b", "c"]):
        run = c.create_run(exp_id, start_time=BASE_TS + i, run_name=run_name)
        ids[run_name] = ctx.register_run(run)
        c.log_metric(ids[run_name], "m", float(i), timestamp=BASE_TS, step=0)

    def state() -> dict[str, Any]:
        views = {
            "active": ViewType.ACTIVE_ONLY,
            "deleted": ViewType.DELETED_ONLY,
            "all": ViewType.ALL,
        }
        return {
            "search": {
                k: ctx.names(c.search_runs([exp_id], run_view_type=v)) for k, v in views.items()
            },
            "search_filtered_deleted": ctx.names(
                c.search_runs([exp_id], "metrics.m >= 1", run_view_type=ViewType.DELETED_ONLY)
            ),
            "lifecycle": {k: c.get_run(v).info.lifecycle_stage for k, v in ids.items()},
            "experiment": ctx.norm_experiment(c.get_experiment(exp_id)),
            "by_name": ctx.norm_experiment(c.get_experiment_by_name(name)),
        }

    out: dict[str, Any] = {"initial": state()}
    c.delete_run(ids["b"])
    out["deleted_b"] = state()
    out["delete_b_again"] = capture(lambda: c.delete_run(ids["b"]))
    out["metrics_of_deleted_run"] = ctx.norm_run(c.get_run(ids["b"]))["metrics"]
    c.restore_run(ids["b"])
    out["restored_b"] = state()
    out["restore_active_run"] = capture(lambda: c.restore_run(ids["c"]))
    c.delete_run(ids["a"])
    c.delete_experiment(exp_id)
    out["deleted_experiment"] = state()
    out["deleted_experiment_search"] = [
        ctx.exp_label(e.experiment_id)
        for e in c.search_experiments(
            view_type=ViewType.DELETED_ONLY, filter_string=f"name = '{name}'"
        )
    ]
    out["create_run_in_deleted"] = capture(lambda: c.create_run(exp_id, run_name="late"))
    out["set_deleted_experiment"] = capture(lambda: mlflow.set_experiment(name))
    out["recreate_same_name"] = capture(lambda: c.create_experiment(name))
    out["rename_deleted"] = capture(lambda: c.rename_experiment(exp_id, ctx.name("dr-new")))
    out["delete_experiment_again"] = capture(lambda: c.delete_experiment(exp_id))
    c.restore_experiment(exp_id)
    out["restored_experiment"] = state()
    out["restore_active_experiment"] = capture(lambda: c.restore_experiment(exp_id))
    out["set_restored"] = capture(lambda: mlflow.set_experiment(name), ctx.norm_experiment)
    return out


def test_delete_restore(tether_server: TetherServer, reference_server: ReferenceServer) -> None:
    got, ref = compare(
        scenario_delete_restore, tether_server, reference_server, any_error_for=("rename_deleted",)
    )
    assert ref["deleted_b"]["search"]["deleted"] == ["b"]
    assert ref["deleted_b"]["search"]["active"] == ["c", "a"]
    assert ref["restored_b"]["lifecycle"]["b"] == "active"
    assert ref["deleted_experiment"]["experiment"]["lifecycle_stage"] == "deleted"
    assert ref["recreate_same_name"] == {"error": "RESOURCE_ALREADY_EXISTS"}
    assert "error" in ref["rename_deleted"] and "error" in got["rename_deleted"]


# ----------------------------------------------------------------------------- datasets


def scenario_log_input(ctx: Ctx) -> dict[str, Any]:
    c = ctx.client
    exp = mlflow.set_experiment(ctx.name("data"))
    ctx.register_experiment(exp.experiment_id, "data")
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.0, 1.0, 0.0], "name": ["a", "b", "c"]})
    train = mlflow.data.from_pandas(df, name="train-set", targets="y")
    evals = mlflow.data.from_pandas(df.head(2), name="eval-set")
    with mlflow.start_run(run_name="with-data") as run:
        ctx.register_run(run)
        mlflow.log_input(train, context="training", tags={"split": "train"})
        mlflow.log_input(evals, context="eval")
        mlflow.log_input(train, context="training", tags={"split": "train"})  # again: no dup
        mlflow.log_metric("loss", 0.4, step=0, timestamp=BASE_TS)
    with mlflow.start_run(run_name="without-data") as other:
        ctx.register_run(other)
    out: dict[str, Any] = {
        "run": ctx.norm_run(c.get_run(run.info.run_id)),
        "other": ctx.norm_run(c.get_run(other.info.run_id)),
        "digest": train.digest,
    }
    filters = [
        "datasets.name = 'train-set'",
        "datasets.context = 'eval'",
        f"datasets.digest = '{train.digest}'",
        "datasets.name LIKE '%set'",
        "datasets.name = 'nope'",
    ]
    out["search"] = {
        f: capture(lambda f=f: c.search_runs([exp.experiment_id], f), ctx.names) for f in filters
    }
    return out


def test_log_input(tether_server: TetherServer, reference_server: ReferenceServer) -> None:
    _, ref = compare(scenario_log_input, tether_server, reference_server)
    inputs = ref["run"]["inputs"]
    assert [d["name"] for d in inputs] == ["eval-set", "train-set"]
    assert ("mlflow.data.context", "training") in [tuple(t) for t in inputs[1]["tags"]]
    assert ref["other"]["inputs"] == []


# ----------------------------------------------------------------------------- log_batch


def scenario_log_batch(ctx: Ctx) -> dict[str, Any]:
    c = ctx.client
    exp_id = ctx.register_experiment(c.create_experiment(ctx.name("batch")), "batch")
    run_id = ctx.register_run(c.create_run(exp_id, run_name="b"))
    out: dict[str, Any] = {}
    c.log_batch(
        run_id,
        metrics=[
            Metric("m", 1.0, BASE_TS, 0),
            Metric("m", 2.0, BASE_TS + 1, 1),
            Metric("n", 3.0, BASE_TS, 0),
        ],
        params=[Param("p", "1"), Param("q", "two")],
        tags=[RunTag("t", "a"), RunTag("u", "u")],
    )
    c.log_batch(run_id, tags=[RunTag("t", "b")], params=[Param("p", "1")])  # same value: fine
    c.log_batch(run_id, metrics=[], params=[], tags=[])
    c.log_batch(run_id, params=[Param(f"k{i:03d}", str(i)) for i in range(100)])
    out["same_tag_twice_in_batch"] = capture(
        lambda: c.log_batch(run_id, tags=[RunTag("w", "1"), RunTag("w", "2")])
    )
    out["same_param_twice_same_value"] = capture(
        lambda: c.log_batch(run_id, params=[Param("z", "1"), Param("z", "1")])
    )
    out["run"] = ctx.norm_run(c.get_run(run_id))
    out["m_history"] = ctx.history(run_id, "m")
    c.delete_tag(run_id, "u")
    out["delete_missing_tag"] = capture(lambda: c.delete_tag(run_id, "u"))
    out["tags_after_delete"] = ctx.scrub(dict(c.get_run(run_id).data.tags))
    return out


def test_log_batch(tether_server: TetherServer, reference_server: ReferenceServer) -> None:
    _, ref = compare(scenario_log_batch, tether_server, reference_server)
    assert ref["run"]["tags"]["t"] == "b"
    assert ref["run"]["params"]["q"] == "two" and ref["run"]["params"]["k099"] == "99"
    assert ref["run"]["metrics"] == {"m": 2.0, "n": 3.0}
    assert "u" not in ref["tags_after_delete"]


# ------------------------------------------------------------------ run rename, exp tags


def scenario_rename_run(ctx: Ctx) -> dict[str, Any]:
    c = ctx.client
    exp_id = ctx.register_experiment(c.create_experiment(ctx.name("rename")), "rename")
    run = c.create_run(exp_id, run_name="before")
    run_id = ctx.register_run(run, "the-run")
    out: dict[str, Any] = {"created": ctx.norm_run(c.get_run(run_id))}
    c.update_run(run_id, name="after")
    out["after_update"] = ctx.norm_run(c.get_run(run_id))
    c.set_tag(run_id, "mlflow.runName", "tagged")
    out["after_tag"] = ctx.norm_run(c.get_run(run_id))
    out["search_new_name"] = ctx.names(c.search_runs([exp_id], "attributes.run_name = 'tagged'"))
    out["search_old_name"] = ctx.names(c.search_runs([exp_id], "attributes.run_name = 'before'"))
    with mlflow.start_run(run_id=run_id) as resumed:
        out["resumed_name"] = resumed.info.run_name
        mlflow.log_metric("after_resume", 1.0, step=0, timestamp=BASE_TS)
    out["after_resume"] = ctx.norm_run(c.get_run(run_id))
    c.update_run(run_id, status="KILLED")
    out["after_status_update"] = ctx.norm_run(c.get_run(run_id))
    c.set_terminated(run_id, status="FAILED", end_time=BASE_TS * 2)
    terminated = c.get_run(run_id)
    out["terminated"] = ctx.norm_run(terminated)
    out["end_time"] = terminated.info.end_time
    named = c.create_run(exp_id, tags={"mlflow.runName": "from-tag"})
    ctx.register_run(named, "named-by-tag")
    out["named_by_tag"] = ctx.norm_run(c.get_run(named.info.run_id))
    return out


def test_rename_run(tether_server: TetherServer, reference_server: ReferenceServer) -> None:
    _, ref = compare(scenario_rename_run, tether_server, reference_server)
    assert ref["after_update"]["run_name"] == "after"
    assert ref["after_update"]["tags"]["mlflow.runName"] == "after"
    assert ref["after_tag"]["run_name"] == "tagged"
    assert ref["search_new_name"] == ["the-run"] and ref["search_old_name"] == []
    assert ref["end_time"] == BASE_TS * 2
    assert ref["named_by_tag"]["run_name"] == "from-tag"


def scenario_experiment_tags(ctx: Ctx) -> dict[str, Any]:
    c = ctx.client
    name = ctx.name("tags")
    exp_id = ctx.register_experiment(c.create_experiment(name, tags={"owner": "alice"}), "tags")
    out: dict[str, Any] = {"created": ctx.norm_experiment(c.get_experiment(exp_id))}
    c.set_experiment_tag(exp_id, "team", "red")
    mlflow.set_experiment(experiment_id=exp_id)
    mlflow.set_experiment_tag("fluent", "yes")
    mlflow.set_experiment_tags({"a": "1", "b": "2"})
    c.set_experiment_tag(exp_id, "team", "blue")
    c.delete_experiment_tag(exp_id, "a")
    out["tagged"] = ctx.norm_experiment(c.get_experiment(exp_id))
    out["delete_missing_tag"] = capture(lambda: c.delete_experiment_tag(exp_id, "a"))
    out["search_by_tag"] = [
        ctx.exp_label(e.experiment_id)
        for e in c.search_experiments(
            filter_string=f"name LIKE '{ctx.prefix}-%' AND tags.team = 'blue'"
        )
    ]
    new_name = ctx.name("tags-renamed")
    c.rename_experiment(exp_id, new_name)
    out["renamed"] = ctx.norm_experiment(c.get_experiment(exp_id))
    out["old_name_lookup"] = ctx.norm_experiment(c.get_experiment_by_name(name))
    out["new_name_lookup"] = ctx.norm_experiment(c.get_experiment_by_name(new_name))
    other = ctx.register_experiment(c.create_experiment(ctx.name("tags-other")), "other")
    out["rename_to_taken"] = capture(lambda: c.rename_experiment(other, new_name))
    out["other_after"] = ctx.norm_experiment(c.get_experiment(other))
    return out


def test_experiment_tags(tether_server: TetherServer, reference_server: ReferenceServer) -> None:
    got, ref = compare(
        scenario_experiment_tags,
        tether_server,
        reference_server,
        any_error_for=("rename_to_taken",),
    )
    assert ref["tagged"]["tags"] == {"owner": "alice", "team": "blue", "fluent": "yes", "b": "2"}
    assert ref["renamed"]["name"] == "<P>-tags-renamed"
    assert ref["old_name_lookup"] is None
    assert ref["search_by_tag"] == ["tags"]
    # MLflow answers 400 BAD_REQUEST (its SQL unique constraint); a client error is what counts.
    assert got["rename_to_taken"].get("error") in (
        "BAD_REQUEST",
        "RESOURCE_ALREADY_EXISTS",
        "INVALID_PARAMETER_VALUE",
    ), got["rename_to_taken"]


# ===================================================================== bad input (part 3)


def scenario_errors_param_conflict(ctx: Ctx) -> dict[str, Any]:
    c = ctx.client
    exp = mlflow.set_experiment(ctx.name("conflict"))
    ctx.register_experiment(exp.experiment_id, "conflict")
    run = c.create_run(exp.experiment_id, run_name="p")
    run_id = ctx.register_run(run)
    c.log_param(run_id, "lr", "0.1")
    c.log_metric(run_id, "loss", 1.0, timestamp=BASE_TS, step=0)
    before = ctx.norm_run(c.get_run(run_id))
    out: dict[str, Any] = {
        "log_param_other_value": capture(lambda: c.log_param(run_id, "lr", "0.2")),
        "log_param_same_value": capture(lambda: c.log_param(run_id, "lr", "0.1")),
        "log_batch_conflict": capture(
            lambda: c.log_batch(
                run_id,
                metrics=[Metric("loss", 0.5, BASE_TS + 1, 1)],
                params=[Param("new", "x"), Param("lr", "0.3")],
                tags=[RunTag("t", "v")],
            )
        ),
        "log_batch_dup_keys_in_batch": capture(
            lambda: c.log_batch(run_id, params=[Param("d", "1"), Param("d", "2")])
        ),
    }

    def fluent_conflict() -> None:
        with mlflow.start_run(run_id=run_id):
            mlflow.log_param("lr", 0.9)

    out["fluent_log_param"] = capture(fluent_conflict)
    after = ctx.norm_run(c.get_run(run_id))
    out["params_unchanged"] = after["params"].get("lr") == before["params"]["lr"]
    out["after"] = after
    out["loss_history"] = ctx.history(run_id, "loss")
    return out


def test_errors_param_conflict(
    tether_server: TetherServer, reference_server: ReferenceServer
) -> None:
    got, ref = compare(scenario_errors_param_conflict, tether_server, reference_server)
    assert ref["log_param_other_value"] == {"error": "INVALID_PARAMETER_VALUE"}
    assert ref["fluent_log_param"] == {"error": "INVALID_PARAMETER_VALUE"}
    assert ref["log_param_same_value"] == {"ok": None}
    assert ref["params_unchanged"] and ref["after"]["params"]["lr"] == "0.1"
    assert got["after"]["params"]["lr"] == "0.1"


def scenario_errors_deleted_run(ctx: Ctx) -> dict[str, Any]:
    c = ctx.client
    exp_id = ctx.register_experiment(c.create_experiment(ctx.name("deleted-run")), "deleted")
    run_id = ctx.register_run(c.create_run(exp_id, run_name="gone"))
    c.log_param(run_id, "p", "1")
    c.log_metric(run_id, "m", 1.0, timestamp=BASE_TS, step=0)
    c.set_tag(run_id, "t", "1")
    before = ctx.norm_run(c.get_run(run_id))
    c.delete_run(run_id)
    out: dict[str, Any] = {
        "log_metric": capture(lambda: c.log_metric(run_id, "m", 2.0, timestamp=BASE_TS, step=1)),
        "log_param": capture(lambda: c.log_param(run_id, "q", "2")),
        "set_tag": capture(lambda: c.set_tag(run_id, "t", "2")),
        "delete_tag": capture(lambda: c.delete_tag(run_id, "t")),
        "log_batch": capture(
            lambda: c.log_batch(
                run_id, metrics=[Metric("m", 3.0, BASE_TS, 2)], params=[Param("r", "3")]
            )
        ),
        "rename": capture(lambda: c.update_run(run_id, name="renamed")),
        "terminate": capture(lambda: c.set_terminated(run_id, status="FINISHED")),
        "get_run": capture(lambda: c.get_run(run_id), lambda r: r.info.lifecycle_stage),
    }
    c.restore_run(run_id)
    after = ctx.norm_run(c.get_run(run_id))
    out["unchanged"] = after == before
    out["after"] = after
    out["history"] = ctx.history(run_id, "m")
    return out


def test_errors_deleted_run(tether_server: TetherServer, reference_server: ReferenceServer) -> None:
    got, ref = compare(scenario_errors_deleted_run, tether_server, reference_server)
    for op in ("log_metric", "log_param", "set_tag", "log_batch"):
        assert ref[op] == {"error": "INVALID_PARAMETER_VALUE"}, op
    assert ref["unchanged"] and ref["history"] == [[0, 1.0, BASE_TS]]
    assert got["unchanged"]


BAD_RUN_FILTERS = [
    "metrics.loss <<< 1",
    "foo.bar = 1",
    "params.lr = 0.1",
    "metrics.loss = 'abc'",
    "attributes.status = FINISHED",
    "tags.x LIKE",
    "metrics.loss < 0.5 OR params.lr = '0.1'",
    "attributes.nonexistent = 'x'",
    "metrics.loss",
    "params.lr IN '0.1'",
    "attributes.start_time = 'yesterday'",
]
BAD_RUN_ORDERS = [
    ["metrics.loss SIDEWAYS"],
    ["foo.bar"],
    ["attributes.nonexistent"],
    ["metrics.loss ASC DESC"],
]
BAD_EXPERIMENT_FILTERS = [
    "name ~ 'x'",
    "tags.team = red",
    "foo = 'x'",
    "name LIKE",
]


def scenario_errors_bad_search(ctx: Ctx) -> dict[str, Any]:
    c = ctx.client
    exp_id, _ = _search_setup(ctx, "bad-search")
    before = ctx.names(c.search_runs([exp_id], "metrics.loss < 0.5"))
    out: dict[str, Any] = {
        "filters": {
            f: capture(lambda f=f: c.search_runs([exp_id], f), ctx.names) for f in BAD_RUN_FILTERS
        },
        "orders": {
            " | ".join(o): capture(lambda o=o: c.search_runs([exp_id], order_by=o), ctx.names)
            for o in BAD_RUN_ORDERS
        },
        "experiment_filters": {
            f: capture(lambda f=f: c.search_experiments(filter_string=f), len)
            for f in BAD_EXPERIMENT_FILTERS
        },
        "experiment_order": capture(lambda: c.search_experiments(order_by=["tags.team DESC"]), len),
        "max_results_zero": capture(lambda: c.search_runs([exp_id], max_results=0), ctx.names),
        "max_results_too_big": capture(
            lambda: c.search_runs([exp_id], max_results=50_001), ctx.names
        ),
        "bad_page_token": capture(
            lambda: c.search_runs([exp_id], page_token="not-a-token"), ctx.names
        ),
        "missing_experiment": capture(lambda: c.search_runs(["987654321"]), ctx.names),
        "pandas_bad_filter": capture(lambda: mlflow.search_runs([exp_id], "metrics.loss <<< 1")),
    }
    after = ctx.names(c.search_runs([exp_id], "metrics.loss < 0.5"))
    out["search_still_works"] = after == before
    out["after"] = after
    return out


def test_errors_bad_search(tether_server: TetherServer, reference_server: ReferenceServer) -> None:
    got, ref = compare(scenario_errors_bad_search, tether_server, reference_server)
    for flt in ("metrics.loss <<< 1", "params.lr = 0.1", "foo.bar = 1"):
        assert ref["filters"][flt] == {"error": "INVALID_PARAMETER_VALUE"}, flt
    assert ref["orders"]["metrics.loss SIDEWAYS"] == {"error": "INVALID_PARAMETER_VALUE"}
    assert ref["search_still_works"] and ref["after"] == ["R5", "r3", "r2"]
    assert got["after"] == ["R5", "r3", "r2"]


def scenario_errors_missing(ctx: Ctx) -> dict[str, Any]:
    c = ctx.client
    name = ctx.name("exists")
    exp_id = ctx.register_experiment(c.create_experiment(name), "exists")
    ghost = uuid.uuid4().hex
    return {
        "get_run": capture(lambda: c.get_run(ghost)),
        "log_metric": capture(lambda: c.log_metric(ghost, "m", 1.0)),
        "log_param": capture(lambda: c.log_param(ghost, "p", "1")),
        "set_tag": capture(lambda: c.set_tag(ghost, "t", "1")),
        "delete_run": capture(lambda: c.delete_run(ghost)),
        "history": capture(lambda: c.get_metric_history(ghost, "m"), list),
        "get_experiment": capture(lambda: c.get_experiment("987654321")),
        "get_experiment_by_name": capture(
            lambda: c.get_experiment_by_name(ctx.name("nope")), ctx.norm_experiment
        ),
        "create_duplicate": capture(lambda: c.create_experiment(name)),
        "create_run_missing_experiment": capture(lambda: c.create_run("987654321")),
        "set_experiment_missing_id": capture(
            lambda: mlflow.set_experiment(experiment_id="987654321")
        ),
        "experiment_still_there": ctx.norm_experiment(c.get_experiment(exp_id)),
        "runs_in_experiment": ctx.names(c.search_runs([exp_id])),
    }


def test_errors_missing_resources(
    tether_server: TetherServer, reference_server: ReferenceServer
) -> None:
    _, ref = compare(scenario_errors_missing, tether_server, reference_server)
    assert ref["get_run"] == {"error": "RESOURCE_DOES_NOT_EXIST"}
    assert ref["create_duplicate"] == {"error": "RESOURCE_ALREADY_EXISTS"}
    assert ref["get_experiment_by_name"] == {"ok": None}
    assert ref["runs_in_experiment"] == []
