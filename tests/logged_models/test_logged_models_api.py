"""Logged-model API and the runs API's MLflow 3 parts: Tether against the reference
`mlflow server`, request by request, on both backends.

Deliberate deviations (asserted here, Tether-only checks marked as such):
- Where MLflow's SQL constraints reject a write with a raw IntegrityError (400 BAD_REQUEST with
  SQL in the message) -- a duplicate param or tag key, re-logging a model param, a model metric
  reusing (model, key, timestamp, step, run) with another value, a second output link of a
  model -- Tether answers the same status and code with a readable message.
- A metric, input or output naming a model that does not exist: MLflow stores dangling
  input/output links (and refuses dangling metrics with a raw FOREIGN KEY error); Tether
  answers 404 RESOURCE_DOES_NOT_EXIST "Logged model with ID '...' not found." and stores nothing.
  An input/output without a model_id (MLflow stores "") is refused with 400.
- finalize with an unknown status (a name or number outside LoggedModelStatus): MLflow stores
  UNSPECIFIED; Tether refuses with 400. A `true` or 2.5 status is refused, as any non-integer.
- finalize / log-params whose body `model_id` differs from the path's: MLflow finalizes the
  body's model (and logs params to the path's); Tether refuses with 400.
- Values Tether's columns cannot hold (a name or model_type over 500 characters, a
  source_run_id over 32, a param or tag key over 255) are refused with 400; MLflow's SQLite
  stores them (its PostgreSQL fails).
- A tag or param item of the wrong JSON type (`{"key": 1}`): refused with 400 (MLflow stores
  an empty key).
"""

from __future__ import annotations

import json
from typing import Any

from compat.diff import Ref
from logged_models.lmdiff import ModelPair
from support import MlflowRest, unique_name
from support.outbox import last_outbox_id, outbox_after
from tether.db.engine import Database

DOCS = " See the API docs for more information about request parameters."
NO_MODEL = "m-" + "0" * 32
MISSING_MODEL = {"status": 404, "code": "RESOURCE_DOES_NOT_EXIST"}
TS = 1_700_000_000_000


def model_path(model: Ref, suffix: str = "") -> tuple[Any, ...]:
    return ("logged-models/", model, suffix)


