"""`/graphql`, Tether against the reference `mlflow server`: the UI's four operations as its
bundle sends them (MLflow 3.17.2's `MlflowGetExperimentQuery`, `GetRun`, `SearchRuns`,
`GetMetricHistoryBulkInterval`), every field of the schema they reach, errors, the batching
limits and the HTTP-level refusals.

Answers are compared after compat.diff's normalisation (ids as symbols, server-assigned
times as "<ts>"), applied to the answer with its camelCase keys turned to snake_case; lists
keep the order answered (a run's params, tags and metrics as first logged, on both servers).
What still differs is listed by the tests that pin it (the 500s MLflow answers where Tether
answers 400).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from compat.diff import Pair, Ref, substitute
from support import MlflowRest, unique_name
from support.compare import assert_same

pytestmark = pytest.mark.reference

# The operations exactly as the UI bundle (mlflow/server/js/build, 3.17.2) sends them.
GET_EXPERIMENT = """
  query MlflowGetExperimentQuery($input: MlflowGetExperimentInput!)
  @component(name: "MLflow.ExperimentRunTracking") {
    mlflowGetExperiment(input: $input) {
      apiError { code message }
      experiment {
        artifactLocation creationTime effectiveTraceArchivalRetention experimentId
        lastUpdateTime lifecycleStage name tags { key value }
      }
    }
  }
"""
_RUN_FIELDS = """
        info {
          runName status runUuid experimentId artifactUri endTime lifecycleStage startTime userId
        }
        experiment {
          experimentId name tags { key value } artifactLocation lifecycleStage lastUpdateTime
        }
        modelVersions { status version name source creationTimestamp }
        data {
          metrics { key value step timestamp }
          params { key value }
          tags { key value }
        }
        inputs {
          datasetInputs {
            dataset { digest name profile schema source sourceType }
            tags { key value }
          }
          modelInputs { modelId }
        }
        outputs { modelOutputs { modelId step } }
"""
GET_RUN = (
    """
  query GetRun($data: MlflowGetRunInput!)
  @component(name: "MLflow.ExperimentRunTracking") {
    mlflowGetRun(input: $data) {
      apiError { helpUrl code message }
      run {"""
    + _RUN_FIELDS
    + """      }
    }
  }
"""
)
SEARCH_RUNS = (
    """
  query SearchRuns($data: MlflowSearchRunsInput!) {
    mlflowSearchRuns(input: $data) {
      apiError { helpUrl code message }
      runs {"""
    + _RUN_FIELDS
    + """      }
    }
  }
"""
)
BULK_INTERVAL = """
  query GetMetricHistoryBulkInterval($data: MlflowGetMetricHistoryBulkIntervalInput!)
  @component(name: "MLflow.ExperimentRunTracking") {
    mlflowGetMetricHistoryBulkInterval(input: $data) {
      __typename
      metrics { timestamp step runId key value }
      apiError { code message }
    }
  }
"""
# Every field of a run and of a model version, defaults included.
ALL_RUN_FIELDS = """
  query All($data: MlflowGetRunInput!) {
    mlflowGetRun(input: $data) {
      apiError { code message helpUrl traceId errorDetails { field message } }
      run {
        info {
          runId runUuid runName experimentId userId status startTime endTime artifactUri
          lifecycleStage
        }
        data {
          metrics { key value timestamp step datasetName datasetDigest modelId runId }
          params { key value }
          tags { key value }
        }
        inputs {
          datasetInputs {
            tags { key value }
            dataset { name digest sourceType source schema profile }
          }
          modelInputs { modelId }
        }
        outputs { modelOutputs { modelId step } }
        experiment {
          experimentId name artifactLocation lifecycleStage tags { key value }
          effectiveTraceArchivalRetention workspace
        }
        modelVersions {
          name version userId currentStage description source runId status statusMessage
          tags { key value } runLink aliases modelId modelParams { name value }
          modelMetrics { key value timestamp step datasetName datasetDigest modelId runId }
          deploymentJobState { jobId runId jobState runState currentTaskName }
        }
      }
    }
  }
