"""End to end: the MLflow 2.x client (separate venv, `mlflow2` fixture) against Tether.

One client script does the core user flow (set_experiment, a logged run with nested runs,
search with filters and ordering, metric history, bad input) and returns plain data with ids
and timestamps replaced by run names. It runs once on the reference `mlflow server` (per
session) and once per Tether backend (per module); each test compares one section of it.
A section that raised records the exception instead, so one broken feature fails one test.
"""

from __future__ import annotations

from typing import Any

import pytest

from support import Mlflow2, ReferenceServer, TetherServer, unique_name
from support.compare import differences

BASE_TS = 1_700_000_000_000

SNIPPET = r"""
import math, traceback
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

BASE_TS = __BASE_TS__
PREFIX = __PREFIX__
labels = {}  # run id -> run name, to replace ids in the output


def scrub(obj):
    if isinstance(obj, str):
        return labels.get(obj, obj).replace(PREFIX, "<P>")
    if isinstance(obj, dict):
        return {scrub(k): scrub(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub(v) for v in obj]
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return repr(obj)
    return obj


def register(run):
    labels[run.info.run_id] = run.info.run_name
    return run.info.run_id


def norm_run(run):
    info = run.info
    return {
        "run": labels.get(info.run_id, "<unknown>"),
        "run_name": info.run_name,
        "status": info.status,
        "lifecycle_stage": info.lifecycle_stage,
        "has_end_time": info.end_time is not None,
        "metrics": scrub(dict(run.data.metrics)),
        "params": dict(run.data.params),
        "tags": scrub({k: v for k, v in run.data.tags.items() if k != "mlflow.source.name"}),
    }


def names(runs):
    return [labels.get(r.info.run_id, "<unknown>") for r in runs]


def capture(fn, normalize=None):
    try:
        value = fn()
    except MlflowException as exc:
        return {"error": exc.error_code}
    return {"ok": normalize(value) if normalize else None}


def history(run_id, key):
    return [[m.step, m.value, m.timestamp] for m in client.get_metric_history(run_id, key)]


sections = {}


def section(fn):
    try:
        sections[fn.__name__] = fn()
    except Exception:
        sections[fn.__name__] = {"exception": traceback.format_exc()[-3000:]}
    return fn


state = {}


@section
def flow():
    exp = mlflow.set_experiment(PREFIX + "-flow")
    state["exp_id"] = exp.experiment_id
    again = mlflow.set_experiment(PREFIX + "-flow")
    run_ids = []
    with mlflow.start_run(run_name="parent") as parent:
        run_ids.append(register(parent))
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"epochs": 3, "optimizer": "sgd"})
        for epoch in range(3):
            ts = BASE_TS + epoch * 1000
            mlflow.log_metric("loss", 1.0 / (epoch + 1), step=epoch, timestamp=ts)
            mlflow.log_metrics({"acc": 0.6 + epoch / 10}, step=epoch, timestamp=ts)
        mlflow.set_tag("stage", "dev")
        mlflow.set_tags({"x": "xyz", "team": "m2"})
        for i, status in enumerate(["FINISHED", "FAILED"]):
            child = mlflow.start_run(run_name="child-%d" % i, nested=True)
            run_ids.append(register(child))
            mlflow.log_param("fold", i)
            mlflow.log_metric("loss", 0.1 * (i + 1), step=0, timestamp=BASE_TS)
            mlflow.set_tag("x", "child-y")
            mlflow.end_run(status=status)
        active = labels.get(mlflow.active_run().info.run_id)
    state["run_ids"] = run_ids
    return {
        "same_experiment": again.experiment_id == exp.experiment_id,
        "experiment": [scrub(exp.name), exp.lifecycle_stage],
        "active_after_children": active,
        "no_active_after_end": mlflow.active_run() is None,
        "runs": [norm_run(client.get_run(r)) for r in run_ids],
    }


@section
def search():
    exp_id = state["exp_id"]
    filters = [
        "",
        "metrics.loss < 0.5",
        "metrics.loss >= 0.2",
        "params.lr = '0.1'",
        "params.fold = '1'",
        "tags.x LIKE '%y%'",
        "tags.x = 'xyz'",
        "attributes.status = 'FINISHED'",
        "attributes.status != 'FINISHED'",
        "attributes.run_name = 'child-1'",
        "run_name LIKE 'child%'",
        "tags.mlflow.parentRunId = '{parent}'",
        "metrics.loss < 0.5 AND tags.x LIKE 'child%'",
    ]
    orders = [
        ["metrics.loss ASC"],
        ["metrics.loss DESC"],
        ["params.fold DESC", "attributes.run_name ASC"],
        ["attributes.run_name DESC"],
        ["tags.x ASC", "run_name DESC"],
        ["attributes.status", "metrics.acc DESC"],
    ]
    out = {"filters": {}, "orders": {}}
    for key in filters:
        f = key.replace("{parent}", state["run_ids"][0])
        out["filters"][key] = capture(
            lambda f=f: client.search_runs([exp_id], f, order_by=["attributes.run_name ASC"]),
            names,
        )
    for o in orders:
        out["orders"][" | ".join(o)] = capture(
            lambda o=o: client.search_runs([exp_id], order_by=o), names
        )
    out["combined"] = capture(
        lambda: client.search_runs(
            [exp_id], "metrics.loss <= 0.5", order_by=["metrics.loss DESC"], max_results=10
        ),
        names,
    )
    pages, token = [], None
    for _ in range(10):
        page = client.search_runs(
            [exp_id], order_by=["attributes.run_name ASC"], max_results=2, page_token=token
        )
        pages.append(names(page))
        token = page.token
        if not token:
            break
    out["pages"] = pages
    out["deleted_view"] = {}
    client.delete_run(state["run_ids"][2])
    for label, view in [("active", ViewType.ACTIVE_ONLY), ("deleted", ViewType.DELETED_ONLY),
                        ("all", ViewType.ALL)]:
        out["deleted_view"][label] = names(
            client.search_runs([exp_id], run_view_type=view, order_by=["run_name ASC"])
        )
    client.restore_run(state["run_ids"][2])
    return out


@section
def metric_history():
    parent = state["run_ids"][0]
    run = client.create_run(state["exp_id"], run_name="long")
    run_id = register(run)
    points = [Metric("curve", i * 0.5, BASE_TS + i, i) for i in range(1200)]
    client.log_batch(run_id, metrics=points[:1000])
    client.log_batch(run_id, metrics=points[1000:])
    client.log_metric(run_id, "curve", -1.0, timestamp=BASE_TS - 5, step=2000)
    curve = history(run_id, "curve")
    return {
        "parent_loss": history(parent, "loss"),
        "parent_acc": history(parent, "acc"),
        "curve_len": len(curve),
        "curve": curve,
        "latest": client.get_run(run_id).data.metrics,
        "missing": history(run_id, "nope"),
    }


@section
def bad_input():
    run = client.create_run(state["exp_id"], run_name="bad")
    run_id = register(run)
    client.log_param(run_id, "lr", "0.1")
    client.log_metric(run_id, "m", 1.0, timestamp=BASE_TS, step=0)
    before = norm_run(client.get_run(run_id))
    exp_ids = [state["exp_id"]]
    out = {
        "param_conflict": capture(lambda: client.log_param(run_id, "lr", "0.2")),
        "param_same": capture(lambda: client.log_param(run_id, "lr", "0.1")),
        "batch_conflict": capture(lambda: client.log_batch(
            run_id, metrics=[Metric("m", 2.0, BASE_TS, 1)], params=[Param("lr", "0.3")])),
        "bad_filter": capture(lambda: client.search_runs(exp_ids, "metrics.m <<< 1")),
        "unquoted_filter": capture(lambda: client.search_runs(exp_ids, "params.lr = 0.1")),
        "bad_order": capture(
            lambda: client.search_runs(exp_ids, order_by=["metrics.m SIDEWAYS"])),
    }
    out["unchanged_after_conflicts"] = norm_run(client.get_run(run_id)) == before
    client.delete_run(run_id)
    out["deleted_log_metric"] = capture(lambda: client.log_metric(run_id, "m", 3.0, step=2))
    out["deleted_log_param"] = capture(lambda: client.log_param(run_id, "new", "1"))
    out["deleted_set_tag"] = capture(lambda: client.set_tag(run_id, "t", "1"))
    client.restore_run(run_id)
    out["unchanged_after_deleted"] = norm_run(client.get_run(run_id)) == before
    out["after"] = norm_run(client.get_run(run_id))
    out["m_history"] = history(run_id, "m")
    return out


result = {"version": mlflow.__version__, "sections": sections}
"""