def _info(body: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = body["model"]["info"]
    return info


# ------------------------------------------------------------------------------------ create


def test_create_full_and_get(pair: ModelPair) -> None:
    exp = pair.experiment()
    run = pair.run(exp)
    body = {
        "experiment_id": exp,
        "name": "my-model",
        "model_type": "sklearn",
        "source_run_id": run,
        "params": [{"key": "b", "value": "2"}, {"key": "a", "value": "1"}, {"key": "empty"}],
        "tags": [{"key": "t", "value": "v"}, {"key": "no-value"}],
    }
    out = pair.send("POST", "logged-models", body)
    assert out.ref.status == out.tet.status == 200
    model = pair.register("model", _info(out.ref.json)["model_id"], _info(out.tet.json)["model_id"])
    created = pair.same("POST", "logged-models/search", {"experiment_ids": [exp]}, status=200)
    expected_info = {
        "model_id": model.symbol,
        "experiment_id": exp.symbol,
        "name": "my-model",
        "creation_timestamp_ms": "<ts>",
        "last_updated_timestamp_ms": "<ts>",
        "artifact_uri": f"mlflow-artifacts:/{exp.symbol}/models/{model.symbol}/artifacts",
        "status": "LOGGED_MODEL_PENDING",
        "model_type": "sklearn",
        "source_run_id": run.symbol,
        "tags": [{"key": "no-value", "value": ""}, {"key": "t", "value": "v"}],
    }
    expected_data = {
        "params": [
            {"key": "a", "value": "1"},
            {"key": "b", "value": "2"},
            {"key": "empty", "value": ""},
        ]
    }
    assert created == {"models": [{"info": expected_info, "data": expected_data}]}
    got = pair.same("GET", model_path(model), status=200)
    assert got == {"model": {"info": expected_info, "data": expected_data}}
    assert pair.norm["tet"](out.tet.json) == got
    assert _info(out.tet.json)["model_id"].startswith("m-")
    assert len(_info(out.tet.json)["model_id"]) == 34
    # The ajax-api prefix the UI uses serves the same answer.
    ajax = pair.rest["tet"].get(f"/ajax-api/2.0/mlflow/logged-models/{model.tet}")
    assert (ajax.status, ajax.json) == (
        200,
        pair.rest["tet"].get(f"logged-models/{model.tet}").json,
    )


def test_create_defaults(pair: ModelPair) -> None:
    exp = pair.experiment()
    for body in ({"experiment_id": exp}, {"experiment_id": exp, "name": ""}):
        out = pair.send("POST", "logged-models", body)
        assert out.ref.status == out.tet.status == 200
        ref_info, tet_info = _info(out.ref_body), _info(out.tet_body)
        # Random names differ; everything else is equal.
        assert tet_info.pop("name") and ref_info.pop("name")
        assert tet_info == ref_info
        assert tet_info["status"] == "LOGGED_MODEL_PENDING"
        assert tet_info["model_type"] == "" and tet_info["source_run_id"] == ""
        assert out.tet_body["model"]["data"] == {}


def test_create_errors(pair: ModelPair) -> None:
    exp = pair.experiment()
    pair.same_error(
        "POST",
        "logged-models",
        {},
        mentions=("Missing value for required parameter 'experiment_id'",),
    )
    pair.same_error("POST", "logged-models", {"experiment_id": "abc"})
    pair.same_error("POST", "logged-models", {"experiment_id": "987654"}, **MISSING_MODEL)
    for name in ("a/b", "a:b", "a.b", "50%", 'say "hi"', "it's"):
        pair.same_error("POST", "logged-models", {"experiment_id": exp, "name": name})
    pair.same_error("POST", "logged-models", {"experiment_id": exp, "name": 5}, message=False)
    pair.same_error(
        "POST", "logged-models", {"experiment_id": exp, "params": "x"}, mentions=("'params'",)
    )
    # Duplicate keys: MLflow's raw IntegrityError, Tether's readable message; nothing created.
    for field in ("params", "tags"):
        body = {
            "experiment_id": exp,
            "name": f"dup-{field}",
            field: [{"key": "k", "value": "1"}, {"key": "k", "value": "2"}],
        }
        pair.same_error("POST", "logged-models", body, code="BAD_REQUEST", message=False)
    assert pair.same("POST", "logged-models/search", {"experiment_ids": [exp]}) == {}
    # A deleted experiment takes no new models.
    gone = pair.experiment()
    pair.same("POST", "experiments/delete", {"experiment_id": gone}, status=200)
    pair.same_error("POST", "logged-models", {"experiment_id": gone})


def test_create_limits_tether_only(tether_rest: MlflowRest) -> None:
    exp_id = tether_rest.post("experiments/create", {"name": unique_name()}).json["experiment_id"]
    cases = [
        {"name": "n" * 501},
        {"model_type": "t" * 501},
        {"source_run_id": "r" * 33},
        {"params": [{"key": "k" * 256, "value": "v"}]},
        {"tags": [{"key": "k" * 256, "value": "v"}]},
        {"tags": [{"key": 1, "value": "v"}]},
        {"name": "a\x00b"},
    ]
    for extra in cases:
        response = tether_rest.post("logged-models", {"experiment_id": exp_id, **extra})
        assert (response.status, response.error_code) == (400, "INVALID_PARAMETER_VALUE"), extra
    ok = tether_rest.post(
        "logged-models",
        {
            "experiment_id": exp_id,
            "name": "n" * 500,
            "params": [{"key": "k" * 255, "value": "v" * 100_000}],
        },
    )
    assert ok.status == 200, ok.json


# --------------------------------------------------------------------------------- get/delete


def test_get_missing_and_deleted(pair: ModelPair) -> None:
    exp = pair.experiment()
    model = pair.model(exp, name="doomed")
    pair.same_error("GET", f"logged-models/{NO_MODEL}", **MISSING_MODEL)
    pair.same_error("GET", "logged-models/nope", **MISSING_MODEL)
    pair.same("DELETE", model_path(model), status=200)
    pair.same_error("GET", model_path(model), **MISSING_MODEL)
    deleted = pair.same("GET", model_path(model), {"allow_deleted": "true"}, status=200)
    assert deleted["model"]["info"]["name"] == "doomed"
    pair.same_error("GET", model_path(model), {"allow_deleted": "false"}, **MISSING_MODEL)
    pair.same_error("GET", model_path(model), {"allow_deleted": "yes"}, **MISSING_MODEL)
    # Deleting again is fine; deleted models still take tags and a final status, as in MLflow.
    pair.same("DELETE", model_path(model), status=200)
    pair.same("PATCH", model_path(model, "/tags"), {"tags": [{"key": "k", "value": "v"}]})
    pair.same("PATCH", model_path(model), {"model_id": model, "status": 2}, status=200)
    pair.same_error("DELETE", f"logged-models/{NO_MODEL}", **MISSING_MODEL)
    # Deleted models are not searched.
    assert pair.same("POST", "logged-models/search", {"experiment_ids": [exp]}) == {}


# ----------------------------------------------------------------------------------- finalize


def test_finalize(pair: ModelPair) -> None:
    exp = pair.experiment()
    model = pair.model(exp, name="fin")
    statuses = [
        ("LOGGED_MODEL_READY", "LOGGED_MODEL_READY"),
        (3, "LOGGED_MODEL_UPLOAD_FAILED"),
        ("1", "LOGGED_MODEL_PENDING"),
        (2.0, "LOGGED_MODEL_READY"),
        ("LOGGED_MODEL_UPLOAD_FAILED", "LOGGED_MODEL_UPLOAD_FAILED"),
        (0, "LOGGED_MODEL_STATUS_UNSPECIFIED"),
        ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_PENDING"),
    ]
    for status, shown in statuses:
        body = pair.same("PATCH", model_path(model), {"model_id": model, "status": status})
        assert body["model"]["info"]["status"] == shown
    got = pair.same("GET", model_path(model), status=200)
    assert got["model"]["info"]["status"] == "LOGGED_MODEL_PENDING"


def test_finalize_errors(pair: ModelPair) -> None:
    exp = pair.experiment()
    model = pair.model(exp)
    for body in ({"status": 2}, {}):
        pair.same_error(
            "PATCH",
            model_path(model),
            body,
            mentions=("Missing value for required parameter 'model_id'",),
        )
    pair.same_error(
        "PATCH",
        model_path(model),
        {"model_id": model},
        mentions=("Missing value for required parameter 'status'",),
    )
    pair.same_error(
        "PATCH", f"logged-models/{NO_MODEL}", {"model_id": NO_MODEL, "status": 2}, **MISSING_MODEL
    )


def test_finalize_deviations_tether_only(pair: ModelPair) -> None:
    exp = pair.experiment()
    model = pair.model(exp)
    tet = pair.rest["tet"]
    path = f"logged-models/{model.tet}"
    for status in ("BAD", 9, -1, True, 2.5, "LOGGED_MODEL_RUNNING"):
        response = tet.patch(path, {"model_id": model.tet, "status": status})
        assert (response.status, response.error_code) == (400, "INVALID_PARAMETER_VALUE"), status
    other = pair.model(exp)
    response = tet.patch(path, {"model_id": other.tet, "status": 2})
    assert (response.status, response.error_code) == (400, "INVALID_PARAMETER_VALUE")
    for m in (model, other):
        got = tet.get(f"logged-models/{m.tet}").json
        assert got["model"]["info"]["status"] == "LOGGED_MODEL_PENDING"


# --------------------------------------------------------------------------------- tags/params


def test_tags(pair: ModelPair) -> None:
    exp = pair.experiment()
    model = pair.model(exp, tags=[{"key": "keep", "value": "1"}])
    body = {
        "tags": [
            {"key": "a", "value": "1"},
            {"key": "dup", "value": "first"},
            {"key": "dup", "value": "last"},
            {"key": "keep", "value": "2"},
            {"key": "no value"},
            {"key": "unicode ✓", "value": "ü" * 10},
        ]
    }
    pair.same("PATCH", model_path(model, "/tags"), body, status=200)
    pair.same("PATCH", model_path(model, "/tags"), {}, status=200)
    pair.same("PATCH", model_path(model, "/tags"), {"tags": []}, status=200)
    pair.same("DELETE", model_path(model, "/tags/a"), status=200)
    got = pair.same("GET", model_path(model), status=200)
    assert got["model"]["info"]["tags"] == [
        {"key": "dup", "value": "last"},
        {"key": "keep", "value": "2"},
        {"key": "no value", "value": ""},
        {"key": "unicode ✓", "value": "ü" * 10},
    ]
    pair.same_error("DELETE", model_path(model, "/tags/a"), **MISSING_MODEL)
    pair.same_error("DELETE", f"logged-models/{NO_MODEL}/tags/a", **MISSING_MODEL)
    pair.same_error(
        "PATCH",
        f"logged-models/{NO_MODEL}/tags",
        {"tags": [{"key": "k", "value": "v"}]},
        **MISSING_MODEL,
    )
    pair.same_error("PATCH", model_path(model, "/tags"), {"tags": "x"}, mentions=("'tags'",))


def test_params(pair: ModelPair) -> None:
    exp = pair.experiment()
    model = pair.model(exp, params=[{"key": "p0", "value": "0"}])
    path = model_path(model, "/params")
    pair.same("POST", path, {"model_id": model, "params": [{"key": "p1", "value": "1"}]})
    pair.same("POST", path, {"model_id": model, "params": [{"key": "p2"}]}, status=200)
    pair.same("POST", path, {"model_id": model}, status=200)
    # Params are write-once: a second value, or even the same one, is refused.
    for value in ("1", "other"):
        pair.same_error(
            "POST",
            path,
            {"model_id": model, "params": [{"key": "p1", "value": value}]},
            code="BAD_REQUEST",
            message=False,
        )
    pair.same_error(
        "POST",
        path,
        {"model_id": model, "params": [{"key": "x", "value": "1"}, {"key": "x", "value": "1"}]},
        code="BAD_REQUEST",
        message=False,
    )
    pair.same_error(
        "POST",
        path,
        {"params": [{"key": "q", "value": "1"}]},
        mentions=("Missing value for required parameter 'model_id'",),
    )
    pair.same_error("POST", path, {"model_id": model, "params": "x"}, mentions=("'params'",))
    pair.same_error(
        "POST",
        f"logged-models/{NO_MODEL}/params",
        {"model_id": NO_MODEL, "params": [{"key": "q", "value": "1"}]},
        **MISSING_MODEL,
    )
    got = pair.same("GET", model_path(model), status=200)
    assert got["model"]["data"]["params"] == [
        {"key": "p0", "value": "0"},
        {"key": "p1", "value": "1"},
        {"key": "p2", "value": ""},
    ]


# ------------------------------------------------------------------------- runs: model metrics


def test_metrics_with_model_id(pair: ModelPair) -> None:
    exp = pair.experiment()
    run = pair.run(exp)
    model = pair.model(exp, name="scored", source_run_id=run)
    other = pair.model(exp, name="other")
    steps: list[tuple[str, dict[str, Any]]] = [
        ("runs/log-metric", {"key": "acc", "value": 0.5, "timestamp": TS, "step": 1}),
        # An exact re-log is skipped, as MLflow does.
        ("runs/log-metric", {"key": "acc", "value": 0.5, "timestamp": TS, "step": 1}),
        (
            "runs/log-metric",
            {
                "key": "acc",
                "value": 0.75,
                "timestamp": TS + 1,
                "step": 2,
                "dataset_name": "test",
                "dataset_digest": "d1",
            },
        ),
        ("runs/log-metric", {"key": "nan", "value": "NaN", "timestamp": TS, "step": 0}),
        ("runs/log-metric", {"key": "inf", "value": "Infinity", "timestamp": TS, "step": 0}),
        ("runs/log-metric", {"key": "neg", "value": "-Infinity", "timestamp": TS, "step": 0}),
    ]
    for path, body in steps:
        pair.same("POST", path, {"run_id": run, "model_id": model, **body}, status=200)
    batch = {
        "run_id": run,
        "metrics": [
            {"key": "loss", "value": 1.5, "timestamp": TS, "step": 0, "model_id": other},
            {"key": "loss", "value": 1.5, "timestamp": TS, "step": 0, "model_id": other},
            {"key": "loss", "value": 1.0, "timestamp": TS + 5, "step": 1, "model_id": other},
            {"key": "run_only", "value": 3, "timestamp": TS, "step": 0},
            {
                "key": "loss",
                "value": 0.5,
                "timestamp": TS,
                "step": 0,
                "model_id": model,
                "dataset_name": "train",
                "dataset_digest": "d0",
            },
        ],
        "params": [{"key": "p", "value": "1"}],
    }
    pair.same("POST", "runs/log-batch", batch, status=200)
    for m in (model, other):
        pair.same("GET", model_path(m), status=200)
    snapshot = pair.same("GET", "runs/get", {"run_id": run}, status=200)
    keys = {m["key"] for m in snapshot["run"]["data"]["metrics"]}
    assert keys == {"acc", "nan", "inf", "neg", "loss", "run_only"}
    got = pair.same("GET", model_path(model))["model"]["data"]["metrics"]
    values = {m["key"]: m["value"] for m in got if m["key"] in ("nan", "inf", "neg")}
    # NaN is stored as 0 and infinities clamped, as MLflow's store does for model metrics.
    assert values == {"nan": 0.0, "inf": 1.7976931348623157e308, "neg": -1.7976931348623157e308}
    assert all(m["model_id"] == model.symbol and m["run_id"] == run.symbol for m in got)
    # Metric history of the run has every point, model or not.
    pair.same("GET", "metrics/get-history", {"run_id": run, "metric_key": "loss"}, status=200)


def test_model_metric_errors(pair: ModelPair) -> None:
    exp = pair.experiment()
    run = pair.run(exp)
    model = pair.model(exp)
    base = {"run_id": run, "key": "acc", "value": 0.5, "timestamp": TS, "step": 1}
    pair.same("POST", "runs/log-metric", {**base, "model_id": model}, status=200)
    # The same (model, key, timestamp, step, run) with another value: refused, nothing logged.
    pair.same_error(
        "POST",
        "runs/log-metric",
        {**base, "model_id": model, "value": 0.7},
        code="BAD_REQUEST",
        message=False,
    )
    message = "Both dataset_name and dataset_digest must be provided if one is provided"
    for extra in ({"dataset_name": "ds"}, {"dataset_digest": "dg"}):
        pair.same_error("POST", "runs/log-metric", {**base, **extra}, mentions=(message,))
        pair.same_error(
            "POST",
            "runs/log-batch",
            {"run_id": run, "metrics": [{**base, **extra, "model_id": model}]},
            mentions=(message,),
        )
    got = pair.same("GET", model_path(model), status=200)
    assert [m["value"] for m in got["model"]["data"]["metrics"]] == [0.5]
    pair.same("GET", "metrics/get-history", {"run_id": run, "metric_key": "acc"}, status=200)


def test_model_references_tether_only(pair: ModelPair) -> None:
    """Unknown models: MLflow stores dangling links (or fails with a raw FOREIGN KEY error);
    Tether refuses with 404 and logs nothing of the request."""
    exp = pair.experiment()
    run = pair.run(exp)
    model = pair.model(exp)
    tet = pair.rest["tet"]
    run_id, model_id = run.tet, model.tet
    point = {"key": "acc", "value": 0.5, "timestamp": TS, "step": 0}
    requests: list[tuple[str, dict[str, Any]]] = [
        ("runs/log-metric", {"run_id": run_id, **point, "model_id": NO_MODEL}),
        (
            "runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [{**point, "model_id": model_id}, {**point, "model_id": NO_MODEL}],
            },
        ),
        ("runs/log-inputs", {"run_id": run_id, "models": [{"model_id": NO_MODEL}]}),
        ("runs/outputs", {"run_id": run_id, "models": [{"model_id": NO_MODEL, "step": 1}]}),
    ]
    for path, body in requests:
        response = tet.post(path, body)
        assert (response.status, response.error_code) == (404, "RESOURCE_DOES_NOT_EXIST"), path
        assert response.json["message"] == f"Logged model with ID '{NO_MODEL}' not found."
    for path, body in (
        ("runs/log-inputs", {"run_id": run_id, "models": [{}]}),
        ("runs/outputs", {"run_id": run_id, "models": [{"step": 1}]}),
    ):
        response = tet.post(path, body)
        assert (response.status, response.error_code) == (400, "INVALID_PARAMETER_VALUE"), path
    got = tet.get("runs/get", {"run_id": run_id}).json["run"]
    assert got.get("data", {}).get("metrics") is None
    assert got["inputs"] == {} and got["outputs"] == {}
    assert tet.get(f"logged-models/{model_id}").json["model"]["data"] == {}


