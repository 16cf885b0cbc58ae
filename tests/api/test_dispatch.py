"""Direct dispatch (tether.api.dispatch): which routes skip FastAPI's router, and that a
route answers the same either way (success, MLflow error, unexpected failure)."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from starlette.routing import compile_path

from tether.api import errors
from tether.api.dispatch import DirectDispatch, direct_routes
from tether.api.routing import MLFLOW_PREFIXES, Router
from tether.app import ROUTERS
from tether.errors import invalid_parameter
from tether.wire import Int64, RequestModel, Str

API = "/api/2.0/mlflow"


def _greeting(request: Request) -> str:
    return str(request.headers.get("x-greeting", "hello"))


Greeting = Annotated[str, Depends(_greeting)]


class Echo(RequestModel):
    required = ("word",)
    word: Str
    times: Int64 = 1
    refuse: bool = False
    crash: bool = False


def _router() -> Router:
    api = Router("test", prefixes=MLFLOW_PREFIXES)

    @api.post("/things/echo")
    async def echo(body: Echo, greeting: Greeting) -> dict[str, Any]:
        if body.refuse:
            raise invalid_parameter("refused as asked")
        if body.crash:
            raise RuntimeError("bug")
        return {"greeting": greeting, "got": body.word * body.times}

    @api.get("/things/{thing_id}")
    async def get_thing(thing_id: str) -> dict[str, Any]:
        return {"thing": thing_id}

    @api.get("/things/special")  # also matched by /things/{thing_id}
    async def special(request: Request) -> dict[str, Any]:
        return {"special": True}

    @api.post("/things/count")
    async def count(request: Request, limit: int = 3) -> dict[str, Any]:  # a query parameter
        return {"limit": limit}

    return api


def test_the_mlflow_write_and_search_paths_are_dispatched_directly() -> None:
    table = direct_routes(ROUTERS)
    for prefix in (API, "/ajax-api/2.0/mlflow"):
        for path in ("/runs/log-metric", "/runs/log-batch", "/runs/create", "/runs/search"):
            assert ("POST", prefix + path) in table
        assert ("GET", prefix + "/metrics/get-history") in table
        assert ("GET", prefix + "/logged-models/{model_id}") not in table


def test_every_fixed_path_of_the_app_is_dispatched_directly() -> None:
    """All of them: a fixed-path route left to FastAPI is a route someone made slow."""
    table = direct_routes(ROUTERS)
    entries = [entry for router in ROUTERS for entry in router.registered]
    patterns = [(e.method, compile_path(e.path)[0]) for e in entries if "{" in e.path]
    fixed = {
        (e.method, e.path)
        for e in entries
        if "{" not in e.path
        and not any(m == e.method and regex.match(e.path) for m, regex in patterns)
    }
    assert len(fixed) > 100
    assert fixed == set(table)


def test_routes_needing_fastapi_or_shadowed_are_left_to_it() -> None:
    table = direct_routes([_router()])
    assert ("POST", f"{API}/things/echo") in table
    assert ("GET", f"{API}/things/special") not in table  # FastAPI's order decides
    assert ("GET", f"{API}/things/{{thing_id}}") not in table  # path parameter
    assert ("POST", f"{API}/things/count") not in table  # a parameter FastAPI parses


def _client(direct: bool) -> TestClient:
    api = _router()
    app = FastAPI()
    if direct:
        app.add_middleware(DirectDispatch, fastapi_app=app, routers=[api])
    errors.install(app)
    app.include_router(api.router)
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"word": "ab", "times": "2"}, 200),
        ({"word": "ab", "refuse": True}, 400),
        ({"times": 2}, 400),  # the router's parsing: MLflow's error, never a 422
        ({"word": "ab", "times": "x"}, 400),
        ({"word": "ab", "crash": True}, 500),
    ],
    ids=["ok", "mlflow-error", "missing-field", "invalid-field", "unexpected"],
)
def test_a_direct_route_answers_as_fastapi_does(body: dict[str, Any], status: int) -> None:
    answers = []
    for direct in (False, True):
        with _client(direct) as client:
            response = client.post(f"{API}/things/echo", json=body, headers={"x-greeting": "hi"})
            answers.append((response.status_code, response.json()))
    assert answers[0] == answers[1]
    assert answers[1][0] == status, answers


def test_other_routes_still_reach_fastapi_through_the_dispatcher() -> None:
    with _client(True) as client:
        assert client.get(f"{API}/things/special").json() == {"thing": "special"}
        assert client.post(f"{API}/things/count?limit=5").json() == {"limit": 5}
        missing = client.get(f"{API}/no-such-thing")
        assert missing.status_code == 404
        assert missing.json()["error_code"] == "ENDPOINT_NOT_FOUND"