def _run(mlflow2: Mlflow2, url: str) -> dict[str, Any]:
    prefix = unique_name("e2e2")
    snippet = SNIPPET.replace("__PREFIX__", repr(prefix)).replace("__BASE_TS__", str(BASE_TS))
    result: dict[str, Any] = mlflow2.run(url, snippet)
    assert result["version"].startswith("2."), result["version"]
    return result["sections"]  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def reference_sections(mlflow2: Mlflow2, reference_server: ReferenceServer) -> dict[str, Any]:
    return _run(mlflow2, reference_server.url)


@pytest.fixture(scope="module")
def tether_sections(mlflow2: Mlflow2, tether_server: TetherServer) -> dict[str, Any]:
    return _run(mlflow2, tether_server.url)


def _section(sections: dict[str, Any], name: str, where: str) -> Any:
    value = sections[name]
    if isinstance(value, dict) and "exception" in value:
        pytest.fail(f"section {name!r} raised against {where}:\n{value['exception']}")
    return value


def _compare(name: str, tether: dict[str, Any], reference: dict[str, Any]) -> tuple[Any, Any]:
    expected = _section(reference, name, "the reference server")
    got = _section(tether, name, "Tether")
    diffs = differences(got, expected)
    assert not diffs, f"{len(diffs)} difference(s) from the reference:\n" + "\n".join(diffs[:40])
    return got, expected