# ----------------------------------------------------------------------- runs: inputs/outputs


def test_model_inputs_and_outputs(pair: ModelPair) -> None:
    exp = pair.experiment()
    run = pair.run(exp)
    first, second, third = (pair.model(exp, name=n) for n in ("first", "second", "third"))
    pair.same(
        "POST",
        "runs/log-inputs",
        {"run_id": run, "models": [{"model_id": first}, {"model_id": first}]},
        status=200,
    )
    # Re-logging an input is a no-op; datasets and models can come together.
    body = {
        "run_id": run,
        "models": [{"model_id": first}, {"model_id": second}],
        "datasets": [
            {"dataset": {"name": "d", "digest": "x", "source_type": "local", "source": "s"}}
        ],
    }
    pair.same("POST", "runs/log-inputs", body, status=200)
    pair.same(
        "POST",
        "runs/outputs",
        {"run_id": run, "models": [{"model_id": second, "step": 3}, {"model_id": third}]},
        status=200,
    )
    pair.same("POST", "runs/outputs", {"run_id": run, "models": []}, status=200)
    got = pair.same("GET", "runs/get", {"run_id": run}, status=200)["run"]
    assert got["inputs"]["model_inputs"] == sorted(
        [{"model_id": first.symbol}, {"model_id": second.symbol}], key=json.dumps
    )
    assert got["outputs"] == {
        "model_outputs": sorted(
            [{"model_id": second.symbol, "step": 3}, {"model_id": third.symbol, "step": 0}],
            key=json.dumps,
        )
    }
    # runs/search shows outputs but (as MLflow) not the model inputs.
    found = pair.same("POST", "runs/search", {"experiment_ids": [exp]}, status=200)
    assert "model_inputs" not in found["runs"][0]["inputs"]
    assert found["runs"][0]["outputs"] == got["outputs"]
    # A model is an output of a run once.
    pair.same_error(
        "POST",
        "runs/outputs",
        {"run_id": run, "models": [{"model_id": second, "step": 4}]},
        code="BAD_REQUEST",
        message=False,
    )
    other = pair.model(exp, name="other")
    pair.same_error(
        "POST",
        "runs/outputs",
        {"run_id": run, "models": [{"model_id": other}, {"model_id": other, "step": 1}]},
        code="BAD_REQUEST",
        message=False,
    )
    assert pair.same("GET", "runs/get", {"run_id": run})["run"]["outputs"] == got["outputs"]


