"""End to end: MLflow 3 logged models through the installed MLflow 3.x client, in-process,
against Tether (both backends) and the reference `mlflow server`.

Each scenario runs once on the reference server (cached for the session) and once per Tether
backend, and returns plain data with ids, timestamps and locations replaced by labels; the two
results must be equal. A few absolute checks on the reference result keep the comparison from
being vacuous.
"""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Callable
from typing import Any

import mlflow
import mlflow.data
import pandas as pd
import pytest
from mlflow import MlflowClient

from support import ReferenceServer, TetherServer
from support.compare import assert_same, scrub
from support.mlflow3 import capture, once_per_session, tracking_to

pytestmark = [
    pytest.mark.usefixtures("clean_mlflow_client"),
    pytest.mark.filterwarnings(
        "ignore:Starting with pandas version 4.0",
        "ignore:Hint. Inferred schema contains integer column",
        "ignore::UserWarning",
        "ignore::FutureWarning",
        "ignore::DeprecationWarning",
    ),
]

BASE_TS = 1_700_000_000_000
NO_MODEL = "m-" + "0" * 32
HAS_ARTIFACT_PROXY = importlib.util.find_spec("tether.artifacts.endpoints") is not None


class Ctx:
    """A scenario's tracking URI, client, unique prefix and id -> label bookkeeping."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"lm-{uuid.uuid4().hex[:10]}"
        self.client = MlflowClient(tracking_uri=url)
        self.labels: dict[str, str] = {}

    def name(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    def label(self, entity_id: str | None, label: str) -> None:
        if entity_id:
            self.labels[entity_id] = label

    def scrub(self, obj: Any) -> Any:
        return scrub(obj, lambda s: self.labels.get(s, s).replace(self.prefix, "<P>"))

    def model(self, model: Any) -> dict[str, Any]:
        """A LoggedModel as plain data."""
        metrics = sorted(
            (m.key, m.value, m.step, m.dataset_name, m.dataset_digest, self.scrub(m.run_id))
            for m in model.metrics or []
        )
        return {
            "id": self.scrub(model.model_id),
            "name": self.scrub(model.name),
            "experiment": self.scrub(model.experiment_id),
            "status": str(model.status),
            "model_type": model.model_type,
            "source_run": self.scrub(model.source_run_id),
            "tags": self.scrub(dict(model.tags)),
            "params": dict(model.params),
            "metrics": [list(m) for m in metrics],
            "location_ok": model.artifact_location.endswith(f"/models/{model.model_id}/artifacts"),
            "times_ok": model.creation_timestamp > 0
            and model.last_updated_timestamp >= model.creation_timestamp,
        }

    def names(self, models: Any) -> list[str]:
        return [self.scrub(m.name) for m in models]


def run_scenario(scenario: Callable[[Ctx], Any], url: str) -> Any:
    with tracking_to(url):
        return scenario(Ctx(url))


def compare(
    scenario: Callable[[Ctx], Any], tether: TetherServer, reference: ReferenceServer
) -> tuple[Any, Any]:
    expected = once_per_session(scenario, lambda: run_scenario(scenario, reference.url))
    got = run_scenario(scenario, tether.url)
    assert_same(got, expected)
    return got, expected


# ============================================================================== scenarios


def scenario_fluent_models(ctx: Ctx) -> dict[str, Any]:
    out: dict[str, Any] = {}
    exp = mlflow.set_experiment(ctx.name("models"))
    ctx.label(exp.experiment_id, "exp")
    eval_df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    dataset = mlflow.data.from_pandas(eval_df, name="eval", targets="y")
    with mlflow.start_run(run_name="train") as run:
        ctx.label(run.info.run_id, "train")
        ext = mlflow.create_external_model(
            name="ext", model_type="agent", params={"a": 1, "b": "x"}, tags={"team": "ml"}
        )
        ctx.label(ext.model_id, "ext")
        init = mlflow.initialize_logged_model(name="init", model_type="custom", tags={"s": "dev"})
        ctx.label(init.model_id, "init")
        out["last_is_init"] = mlflow.last_logged_model().model_id == init.model_id
        mlflow.log_model_params({"lr": "0.1", "depth": 3}, model_id=init.model_id)
        mlflow.set_logged_model_tags(init.model_id, {"x": "y", "n": 5})
        mlflow.delete_logged_model_tag(init.model_id, "x")
        mlflow.log_metric("acc", 0.9, step=1, timestamp=BASE_TS, model_id=init.model_id)
        mlflow.log_metrics(
            {"loss": 0.1, "f1": 0.8}, step=2, timestamp=BASE_TS + 1, model_id=init.model_id
        )
        mlflow.log_metric(
            "acc", 0.7, step=0, timestamp=BASE_TS, model_id=ext.model_id, dataset=dataset
        )
        mlflow.log_metric("run_only", 1.0, step=0, timestamp=BASE_TS)
        mlflow.finalize_logged_model(init.model_id, "READY")
        pending = mlflow.initialize_logged_model(name="pending")
        ctx.label(pending.model_id, "pending")
    exp_ids = [exp.experiment_id]
    out["models"] = [ctx.model(mlflow.get_logged_model(m.model_id)) for m in (ext, init, pending)]
    out["last_logged"] = ctx.scrub(mlflow.last_logged_model().model_id)

    def search(**kwargs: Any) -> Any:
        return capture(
            lambda: mlflow.search_logged_models(
                experiment_ids=exp_ids, output_format="list", **kwargs
            ),
            ctx.names,
        )

    out["search_all"] = search()
    out["search_metric"] = search(filter_string="metrics.acc > 0.8")
    out["search_param"] = search(filter_string="params.lr = '0.1' AND model_type = 'custom'")
    out["search_tag"] = search(filter_string="tags.team = 'ml'")
    out["search_name_in"] = search(filter_string="name IN ('ext', 'pending')")
    out["search_order"] = search(order_by=[{"field_name": "metrics.acc", "ascending": False}])
    out["search_order_name"] = search(order_by=[{"field_name": "name"}])
    out["search_dataset"] = search(
        datasets=[{"dataset_name": "eval", "dataset_digest": dataset.digest}]
    )
    out["search_dataset_metric"] = search(
        filter_string="metrics.acc > 0.5",
        datasets=[{"dataset_name": "eval", "dataset_digest": dataset.digest}],
    )
    out["search_max_results"] = search(max_results=2)
    out["search_bad_filter"] = search(filter_string="metrics.acc LIKE 'x'")
    out["search_bad_order"] = search(order_by=[{"field_name": "params.lr"}])
    frame = mlflow.search_logged_models(experiment_ids=exp_ids)
    out["pandas"] = {
        "names": sorted(ctx.scrub(list(frame["name"]))),
        "has_columns": {"model_id", "status", "params", "metrics"} <= set(frame.columns),
    }
    # Paging through the client.
    pages: list[list[str]] = []
    token = None
    while True:
        page = ctx.client.search_logged_models(exp_ids, max_results=1, page_token=token)
        pages.append(ctx.names(page))
        token = page.token
        if not token:
            break
    out["pages"] = pages
    got_run = ctx.client.get_run(run.info.run_id)
    out["run_outputs"] = sorted(
        (ctx.scrub(o.model_id), o.step) for o in got_run.outputs.model_outputs
    )
    out["run_model_inputs"] = sorted(ctx.scrub(i.model_id) for i in got_run.inputs.model_inputs)
    out["run_metrics"] = dict(got_run.data.metrics)
    out["history_acc"] = [
        (m.step, m.value) for m in ctx.client.get_metric_history(run.info.run_id, "acc")
    ]
    # Errors through the client.
    out["get_missing"] = capture(lambda: mlflow.get_logged_model(NO_MODEL))
    out["tag_missing"] = capture(lambda: mlflow.set_logged_model_tags(NO_MODEL, {"a": "b"}))
    out["delete_missing_tag"] = capture(lambda: mlflow.delete_logged_model_tag(init.model_id, "q"))
    out["relog_param"] = capture(
        lambda: mlflow.log_model_params({"lr": "0.2"}, model_id=init.model_id)
    )
    ctx.client.delete_logged_model(pending.model_id)
    out["after_delete"] = search()
    out["get_deleted"] = capture(lambda: mlflow.get_logged_model(pending.model_id))
    return out


def test_fluent_models(tether_server: TetherServer, reference_server: ReferenceServer) -> None:
    _, ref = compare(scenario_fluent_models, tether_server, reference_server)
    models = {m["name"]: m for m in ref["models"]}
    assert models["ext"]["status"] == "READY" and models["init"]["status"] == "READY"
    assert models["pending"]["status"] == "PENDING"
    assert models["init"]["params"] == {"lr": "0.1", "depth": "3"}
    assert models["init"]["tags"]["n"] == "5" and "x" not in models["init"]["tags"]
    assert models["init"]["source_run"] == "train"
    assert ref["search_metric"] == {"ok": ["init"]}
    assert ref["search_dataset"] == {"ok": ["ext"]}
    assert ref["pages"] == [["pending"], ["init"], ["ext"]]
    assert ref["get_missing"] == {"error": "RESOURCE_DOES_NOT_EXIST"}
    assert ref["last_is_init"] is True


def scenario_active_model(ctx: Ctx) -> dict[str, Any]:
    """`set_active_model` finds (or creates) a model by name: a search then a create."""
    out: dict[str, Any] = {}
    exp = mlflow.set_experiment(ctx.name("active"))
    ctx.label(exp.experiment_id, "exp")
    first = mlflow.set_active_model(name="agent")
    ctx.label(first.model_id, "agent")
    again = mlflow.set_active_model(name="agent")
    out["same_model"] = first.model_id == again.model_id
    out["active"] = ctx.scrub(mlflow.get_active_model_id())
    with mlflow.start_run() as run:
        ctx.label(run.info.run_id, "run")
        mlflow.log_metric("score", 1.5, step=0, timestamp=BASE_TS, model_id=first.model_id)
    got_run = ctx.client.get_run(run.info.run_id)
    out["run_model_inputs"] = [ctx.scrub(i.model_id) for i in got_run.inputs.model_inputs]
    found = mlflow.search_logged_models(
        experiment_ids=[exp.experiment_id], filter_string="name = 'agent'", output_format="list"
    )
    out["found"] = [ctx.model(m) for m in found]
    return out


def test_active_model(tether_server: TetherServer, reference_server: ReferenceServer) -> None:
    _, ref = compare(scenario_active_model, tether_server, reference_server)
    assert ref["same_model"] is True and len(ref["found"]) == 1
    assert ref["run_model_inputs"] == ["agent"]


def scenario_sklearn_model(ctx: Ctx) -> dict[str, Any]:
    """`mlflow.sklearn.log_model` (artifacts through the proxy), then load and predict."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    out: dict[str, Any] = {}
    exp = mlflow.set_experiment(ctx.name("sklearn"))
    ctx.label(exp.experiment_id, "exp")
    features, target = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(features, target)
    with mlflow.start_run(run_name="fit") as run:
        ctx.label(run.info.run_id, "fit")
        info = mlflow.sklearn.log_model(
            model,
            name="m",
            pip_requirements=["scikit-learn"],
            input_example=features[:2],
            params={"C": 1.0},
        )
        ctx.label(info.model_id, "m")
        mlflow.log_metric("accuracy", 0.97, step=0, timestamp=BASE_TS, model_id=info.model_id)
    out["last_logged"] = ctx.scrub(mlflow.last_logged_model().model_id)
    out["model_uri"] = ctx.scrub(info.model_uri.replace(info.model_id, "m"))
    out["model"] = ctx.model(mlflow.get_logged_model(info.model_id))
    out["artifacts"] = sorted(a.path for a in ctx.client.list_logged_model_artifacts(info.model_id))
    loaded = mlflow.pyfunc.load_model(f"models:/{info.model_id}")
    out["predictions"] = [int(p) for p in loaded.predict(features[::15])]
    out["sklearn_predictions"] = [
        int(p) for p in mlflow.sklearn.load_model(info.model_uri).predict(features[::15])
    ]
    got_run = ctx.client.get_run(run.info.run_id)
    out["run_outputs"] = [(ctx.scrub(o.model_id), o.step) for o in got_run.outputs.model_outputs]
    return out


@pytest.mark.skipif(not HAS_ARTIFACT_PROXY, reason="the artifact proxy is not in this build")
def test_sklearn_model(tether_server: TetherServer, reference_server: ReferenceServer) -> None:
    _, ref = compare(scenario_sklearn_model, tether_server, reference_server)
    assert ref["model"]["status"] == "READY" and ref["model"]["params"] == {"C": "1.0"}
    assert "MLmodel" in ref["artifacts"]
    assert ref["predictions"] == ref["sklearn_predictions"]
    assert len(set(ref["predictions"])) == 3
    assert ref["run_outputs"] == [["m", 0]] or ref["run_outputs"] == [("m", 0)]