def test_flow(tether_sections: dict[str, Any], reference_sections: dict[str, Any]) -> None:
    _, ref = _compare("flow", tether_sections, reference_sections)
    assert ref["same_experiment"] and ref["no_active_after_end"]
    assert ref["active_after_children"] == "parent"
    runs = {r["run"]: r for r in ref["runs"]}
    assert runs["parent"]["metrics"] == {"loss": pytest.approx(1 / 3), "acc": pytest.approx(0.8)}
    assert runs["parent"]["params"] == {"lr": "0.1", "epochs": "3", "optimizer": "sgd"}
    assert runs["child-1"]["status"] == "FAILED"
    assert runs["child-0"]["tags"]["mlflow.parentRunId"] == "parent"


def test_search(tether_sections: dict[str, Any], reference_sections: dict[str, Any]) -> None:
    _, ref = _compare("search", tether_sections, reference_sections)
    assert ref["filters"]["metrics.loss < 0.5"] == {"ok": ["child-0", "child-1", "parent"]}
    assert ref["orders"]["metrics.loss DESC"] == {"ok": ["parent", "child-1", "child-0"]}
    assert ref["pages"] == [["child-0", "child-1"], ["parent"]]
    assert ref["deleted_view"]["deleted"] == ["child-1"]


def test_metric_history(
    tether_sections: dict[str, Any], reference_sections: dict[str, Any]
) -> None:
    _, ref = _compare("metric_history", tether_sections, reference_sections)
    assert ref["curve_len"] == 1201
    assert ref["parent_loss"][0] == [0, 1.0, BASE_TS]
    assert ref["latest"]["curve"] == -1.0
    assert ref["missing"] == []


def test_bad_input(tether_sections: dict[str, Any], reference_sections: dict[str, Any]) -> None:
    got, ref = _compare("bad_input", tether_sections, reference_sections)
    for key in ("param_conflict", "batch_conflict", "bad_filter", "unquoted_filter"):
        assert ref[key] == {"error": "INVALID_PARAMETER_VALUE"}, key
    assert ref["deleted_log_metric"] == {"error": "INVALID_PARAMETER_VALUE"}
    assert ref["unchanged_after_conflicts"] and ref["unchanged_after_deleted"]
    assert got["after"]["params"] == {"lr": "0.1"}