def test_outputs_errors(pair: ModelPair) -> None:
    exp = pair.experiment()
    run = pair.run(exp)
    model = pair.model(exp)
    pair.same_error(
        "POST",
        "runs/outputs",
        {"run_id": run},
        mentions=("Missing value for required parameter 'models'",),
    )
    pair.same_error(
        "POST",
        "runs/outputs",
        {"models": [{"model_id": model}]},
        mentions=("Missing value for required parameter 'run_id'",),
    )
    pair.same_error(
        "POST",
        "runs/outputs",
        {"run_id": "0" * 32, "models": [{"model_id": model}]},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    pair.same("POST", "runs/delete", {"run_id": run}, status=200)
    pair.same_error("POST", "runs/outputs", {"run_id": run, "models": [{"model_id": model}]})
    pair.same_error("POST", "runs/log-inputs", {"run_id": run, "models": [{"model_id": model}]})
    pair.same_error(
        "POST",
        "runs/log-metric",
        {"run_id": run, "key": "k", "value": 1, "timestamp": TS, "model_id": model},
    )


# --------------------------------------------------------------------------------- artifacts


def _put_artifact(pair: ModelPair, exp: Ref, model: Ref, path: str, content: bytes) -> None:
    for side, rest in pair.rest.items():
        target = (
            f"/api/2.0/mlflow-artifacts/artifacts/{exp.side(side)}/models/"
            f"{model.side(side)}/artifacts/{path}"
        )
        response = rest.request("PUT", target, content=content)
        assert response.status == 200, (side, response.text)


def test_artifacts(pair: ModelPair) -> None:
    exp = pair.experiment()
    model = pair.model(exp)
    empty = pair.same("GET", model_path(model, "/artifacts/directories"), status=200)
    assert empty == {"root_uri": f"mlflow-artifacts:/{exp.symbol}/models/{model.symbol}/artifacts"}
    _put_artifact(pair, exp, model, "MLmodel", b"flavors: {}\n")
    _put_artifact(pair, exp, model, "sub/data.bin", b"\x00\x01" * 10)
    _put_artifact(pair, exp, model, "sub/deeper/empty.txt", b"")
    root = pair.same("GET", model_path(model, "/artifacts/directories"), status=200)
    assert {f["path"] for f in root["files"]} == {"MLmodel", "sub"}
    for directory in ("sub", "sub/", "sub/deeper", "nope", ""):
        pair.same(
            "GET",
            model_path(model, "/artifacts/directories"),
            {"artifact_directory_path": directory},
            status=200,
        )
    for bad in ("../x", "/etc", "sub/../../x"):
        pair.same_error(
            "GET",
            model_path(model, "/artifacts/directories"),
            {"artifact_directory_path": bad},
        )
    pair.same_error("GET", f"logged-models/{NO_MODEL}/artifacts/directories", **MISSING_MODEL)
    # The UI's download route (ajax-api only, as in MLflow).
    for side, rest in pair.rest.items():
        base = f"/ajax-api/2.0/mlflow/logged-models/{model.side(side)}/artifacts/files"
        got = rest.get(base, {"artifact_file_path": "sub/data.bin"})
        assert (got.status, got.text.encode("latin-1", "replace")[:2]) == (200, b"\x00\x01"), side
        missing = rest.get(base)
        assert (missing.status, missing.error_code) == (400, "BAD_REQUEST"), side
        escape = rest.get(base, {"artifact_file_path": "../../x"})
        assert escape.status == 400, side


# ------------------------------------------------------------------------------------ outbox


def test_outbox_records(tether_rest: MlflowRest, tether_store: Database) -> None:
    exp_id = tether_rest.post("experiments/create", {"name": unique_name()}).json["experiment_id"]
    run_id = tether_rest.post("runs/create", {"experiment_id": exp_id}).json["run"]["info"][
        "run_id"
    ]
    last = last_outbox_id(tether_store)
    created = tether_rest.post(
        "logged-models",
        {"experiment_id": exp_id, "name": "ob", "params": [{"key": "p", "value": "1"}]},
    ).json
    model_id = created["model"]["info"]["model_id"]
    rows = outbox_after(tether_store, last)
    assert [(*r["entity"], r["op"]) for r in rows] == [("logged_model", model_id, "create")]
    created_payload = rows[0]["payload"]
    assert created_payload["params"] == {"p": "1"} and created_payload["name"] == "ob"
    assert created_payload["artifact_location"].endswith(f"/models/{model_id}/artifacts")

    writes: list[tuple[str, str, dict[str, Any], tuple[str, str, str]]] = [
        ("PATCH", f"logged-models/{model_id}/tags", {"tags": [{"key": "t", "value": "v"}]},
         ("logged_model", model_id, "set_tag")),
        ("DELETE", f"logged-models/{model_id}/tags/t", {},
         ("logged_model", model_id, "delete_tag")),
        ("POST", f"logged-models/{model_id}/params",
         {"model_id": model_id, "params": [{"key": "q", "value": "2"}]},
         ("logged_model", model_id, "log_params")),
        ("PATCH", f"logged-models/{model_id}", {"model_id": model_id, "status": 2},
         ("logged_model", model_id, "finalize")),
        ("POST", "runs/log-metric",
         {"run_id": run_id, "key": "m", "value": 1, "timestamp": TS, "model_id": model_id},
         ("run", run_id, "log_batch")),
        ("POST", "runs/log-inputs", {"run_id": run_id, "models": [{"model_id": model_id}]},
         ("run", run_id, "log_inputs")),
        ("POST", "runs/outputs", {"run_id": run_id, "models": [{"model_id": model_id}]},
         ("run", run_id, "log_outputs")),
        ("DELETE", f"logged-models/{model_id}", {}, ("logged_model", model_id, "delete")),
    ]  # fmt: skip
    for method, path, body, expected in writes:
        last = last_outbox_id(tether_store)
        response = tether_rest.request(method, path, json=body)
        assert response.status == 200, (path, response.json)
        rows = outbox_after(tether_store, last)
        assert [(*r["entity"], r["op"]) for r in rows] == [expected], path
        if path == "runs/log-metric":
            assert "model_metric_ids" in rows[0]["payload"] and "metric_ids" in rows[0]["payload"]
        if path == "runs/log-inputs":
            assert rows[0]["payload"] == {"models": [model_id]}

    # Rejected writes and no-ops append nothing.
    last = last_outbox_id(tether_store)
    rejected: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"logged-models/{model_id}/params",
         {"model_id": model_id, "params": [{"key": "q", "value": "3"}]}),
        ("PATCH", f"logged-models/{model_id}", {"model_id": model_id, "status": "BAD"}),
        ("POST", "runs/outputs", {"run_id": run_id, "models": [{"model_id": model_id}]}),
        ("POST", "runs/log-inputs", {"run_id": run_id, "models": [{"model_id": model_id}]}),
        ("PATCH", f"logged-models/{model_id}/tags", {"tags": []}),
        ("POST", "logged-models", {"experiment_id": exp_id, "name": "a/b"}),
        ("POST", "runs/log-metric",
         {"run_id": run_id, "key": "m", "value": 1, "timestamp": TS, "model_id": NO_MODEL}),
    ]  # fmt: skip
    for method, path, body in rejected:
        tether_rest.request(method, path, json=body)
    assert outbox_after(tether_store, last) == []


# ----------------------------------------------------------------- registered from a model


def test_registered_versions_tag(pair: ModelPair) -> None:
    """Registering versions from a logged model lists them in its `mlflow.modelVersions` tag,
    as the reference writes it: a JSON list with integer versions."""
    exp = pair.experiment()
    model = pair.model(exp)
    name = unique_name("lm-registered")
    out = pair.send("POST", "registered-models/create", {"name": name})
    assert out.ref.status == out.tet.status == 200, (out.ref.json, out.tet.json)
    location = Ref(
        "<location>",
        *(
            _info(pair.rest[side].get(f"logged-models/{model.side(side)}").json)["artifact_uri"]
            for side in ("ref", "tet")
        ),
    )
    for _ in range(2):
        out = pair.send(
            "POST", "model-versions/create", {"name": name, "source": location, "model_id": model}
        )
        assert out.ref.status == out.tet.status == 200, (out.ref.json, out.tet.json)
    body = pair.same("GET", model_path(model), status=200)
    tags = {t["key"]: t["value"] for t in _info(body)["tags"]}
    assert json.loads(tags["mlflow.modelVersions"]) == [
        {"name": name, "version": 1},
        {"name": name, "version": 2},
    ]
