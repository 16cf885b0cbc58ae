"""End to end: the model registry through the real MLflow clients, Tether against `mlflow server`.

The 3.x client runs in-process (`MlflowClient`, `mlflow.register_model`, `models:/` URI
resolution); the 2.x client runs in its own venv (`mlflow2` fixture). Each scenario returns
plain data with run ids, timestamps and the unique name prefix replaced by labels; the result on
Tether (once per backend) must equal the reference server's (once per session).

With the 3.x client, `mlflow.register_model("runs:/<run>/model")` lists the run's artifacts
and needs an `MLmodel` there (or else a logged model of that name), so the scenario uploads one
through the artifact proxy first; the 2.x client registers the run's artifact URI unchecked.
"""

from __future__ import annotations

import warnings
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository

from support import Mlflow2, ReferenceServer, TetherServer, unique_name
from support.compare import assert_same, scrub
from support.mlflow3 import capture, once_per_session, tracking_to

pytestmark = [
    pytest.mark.usefixtures("clean_mlflow_client"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),  # stages are deprecated
]


class Labels:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.ids: dict[str, str] = {}

    def scrub(self, obj: Any) -> Any:
        return scrub(obj, self._text)

    def _text(self, value: str) -> str:
        value = value.replace(self.prefix, "<P>")
        for raw, label in self.ids.items():
            value = value.replace(raw, label)
        return value

    def version(self, mv: Any) -> dict[str, Any]:
        return self.scrub(
            {
                "name": mv.name,
                "version": str(mv.version),
                "stage": mv.current_stage,
                "source": mv.source,
                "run_id": mv.run_id,
                "status": mv.status,
                "description": mv.description,
                "tags": dict(mv.tags),
                "aliases": sorted(mv.aliases),
                "timestamps": bool(mv.creation_timestamp)
                and (mv.last_updated_timestamp or 0) >= mv.creation_timestamp,
            }
        )

    def model(self, rm: Any) -> dict[str, Any]:
        return self.scrub(
            {
                "name": rm.name,
                "description": rm.description,
                "tags": dict(rm.tags),
                "aliases": dict(sorted(rm.aliases.items())),
                "latest": sorted(
                    (str(v.version), v.current_stage) for v in rm.latest_versions or []
                ),
            }
        )


# ------------------------------------------------------------------------- MLflow 3.x


