"""Regression tests for issue 13's request-body findings, on SQLite and PostgreSQL: each input
below used to answer 500 (or stall the event loop); each is now a 400
INVALID_PARAMETER_VALUE that writes nothing (no outbox record), and what MLflow accepts
(NaN, Infinity, emoji as surrogate pairs, a double-encoded body) still works.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support import MlflowRest, TetherServer, unique_name
from support.outbox import last_outbox_id, open_store, outbox_after
from tether.api.jsonbody import MAX_CONTAINERS, MAX_DEPTH, MAX_ELEMENTS

LONE = "\ud800"


@pytest.fixture(scope="module")
def ids(tether_server: TetherServer) -> dict[str, str]:
    with tether_server.rest() as rest:
        experiment_id = rest.post("experiments/create", {"name": unique_name()}).json[
            "experiment_id"
        ]
        run_id = rest.post("runs/create", {"experiment_id": experiment_id}).json["run"]["info"][
            "run_id"
        ]
        model = unique_name()
        assert rest.post("registered-models/create", {"name": model}).status == 200
        return {"experiment_id": experiment_id, "run_id": run_id, "model": model}


@pytest.fixture
def http(tether_server: TetherServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tether_server.url, timeout=120, trust_env=False) as client:
        yield client


def _surrogate_requests(ids: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    """The 17 endpoints of the issue, each with a lone surrogate in one string field."""
    run, exp, model = ids["run_id"], ids["experiment_id"], ids["model"]
    lm_search = {"experiment_ids": [exp], "filter": f"name = '{LONE}'"}
    return [
        ("POST", "runs/log-parameter", {"run_id": run, "key": f"k{LONE}", "value": "v"}),
        ("POST", "runs/set-tag", {"run_id": run, "key": "k", "value": LONE}),
        ("POST", "runs/log-batch", {"run_id": run, "params": [{"key": LONE, "value": "v"}]}),
        (
            "POST",
            "runs/log-inputs",
            {
                "run_id": run,
                "datasets": [
                    {"dataset": {"name": LONE, "digest": "d", "source_type": "s", "source": "x"}}
                ],
            },
        ),
        ("POST", "runs/create", {"experiment_id": exp, "tags": [{"key": "k", "value": LONE}]}),
        ("POST", "runs/update", {"run_id": run, "run_name": LONE}),
        ("POST", "runs/search", {"experiment_ids": [exp], "filter": f"params.a = '{LONE}'"}),
        ("POST", "experiments/create", {"name": f"e{LONE}"}),
        ("POST", "experiments/search", {"filter": f"name = '{LONE}'"}),
        (
            "POST",
            "experiments/set-experiment-tag",
            {"experiment_id": exp, "key": LONE, "value": "v"},
        ),
        ("POST", "registered-models/create", {"name": f"m{LONE}"}),
        ("PATCH", "registered-models/update", {"name": model, "description": LONE}),
        ("POST", "registered-models/alias", {"name": model, "alias": LONE, "version": "1"}),
        ("POST", "registered-models/get-latest-versions", {"name": f"{model}{LONE}"}),
        ("POST", "logged-models", {"experiment_id": exp, "name": LONE}),
        ("POST", "logged-models/search", lm_search),
        ("POST", "runs/delete-tag", {"run_id": run, "key": LONE}),
    ]


def _send(http: httpx.Client, method: str, path: str, body: bytes) -> httpx.Response:
    return http.request(
        method,
        f"/api/2.0/mlflow/{path}",
        content=body,
        headers={"content-type": "application/json"},
    )


def _refused_without_writing(
    tether_server: TetherServer, http: httpx.Client, method: str, path: str, body: bytes
) -> httpx.Response:
    with open_store(tether_server.backend_uri) as db:
        last = last_outbox_id(db)
        answer = _send(http, method, path, body)
        assert answer.status_code == 400, (path, answer.text[:300])
        assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE", answer.text[:300]
        assert outbox_after(db, last) == []
    return answer


@pytest.mark.parametrize("raw", [False, True], ids=["escaped", "raw-cesu8"])
def test_lone_surrogates_are_refused_on_every_endpoint_that_gave_500(
    tether_server: TetherServer, http: httpx.Client, ids: dict[str, str], raw: bool
) -> None:
    for method, path, fields in _surrogate_requests(ids):
        # Escaped: "\ud800" as JSON writes it; raw: the bytes ED A0 80 (CESU-8) in the body.
        text = json.dumps(fields, ensure_ascii=not raw)
        _refused_without_writing(
            tether_server, http, method, path, text.encode("utf-8", "surrogatepass")
        )


def test_nan_infinity_and_emoji_pairs_are_still_accepted(
    http: httpx.Client, ids: dict[str, str], tether_rest: MlflowRest
) -> None:
    # Python's json (the MLflow client) writes NaN/Infinity literals and emoji as \\u pairs.
    for value in ("NaN", "Infinity", "-Infinity"):
        body = f'{{"run_id": "{ids["run_id"]}", "key": "m", "value": {value}, "timestamp": 1}}'
        answer = _send(http, "POST", "runs/log-metric", body.encode())
        assert answer.status_code == 200, answer.text
    body = f'{{"run_id": "{ids["run_id"]}", "key": "t", "value": "\\ud83d\\ude00", "x": NaN}}'
    assert _send(http, "POST", "runs/set-tag", body.encode()).status_code == 200
    run = tether_rest.get("runs/get", {"run_id": ids["run_id"]}).json["run"]
    history = tether_rest.get("metrics/get-history", {"run_id": ids["run_id"], "metric_key": "m"})
    assert len(history.json["metrics"]) == 3, history.text
    assert {t["key"]: t["value"] for t in run["data"]["tags"]}["t"] == "\U0001f600"


def test_a_double_encoded_body_is_still_accepted(http: httpx.Client, ids: dict[str, str]) -> None:
    inner = json.dumps({"run_id": ids["run_id"], "key": "dbl", "value": "v"})
    answer = _send(http, "POST", "runs/log-parameter", json.dumps(inner).encode())
    assert answer.status_code == 200, answer.text


def test_numbers_beyond_a_double_are_refused(
    tether_server: TetherServer, http: httpx.Client, ids: dict[str, str]
) -> None:
    body = f'{{"run_id": "{ids["run_id"]}", "key": "big", "value": {"9" * 400}, "timestamp": 1}}'
    answer = _refused_without_writing(tether_server, http, "POST", "runs/log-metric", body.encode())
    assert "'value'" in answer.json()["message"]
    assert len(answer.json()["message"]) < 2_000  # the refused value is quoted, cut short


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "experiments/get", "experiment_id"),
        ("POST", "experiments/delete", "experiment_id"),
        ("POST", "experiments/restore", "experiment_id"),
        ("POST", "experiments/update", "experiment_id"),
        ("POST", "experiments/set-experiment-tag", "experiment_id"),
        ("POST", "experiments/delete-experiment-tag", "experiment_id"),
        ("POST", "runs/create", "experiment_id"),
        ("POST", "logged-models", "experiment_id"),
    ],
)
def test_ids_beyond_int64_are_refused(
    tether_server: TetherServer, http: httpx.Client, method: str, path: str, field: str
) -> None:
    for big in (str(2**63), "9" * 400, str(-(2**63) - 1)):
        fields = {field: big, "key": "k", "value": "v", "new_name": "n", "name": "n"}
        if method == "GET":
            answer = http.get(f"/api/2.0/mlflow/{path}", params={field: big})
            assert answer.status_code == 400, answer.text
            assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        else:
            _refused_without_writing(tether_server, http, method, path, json.dumps(fields).encode())


@pytest.mark.parametrize(
    "extra",
    [
        b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),  # past the limit
        b"[" * 2_000 + b"]" * 2_000,  # past orjson's own limit (and the stdlib's recursion)
        b"[" + b"[]," * MAX_CONTAINERS + b"[]]",
        b"[" + b"0," * MAX_ELEMENTS + b"0]",
    ],
    ids=["depth", "depth-2000", "containers", "elements"],
)
@pytest.mark.parametrize("nan", [False, True], ids=["json", "with-nan"])
def test_bodies_past_the_structure_limits_are_refused(
    tether_server: TetherServer, http: httpx.Client, ids: dict[str, str], extra: bytes, nan: bool
) -> None:
    """In an ignored field, as in the issue; with NaN the stdlib parser takes the body."""
    value = b"NaN" if nan else b"1"
    body = b'{"run_id": "%s", "key": "m", "value": %s, "timestamp": 1, "ignored": %s}' % (
        ids["run_id"].encode(),
        value,
        extra,
    )
    answer = _refused_without_writing(tether_server, http, "POST", "runs/log-metric", body)
    assert "Malformed JSON request body" in answer.json()["message"]


def test_bodies_at_the_structure_limits_are_accepted(
    http: httpx.Client, ids: dict[str, str]
) -> None:
    nested = b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1)
    many = b"[" + b"[]," * (MAX_CONTAINERS - 3) + b"[]]"
    for extra in (nested, many):
        body = b'{"run_id": "%s", "key": "lim", "value": 1, "timestamp": 1, "ignored": %s}' % (
            ids["run_id"].encode(),
            extra,
        )
        answer = _send(http, "POST", "runs/log-metric", body)
        assert answer.status_code == 200, answer.text[:300]


@pytest.mark.parametrize(
    "url",
    [
        "/api/2.0/mlflow/experiments/get-by-name?experiment_name=%ED%A0%80",
        "/api/2.0/mlflow/runs/get?run_id=%FF",
        "/api/2.0/mlflow/logged-models/m-%ED%A0%80",
        "/api/2.0/mlflow-artifacts/artifacts/a/%C0%AF",
        "/static-files/%ED%A0%80.js",
    ],
)
def test_urls_that_are_not_utf8_are_refused(http: httpx.Client, url: str) -> None:
    answer = http.get(url)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_a_name_too_long_for_the_file_system_is_not_a_500(http: httpx.Client) -> None:
    answer = http.get("/static-files/" + "x" * 300)
    assert answer.status_code == 404, answer.text


@pytest.mark.parametrize(
    "token",
    [b'{"offset": "\\ud800"}', b'{"offset": "\xed\xa0\x80"}', b'{"experiment_ids": ["\\ud800"]}'],
    ids=["escaped", "raw-cesu8", "in-a-list"],
)
def test_page_tokens_holding_lone_surrogates_are_a_400(http: httpx.Client, token: bytes) -> None:
    """A page token is base64 of JSON the server decodes itself; quoting such a value back in
    the error message made answering it fail (500)."""
    page_token = base64.b64encode(token).decode()
    answers = [
        http.post(
            f"/api/2.0/mlflow/{path}",
            json={"experiment_ids": ["0"], "page_token": page_token},
        )
        for path in ("runs/search", "experiments/search", "logged-models/search")
    ] + [
        http.get(f"/api/2.0/mlflow/{path}", params={"page_token": page_token})
        for path in ("registered-models/search", "model-versions/search")
    ]
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_graphql_bodies_get_the_same_bounds(http: httpx.Client) -> None:
    body = b'{"query": "{ test }", "x": [' + b"[]," * MAX_CONTAINERS + b"[]]}"
    answer = http.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400, answer.text[:300]
    assert "more than" in answer.json()["message"]
    body = b'{"query": "{ test }", "x": "\\ud800"}'
    answer = http.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400, answer.text[:300]


def test_brackets_inside_strings_are_not_nesting(
    http: httpx.Client, ids: dict[str, str], tether_rest: MlflowRest
) -> None:
    """Counting brackets over the raw body sees these; the depth check must not refuse them."""
    for key, value in (
        ("open", "[{" * 1_000),
        ("close", "]}" * 1_000),
        ("pairs", "[" * 500 + "]" * 500),
    ):
        body = json.dumps({"run_id": ids["run_id"], "key": key, "value": value}).encode()
        answer = _send(http, "POST", "runs/log-parameter", body)
        assert answer.status_code == 200, answer.text[:300]
    params = tether_rest.get("runs/get", {"run_id": ids["run_id"]}).json["run"]["data"]["params"]
    assert {p["key"]: p["value"] for p in params}["open"] == "[{" * 1_000


def test_bodies_in_the_encodings_python_json_detects_are_still_accepted(
    http: httpx.Client, ids: dict[str, str]
) -> None:
    """MLflow reads bodies with Python's json, which accepts a UTF-8 BOM and UTF-16/32."""
    text = json.dumps({"run_id": ids["run_id"], "key": "enc", "value": "é"})
    for body in (b"\xef\xbb\xbf" + text.encode(), text.encode("utf-16"), text.encode("utf-32-le")):
        answer = _send(http, "POST", "runs/log-parameter", body)
        assert answer.status_code == 200, answer.text[:300]