"""

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_LONG_TIMES = ("creation_time", "last_update_time")
_SERVER_TIMES = ("creation_timestamp", "last_updated_timestamp")
_LIMIT_VARIABLE = re.compile(r"\b(MLFLOW_SERVER|TETHER)_GRAPHQL_MAX_[A-Z_]+")


def _snake(value: Any) -> Any:
    """camelCase keys to snake_case, so compat.diff's normaliser recognises ids and times;
    the experiment's LongString times become ints, as it expects of them."""
    if isinstance(value, list):
        return [_snake(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = _CAMEL.sub("_", key).lower()
        if name in _LONG_TIMES and isinstance(item, str):
            item = int(item)
        elif name in _SERVER_TIMES and isinstance(item, str) and item != "0":
            item = "<ts>"
        out[name] = _snake(item)
    return out


def graphql(pair: Pair, payload: dict[str, Any]) -> tuple[Any, Any]:
    """POST the same request to both; both must answer 200; returns the normalised bodies."""
    answers = {}
    for side in ("ref", "tet"):
        response = pair.rest[side].post("/graphql", json=substitute(payload, side))
        assert response.status == 200, (side, response.status, response.text[:2000])
        body = pair.norm[side](_snake(response.json))
        if body.get("errors"):  # the limits name their setting: MLflow's, or Tether's
            body["errors"] = [_LIMIT_VARIABLE.sub("<limit setting>", e) for e in body["errors"]]
        answers[side] = body
    return answers["ref"], answers["tet"]


def same(pair: Pair, query: str, variables: dict[str, Any] | None = None) -> Any:
    ref, tet = graphql(pair, {"query": query, "variables": variables or {}})
    assert_same(tet, ref)
    return tet


@pytest.fixture
def pair(reference_rest: MlflowRest, tether_rest: MlflowRest) -> Pair:
    return Pair(reference_rest, tether_rest)


@pytest.fixture
def logged(pair: Pair) -> dict[str, Ref]:
    """An experiment and a finished run with everything the run page shows, and a running
    run with nothing logged (the defaults)."""
    exp = pair.experiment(tags=[{"key": "team", "value": "vision"}])
    run = pair.run(exp, tags=[{"key": "owner", "value": "ana"}], run_name="train")
    points = [
        {"key": "loss", "value": 1.0 / (s + 1), "timestamp": 1_700_000_000_000 + s, "step": s}
        for s in range(30)
    ]
    points.append({"key": "acc", "value": 0.5, "timestamp": 1_700_000_000_500, "step": 0})
    params = [{"key": k, "value": v} for k, v in (("solver", "lbfgs"), ("alpha", "0.5"))]
    tags = [{"key": "stage", "value": "dev"}, {"key": "note", "value": "x" * 300}]
    body = {"run_id": run, "metrics": points, "params": params, "tags": tags}
    assert pair.send("POST", "runs/log-batch", body).tet.status == 200
    dataset = {
        "name": "toy",
        "digest": "abc123",
        "source_type": "code",
        "source": '{"tags": {}}',
        "schema": '{"mlflow_colspec": []}',
        "profile": '{"num_rows": 4}',
    }
    inputs = {"tags": [{"key": "mlflow.data.context", "value": "training"}], "dataset": dataset}
    out = pair.send("POST", "runs/log-inputs", {"run_id": run, "datasets": [inputs]})
    assert out.ref.status == out.tet.status == 200
    model = pair.send("POST", "logged-models", {"experiment_id": exp, "name": "m"})
    assert model.ref.status == model.tet.status == 200, (model.ref.json, model.tet.json)
    ref_model, tet_model = (m.json["model"]["info"]["model_id"] for m in (model.ref, model.tet))
    # "m-<32 hex>": the normaliser maps the hex part, as it maps run ids inside strings.
    symbol = pair.register("model", ref_model[2:], tet_model[2:]).symbol
    model_ref = Ref(symbol, ref_model, tet_model)
    out = pair.send(
        "POST", "runs/outputs", {"run_id": run, "models": [{"model_id": model_ref, "step": 3}]}
    )
    assert out.ref.status == out.tet.status == 200, (out.ref.json, out.tet.json)
    name = unique_name("gql-model")
    assert pair.send("POST", "registered-models/create", {"name": name}).tet.status == 200
    version = {"name": name, "source": "s3://bucket/models/m", "run_id": run}
    out = pair.send("POST", "model-versions/create", version)
    assert out.ref.status == out.tet.status == 200, (out.ref.json, out.tet.json)
    end = {"run_id": run, "status": "FINISHED", "end_time": 1_700_000_009_000}
    assert pair.send("POST", "runs/update", end).tet.status == 200
    empty = pair.run(exp, run_name="empty", start_time=1_700_000_100_000)
    return {"exp": exp, "run": run, "empty": empty, "model": model_ref}


def test_get_experiment(pair: Pair, logged: dict[str, Ref]) -> None:
    body = same(pair, GET_EXPERIMENT, {"input": {"experimentId": logged["exp"]}})
    experiment = body["data"]["mlflow_get_experiment"]["experiment"]
    assert experiment["tags"] == [{"key": "team", "value": "vision"}]
    assert body["errors"] is None


def test_get_run_as_the_run_page_asks(pair: Pair, logged: dict[str, Ref]) -> None:
    body = same(pair, GET_RUN, {"data": {"runId": logged["run"]}})
    run = body["data"]["mlflow_get_run"]["run"]
    assert run["info"]["end_time"] == "1700000009000"  # int64 as a string
    # In the order logged (the compare view's default axes come from it), not by key.
    assert [p["key"] for p in run["data"]["params"]] == ["solver", "alpha"]
    assert [m["key"] for m in run["data"]["metrics"]] == ["loss", "acc"]
    assert len(run["model_versions"]) == 1
    assert run["outputs"]["model_outputs"][0]["step"] == "3"
    same(pair, GET_RUN, {"data": {"runUuid": logged["run"]}})


def test_every_field_and_its_default(pair: Pair, logged: dict[str, Ref]) -> None:
    full = same(pair, ALL_RUN_FIELDS, {"data": {"runId": logged["run"]}})
    assert full["data"]["mlflow_get_run"]["api_error"] is None
    assert full["data"]["mlflow_get_run"]["run"]["experiment"]["workspace"] == "default"
    empty = same(pair, ALL_RUN_FIELDS, {"data": {"runId": logged["empty"]}})
    info = empty["data"]["mlflow_get_run"]["run"]["info"]
    assert (info["status"], info["end_time"]) == ("RUNNING", "0")  # proto defaults


def test_search_runs(pair: Pair, logged: dict[str, Ref]) -> None:
    payload = {
        "query": SEARCH_RUNS,
        "variables": {"data": {"experimentIds": [logged["exp"]], "filter": ""}},
    }
    ref, tet = graphql(pair, payload)
    assert ref == tet
    assert len(tet["data"]["mlflow_search_runs"]["runs"]) == 2
    # A page of one, with its token.
    query = """query Q($data: MlflowSearchRunsInput!) {
      mlflowSearchRuns(input: $data) { runs { info { runName } } nextPageToken }
    }"""
    data = {"experimentIds": [logged["exp"]], "maxResults": 1, "orderBy": ["attributes.run_name"]}
    page = same(pair, query, {"data": data})
    assert page["data"]["mlflow_search_runs"]["next_page_token"] == "<token>"
    mutation = """mutation S($data: MlflowSearchRunsInput!) {
      mlflowSearchRuns(input: $data) { runs { info { runName } } }
    }"""
    same(pair, mutation, {"data": {"experimentIds": [logged["exp"]]}})


def test_search_runs_view_type(tether_rest: MlflowRest) -> None:
    """Deviation: mlflow server fails on any runViewType ("Failed to parse run_view_type
    field: int() argument must be ... not 'EnumMeta'"); the UI never sends one. Tether
    applies it."""
    exp = tether_rest.post("experiments/create", {"name": unique_name("gql")}).json
    run = tether_rest.post("runs/create", {"experiment_id": exp["experiment_id"]}).json
    tether_rest.post("runs/delete", {"run_id": run["run"]["info"]["run_id"]})
    query = """query Q($data: MlflowSearchRunsInput!) {
      mlflowSearchRuns(input: $data) { runs { info { lifecycleStage } } }
    }"""
    for view, expected in (
        ("ACTIVE_ONLY", []),
        ("DELETED_ONLY", ["deleted"]),
        ("ALL", ["deleted"]),
    ):
        data = {"experimentIds": [exp["experiment_id"]], "runViewType": view}
        body = tether_rest.post("/graphql", {"query": query, "variables": {"data": data}}).json
        assert body["errors"] is None, body
        runs = body["data"]["mlflowSearchRuns"]["runs"]
        assert [r["info"]["lifecycleStage"] for r in runs] == expected, view


def test_metric_history_bulk_interval(pair: Pair, logged: dict[str, Ref]) -> None:
    variables = {"data": {"runIds": [logged["run"]], "metricKey": "loss", "maxResults": 5}}
    body = same(pair, BULK_INTERVAL, variables)
    metrics = body["data"]["mlflow_get_metric_history_bulk_interval"]["metrics"]
    # MLflow reads max_results from the HTTP query string, not the input: all 30 points.
    assert len(metrics) == 30
    assert metrics[0]["step"] == "0"
    same(pair, BULK_INTERVAL, {"data": {"runIds": [logged["run"]], "metricKey": "none"}})


def test_errors_are_strings_and_data_null(pair: Pair, logged: dict[str, Ref]) -> None:
    body = same(pair, GET_RUN, {"data": {"runId": "f" * 32}})
    assert body["data"] == {"mlflow_get_run": None} and len(body["errors"]) == 1
    same(pair, GET_RUN, {"data": {}})
    same(pair, GET_EXPERIMENT, {"input": {"experimentId": "999999"}})
    same(pair, GET_EXPERIMENT, {"input": {"experimentId": "abc"}})
    bad_filter = {"data": {"experimentIds": [logged["exp"]], "filter": "attributes.nope = 'x'"}}
    ref, tet = graphql(pair, {"query": SEARCH_RUNS, "variables": bad_filter})
    assert ref["data"] == tet["data"] == {"mlflow_search_runs": None}
    for body in (ref, tet):  # MLflow lists the valid keys from a set: their order varies
        assert body["errors"][0].startswith("Invalid attribute key 'nope' specified.")
    same(pair, "{ nope }")
    same(pair, GET_RUN, {"data": {"runId": 5}})  # a variable of the wrong type
    same(pair, GET_RUN)  # a required variable missing
    same(pair, '{ test(inputString: "hi") { output } }')
    same(pair, 'mutation { testMutation(inputString: "hi") { output } }')


def test_batching_limits(pair: Pair) -> None:
    roots = " ".join(f'a{i}: test(inputString: "x") {{ output }}' for i in range(11))
    body = same(pair, "{ " + roots + " }")
    assert body["data"] is None and "at most 10 root fields" in body["errors"][0]
    aliases = " ".join(f"o{i}: output" for i in range(11))
    body = same(pair, '{ test(inputString: "x") { ' + aliases + " } }")
    assert body["data"] is None and "at most 10 aliases" in body["errors"][0]
    deep = "{ __schema { types { fields { type " + "{ ofType " * 7 + "{ name }" + " }" * 11
    body = same(pair, deep)
    assert body["data"] is None and "maximum depth of 10" in body["errors"][0]
    body = same(pair, "{ __schema { queryType { name } } }")
    assert body["data"] == {"__schema": {"query_type": {"name": "Query"}}}
    same(pair, 'fragment F on Test { output ...F } { test(inputString: "x") { ...F } }')


def test_limit_message_names_tethers_variable(pair: Pair) -> None:
    roots = " ".join(f'a{i}: test(inputString: "x") {{ output }}' for i in range(11))
    tet = pair.rest["tet"].post("/graphql", json={"query": "{ " + roots + " }"}).json
    assert "set the TETHER_GRAPHQL_MAX_ROOT_FIELDS environment variable" in tet["errors"][0]


def test_http_refusals(pair: Pair) -> None:
    """Content-Type checks match MLflow's 400s; where MLflow answers 500 (a broken request),
    Tether answers 400 with MLflow's error body."""
    query = '{"query": "{ test(inputString: \\"a\\") { output } }"}'
    for headers in ({"content-type": "text/plain"}, {}):
        answers = [
            pair.rest[side].request("POST", "/graphql", content=query, headers=headers)
            for side in ("ref", "tet")
        ]
        assert answers[0].status == answers[1].status == 400
        assert answers[0].json["message"] == answers[1].json["message"]
    broken = [
        {"content": "[" + query + "]"},  # a batch array
        {"content": '{"query'},  # not JSON
        {"content": "{}"},  # no query
        {"content": '{"query": "{ test("}'},  # syntax error
    ]
    for request in broken:
        headers = {"content-type": "application/json"}
        ref = pair.rest["ref"].request("POST", "/graphql", headers=headers, **request)
        tet = pair.rest["tet"].request("POST", "/graphql", headers=headers, **request)
        assert ref.status == 500, request
        assert (tet.status, tet.error_code) == (400, "INVALID_PARAMETER_VALUE"), tet.text


def test_get_requests(pair: Pair) -> None:
    """GET with a JSON body, as MLflow reads it; Tether also takes the query string."""
    query = '{ test(inputString: "a") { output } }'
    answers = [
        pair.rest[side].request("GET", "/graphql", json={"query": query}) for side in ("ref", "tet")
    ]
    assert answers[0].json == answers[1].json == {"data": {"test": {"output": "a"}}, "errors": None}
    by_query = pair.rest["tet"].get("/graphql", {"query": query})
    assert by_query.status == 200 and by_query.json["data"] == {"test": {"output": "a"}}