def scenario_registry_3x(url: str) -> dict[str, Any]:
    """Run with the fluent API pointed at `url` (`tracking_to`, see `_run_3x`)."""
    client = MlflowClient(tracking_uri=url)
    prefix = unique_name("e2e-reg3")
    labels = Labels(prefix)
    exp_id = client.create_experiment(prefix)
    labels.ids[f"mlflow-artifacts:/{exp_id}/"] = "mlflow-artifacts:/<exp>/"
    run = client.create_run(exp_id)
    run_id = run.info.run_id
    labels.ids[run_id] = "<run>"
    name = f"{prefix}-model"
    out: dict[str, Any] = {}

    out["created"] = labels.model(
        client.create_registered_model(name, tags={"team": "vision"}, description="about")
    )
    mv1 = client.create_model_version(
        name, f"runs:/{run_id}/model", run_id=run_id, tags={"k": "v"}, description="first"
    )
    mv2 = client.create_model_version(name, "s3://bucket/models/two")
    out["versions"] = [labels.version(mv1), labels.version(mv2)]
    out["get_version"] = labels.version(client.get_model_version(name, "1"))

    client.transition_model_version_stage(name, "1", "Production")
    out["archived"] = labels.version(
        client.transition_model_version_stage(
            name, "2", "Production", archive_existing_versions=True
        )
    )
    out["stage_of_1"] = client.get_model_version(name, "1").current_stage
    out["latest_production"] = [
        labels.version(v) for v in client.get_latest_versions(name, stages=["Production"])
    ]
    out["latest_all"] = sorted(str(v.version) for v in client.get_latest_versions(name))

    client.set_registered_model_alias(name, "champion", "2")
    client.set_registered_model_alias(name, "challenger", "1")
    out["by_alias"] = labels.version(client.get_model_version_by_alias(name, "champion"))
    out["model"] = labels.model(client.get_registered_model(name))

    # models:/ URIs as the client resolves them (get-model-version, by-alias, download-uri).
    out["resolved"] = labels.scrub(
        {
            uri: ModelsArtifactRepository.get_underlying_uri(uri)
            for uri in (
                f"models:/{name}/1",
                f"models:/{name}/2",
                f"models:/{name}@champion",
                f"models:/{name}/Production",
                f"models:/{name}/latest",
            )
        }
    )
    out["download_uri"] = labels.scrub(client.get_model_version_download_uri(name, "1"))

    # register_model from a run: creates the model if needed, then a version.
    client.log_text(run_id, "artifact_path: model\nflavors: {}\n", "model/MLmodel")
    registered = mlflow.register_model(f"runs:/{run_id}/model", f"{prefix}-registered")
    again = mlflow.register_model(f"runs:/{run_id}/model", f"{prefix}-registered")
    out["register_model"] = [labels.version(registered), labels.version(again)]

    out["search_models"] = [
        labels.model(m)
        for m in client.search_registered_models(
            filter_string=f"name LIKE '{prefix}%'", order_by=["name DESC"]
        )
    ]
    out["search_models_tag"] = [
        labels.scrub(m.name)
        for m in client.search_registered_models(
            filter_string=f"name LIKE '{prefix}%' AND tags.team = 'vision'"
        )
    ]
    out["search_versions"] = [
        labels.version(v)
        for v in client.search_model_versions(f"name = '{name}'", order_by=["version_number ASC"])
    ]
    out["search_versions_by_run"] = sorted(
        (labels.scrub(v.name), str(v.version))
        for v in client.search_model_versions(f"run_id = '{run_id}'")
    )
    page = client.search_registered_models(filter_string=f"name LIKE '{prefix}%'", max_results=1)
    out["paged"] = [len(page), page.token is not None]
    if page.token:
        rest = client.search_registered_models(
            filter_string=f"name LIKE '{prefix}%'", max_results=1, page_token=page.token
        )
        out["paged"].append(labels.scrub([m.name for m in rest]))

    client.update_registered_model(name, description="updated")
    client.update_model_version(name, "1", description="v1 updated")
    client.set_registered_model_tag(name, "env", "prod")
    client.delete_registered_model_tag(name, "team")
    client.set_model_version_tag(name, "1", "k2", "v2")
    client.delete_model_version_tag(name, "1", "k")
    new_name = f"{prefix}-renamed"
    client.rename_registered_model(name, new_name)
    out["renamed"] = labels.model(client.get_registered_model(new_name))
    out["renamed_version"] = labels.version(client.get_model_version(new_name, "1"))
    out["old_name"] = capture(lambda: client.get_registered_model(name))

    client.delete_registered_model_alias(new_name, "challenger")
    client.delete_model_version(new_name, "1")
    out["after_delete"] = labels.model(client.get_registered_model(new_name))
    out["next_version"] = str(client.create_model_version(new_name, "s3://bucket/three").version)

    before_errors = labels.model(client.get_registered_model(new_name))
    out["errors"] = {
        "missing_model": capture(lambda: client.get_registered_model(f"{prefix}-missing")),
        "duplicate": capture(lambda: client.create_registered_model(new_name)),
        "bad_name": capture(lambda: client.create_registered_model("a/b")),
        "missing_version": capture(lambda: client.get_model_version(new_name, "99")),
        "bad_stage": capture(lambda: client.transition_model_version_stage(new_name, "2", "Bogus")),
        "reserved_alias": capture(
            lambda: client.set_registered_model_alias(new_name, "latest", "2")
        ),
        "bad_alias": capture(lambda: client.set_registered_model_alias(new_name, "a b", "2")),
        "missing_alias": capture(lambda: client.get_model_version_by_alias(new_name, "nope")),
        "bad_filter": capture(lambda: client.search_registered_models("name > 'a'")),
        "bad_source": capture(lambda: client.create_model_version(new_name, "/etc/passwd")),
        "bad_runs_source": capture(
            lambda: client.create_model_version(new_name, f"runs:/{run_id}/m", run_id="other")
        ),
    }
    out["unchanged"] = labels.model(client.get_registered_model(new_name)) == before_errors
    client.delete_registered_model(new_name)
    out["deleted"] = capture(lambda: client.get_registered_model(new_name))
    return out


def _run_3x(url: str) -> dict[str, Any]:
    with tracking_to(url), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return scenario_registry_3x(url)


def test_registry_mlflow3_client(
    tether_server: TetherServer, reference_server: ReferenceServer
) -> None:
    expected = once_per_session(scenario_registry_3x, lambda: _run_3x(reference_server.url))
    got = _run_3x(tether_server.url)
    assert_same(got, expected)
    # The comparison is not vacuous.
    assert expected["archived"]["stage"] == "Production"
    assert expected["stage_of_1"] == "Archived"
    assert expected["by_alias"]["version"] == "2"
    assert expected["resolved"] == {
        "models:/<P>-model/1": "runs:/<run>/model",
        "models:/<P>-model/2": "s3://bucket/models/two",
        "models:/<P>-model@champion": "s3://bucket/models/two",
        "models:/<P>-model/Production": "s3://bucket/models/two",
        "models:/<P>-model/latest": "s3://bucket/models/two",
    }
    assert [v["version"] for v in expected["register_model"]] == ["1", "2"]
    assert (
        expected["register_model"][0]["source"] == "mlflow-artifacts:/<exp>/<run>/artifacts/model"
    )
    assert expected["renamed_version"]["name"] == "<P>-renamed"
    assert expected["next_version"] == "3"
    assert expected["errors"]["missing_model"] == {"error": "RESOURCE_DOES_NOT_EXIST"}
    assert expected["errors"]["duplicate"] == {"error": "RESOURCE_ALREADY_EXISTS"}
    assert expected["errors"]["bad_stage"] == {"error": "INVALID_PARAMETER_VALUE"}
    assert expected["unchanged"] is True
    assert expected["deleted"] == {"error": "RESOURCE_DOES_NOT_EXIST"}


