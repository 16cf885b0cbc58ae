"""Request-level errors: body parsing, content types, methods, unknown endpoints.

Deliberate deviations asserted here:
- error bodies carry `error_code` and `message` only: MLflow 3.x adds `sqlstate` and
  `error_class` (diagnostics no MLflow client reads).
- a body that is not JSON: MLflow treats it as empty and complains about the first required
  field; Tether answers the same 400 INVALID_PARAMETER_VALUE, saying the JSON is malformed.
- a JSON body that is not an object (`[1, 2]`): MLflow crashes (500, HTML); Tether answers 400.
- unknown endpoints (404) and wrong methods (405): same statuses, but Tether answers an MLflow
  error JSON (ENDPOINT_NOT_FOUND / BAD_REQUEST) where MLflow serves an HTML page.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from compat.diff import Pair, Ref

DOCS = " See the API docs for more information about request parameters."
JSON = {"Content-Type": "application/json"}


def _fixed(content: bytes) -> Callable[[str], bytes]:
    return lambda _side: content


def test_error_body_shape(pair: Pair) -> None:
    out = pair.same_error(
        "GET",
        "experiments/get",
        {"experiment_id": "987654321"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )
    assert set(out.ref.json) == {"error_code", "message", "sqlstate", "error_class"}
    assert set(out.tet.json) == {"error_code", "message"}
    assert out.tet.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("text/plain", "Bad Request. Content-Type must be one of ['application/json']."),
        (
            "application/x-www-form-urlencoded",
            "Bad Request. Content-Type must be one of ['application/json'].",
        ),
    ],
)
def test_post_requires_json_content_type(pair: Pair, content_type: str, message: str) -> None:
    name = b'{"name": "never-created-by-a-form-post"}'
    out = pair.send_raw("experiments/create", _fixed(name), **{"Content-Type": content_type})
    for answer in (out.ref, out.tet):
        assert (answer.status, answer.error_code) == (400, "INVALID_PARAMETER_VALUE")
    assert out.ref_body["message"] == out.tet_body["message"] == message
    pair.same_error(
        "GET",
        "experiments/get-by-name",
        {"experiment_name": "never-created-by-a-form-post"},
        status=404,
        code="RESOURCE_DOES_NOT_EXIST",
    )


def test_post_without_content_type(pair: Pair) -> None:
    answers = [
        rest.request("POST", "experiments/create", content=b'{"name": "x"}')
        for rest in pair.rest.values()
    ]
    for answer in answers:
        assert (answer.status, answer.error_code) == (400, "INVALID_PARAMETER_VALUE")
        assert answer.json["message"] == "Bad Request. Content-Type header is missing."


def test_content_type_with_charset(pair: Pair) -> None:
    exp = pair.experiment()
    out = pair.send_raw(
        "runs/create",
        lambda side: (
            f'{{"experiment_id": "{exp.side(side)}", "run_name": "c", "start_time": 1}}'.encode()
        ),
        **{"Content-Type": "application/json; charset=utf-8"},
    )
    assert out.ref.status == out.tet.status == 200


def test_empty_body_is_an_empty_request(pair: Pair) -> None:
    out = pair.send_raw("runs/log-metric", _fixed(b""), **JSON)
    for answer in (out.ref, out.tet):
        assert (answer.status, answer.error_code) == (400, "INVALID_PARAMETER_VALUE")
    assert (
        out.tet_body["message"]
        == out.ref_body["message"]
        == ("Missing value for required parameter 'run_id'." + DOCS)
    )


def test_double_encoded_body(pair: Pair) -> None:
    """Older clients post their JSON as a JSON string; MLflow decodes it twice."""
    exp = pair.experiment()

    def body(side: str) -> bytes:
        inner = f'{{"experiment_id": "{exp.side(side)}", "run_name": "d", "start_time": 3}}'
        return ('"' + inner.replace('"', '\\"') + '"').encode()

    out = pair.send_raw("runs/create", body, **JSON)
    assert out.ref.status == out.tet.status == 200
    assert out.ref_body["run"]["info"]["run_name"] == out.tet_body["run"]["info"]["run_name"] == "d"


def test_malformed_json(pair: Pair) -> None:
    out = pair.send_raw("runs/log-metric", _fixed(b'{"run_id": '), **JSON)
    for answer in (out.ref, out.tet):
        assert (answer.status, answer.error_code) == (400, "INVALID_PARAMETER_VALUE")
    assert out.tet_body["message"].startswith("Malformed JSON request body")


def test_non_object_json(pair: Pair) -> None:
    out = pair.send_raw("runs/log-metric", _fixed(b"[1, 2]"), **JSON)
    assert out.ref.status == 500
    assert (out.tet.status, out.tet.error_code) == (400, "INVALID_PARAMETER_VALUE")
    assert "JSON object" in out.tet.json["message"]


def test_wrong_method(pair: Pair) -> None:
    for method, path in (
        ("POST", "runs/get"),
        ("POST", "experiments/get"),
        ("GET", "runs/search"),
        ("GET", "runs/log-metric"),
        ("DELETE", "experiments/create"),
    ):
        answers = [rest.request(method, path) for rest in pair.rest.values()]
        assert [a.status for a in answers] == [405, 405], (method, path)
        assert answers[1].json["error_code"] == "BAD_REQUEST"


def test_unknown_endpoint(pair: Pair) -> None:
    for path in ("runs/nope", "/api/2.0/mlflow/experiments", "/api/2.0/preview/mlflow/x/y"):
        answers = [rest.get(path) for rest in pair.rest.values()]
        assert [a.status for a in answers] == [404, 404], path
        assert answers[1].json["error_code"] == "ENDPOINT_NOT_FOUND"


def test_both_prefixes_and_both_search_methods(pair: Pair) -> None:
    exp = pair.experiment()
    run = pair.run(exp)
    api = pair.same("GET", "runs/get", {"run_id": run})
    ajax = Pair(*(r.with_prefix("/ajax-api/2.0/mlflow") for r in pair.rest.values()))
    ajax.sides = pair.sides
    ajax.norm = pair.norm
    assert ajax.same("GET", "runs/get", {"run_id": run}) == api
    query = {"filter": "name = 'Default'", "max_results": 5}
    assert pair.same("GET", "experiments/search", query) == pair.same(
        "POST", "experiments/search", query
    )


def test_run_uuid_alias(pair: Pair) -> None:
    run: Ref = pair.run(pair.experiment())
    pair.same(
        "POST",
        "runs/log-metric",
        {"run_uuid": run, "key": "m", "value": 1, "timestamp": 1},
        status=200,
    )
    pair.same("POST", "runs/set-tag", {"run_uuid": run, "key": "t", "value": "v"}, status=200)
    body = pair.same("GET", "runs/get", {"run_uuid": run}, status=200)
    assert body["run"]["data"]["metrics"][0]["key"] == "m"