# ------------------------------------------------------------------------- MLflow 2.x

SNIPPET_2X = r"""
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository

PREFIX = __PREFIX__
labels = {}


def scrub(obj):
    if isinstance(obj, str):
        obj = obj.replace(PREFIX, "<P>")
        for raw, label in labels.items():
            obj = obj.replace(raw, label)
        return obj
    if isinstance(obj, dict):
        return {scrub(k): scrub(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub(v) for v in obj]
    return obj


def version(mv):
    return scrub({
        "name": mv.name, "version": str(mv.version), "stage": mv.current_stage,
        "source": mv.source, "run_id": mv.run_id, "status": mv.status,
        "tags": dict(mv.tags), "aliases": sorted(mv.aliases),
    })


def capture(fn):
    try:
        fn()
    except MlflowException as exc:
        return exc.error_code
    return "ok"


exp_id = client.create_experiment(PREFIX)
labels[f"mlflow-artifacts:/{exp_id}/"] = "mlflow-artifacts:/<exp>/"
run = client.create_run(exp_id)
run_id = run.info.run_id
labels[run_id] = "<run>"
name = PREFIX + "-model"
out = {}
registered = mlflow.register_model(f"runs:/{run_id}/model", name)
second = mlflow.register_model(f"runs:/{run_id}/model", name)
out["registered"] = [version(registered), version(second)]
client.transition_model_version_stage(name, "1", "Staging")
client.transition_model_version_stage(name, "2", "Staging", archive_existing_versions=True)
out["stages"] = [client.get_model_version(name, v).current_stage for v in ("1", "2")]
out["latest"] = [version(v) for v in client.get_latest_versions(name, stages=["Staging"])]
client.set_registered_model_alias(name, "champion", "1")
out["by_alias"] = version(client.get_model_version_by_alias(name, "champion"))
out["resolved"] = scrub({
    uri: ModelsArtifactRepository.get_underlying_uri(uri)
    for uri in (f"models:/{name}/1", f"models:/{name}@champion", f"models:/{name}/Staging")
})
rm = client.get_registered_model(name)
out["model"] = scrub({
    "name": rm.name,
    "aliases": dict(rm.aliases),
    "latest": sorted((str(v.version), v.current_stage) for v in rm.latest_versions),
})
by_version = ["version_number"]
out["search"] = [
    version(v) for v in client.search_model_versions(f"name = '{name}'", order_by=by_version)
]
models = client.search_registered_models(f"name LIKE '{PREFIX}%'")
out["search_models"] = scrub([m.name for m in models])
out["errors"] = {
    "bad_stage": capture(lambda: client.transition_model_version_stage(name, "1", "Bogus")),
    "reserved_alias": capture(lambda: client.set_registered_model_alias(name, "v1", "1")),
    "missing": capture(lambda: client.get_model_version(name, "9")),
}
client.delete_registered_model_alias(name, "champion")
client.delete_registered_model(name)
out["deleted"] = capture(lambda: client.get_registered_model(name))
result = {"version": mlflow.__version__, "out": out}
"""


def _run_2x(mlflow2: Mlflow2, url: str) -> dict[str, Any]:
    snippet = SNIPPET_2X.replace("__PREFIX__", repr(unique_name("e2e-reg2")))
    result: dict[str, Any] = mlflow2.run(url, snippet)
    assert result["version"].startswith("2."), result["version"]
    out: dict[str, Any] = result["out"]
    return out


_REFERENCE_2X: dict[str, Any] = {}


def test_registry_mlflow2_client(
    mlflow2: Mlflow2, tether_server: TetherServer, reference_server: ReferenceServer
) -> None:
    if "2x" not in _REFERENCE_2X:
        _REFERENCE_2X["2x"] = _run_2x(mlflow2, reference_server.url)
    expected = _REFERENCE_2X["2x"]
    got = _run_2x(mlflow2, tether_server.url)
    assert_same(got, expected)
    source = "mlflow-artifacts:/<exp>/<run>/artifacts/model"
    assert [v["source"] for v in expected["registered"]] == [source, source]
    assert expected["stages"] == ["Archived", "Staging"]
    assert expected["by_alias"]["aliases"] == ["champion"]
    assert expected["resolved"]["models:/<P>-model@champion"] == source
    assert expected["errors"] == {
        "bad_stage": "INVALID_PARAMETER_VALUE",
        "reserved_alias": "INVALID_PARAMETER_VALUE",
        "missing": "RESOURCE_DOES_NOT_EXIST",
    }
    assert expected["deleted"] == "RESOURCE_DOES_NOT_EXIST"
