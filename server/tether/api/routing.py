"""Register each endpoint under both prefixes the MLflow client and UI use, and record what its
request and response look like for the OpenAPI document (`tether.api.openapi`).

Endpoints parse their own input (`parse_request`) and return plain dicts, so FastAPI sees
neither shape; the models given here are documentation only and never touch a request.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter
from pydantic import BaseModel

from tether.api.responses import JsonResponse

PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RouteDoc:
    """What an endpoint reads and answers, for the OpenAPI document only.

    `request`: the request model, read from the query string on GET and from a JSON body
    otherwise. `response`: the 200 body's model. `binary_request` / `binary_response`: the
    body is a raw byte stream (application/octet-stream) instead. `empty_response`: the 200
    answer has no body at all. `same_body_on`: other statuses answered with the 200 body's
    shape rather than MLflow's error body (e.g. readiness's 503).
    """

    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    binary_request: bool = False
    binary_response: bool = False
    empty_response: bool = False
    same_body_on: tuple[int, ...] = ()


_DOCS: dict[Callable[..., Any], RouteDoc] = {}


def route_doc(endpoint: Callable[..., Any]) -> RouteDoc | None:
    """The documentation recorded for an endpoint function, if any."""
    return _DOCS.get(endpoint)


def document(
    *,
    request: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    binary_request: bool = False,
    binary_response: bool = False,
    empty_response: bool = False,
    same_body_on: tuple[int, ...] = (),
) -> Callable[[F], F]:
    """Record an endpoint's request and response shapes (decorator; returns the function)."""
    doc = RouteDoc(request, response, binary_request, binary_response, empty_response, same_body_on)

    def decorator(func: F) -> F:
        _DOCS[func] = doc
        return func

    return decorator


@dataclass(frozen=True)
class Registered:
    """One (method, path) an MlflowRouter serves: `handler` is the function as written,
    `endpoint` the callable FastAPI calls (the handler with its answer encoded)."""

    method: str
    path: str
    handler: Callable[..., Any]
    endpoint: Callable[..., Any]


class MlflowRouter:
    def __init__(self, tag: str) -> None:
        self.router = APIRouter(tags=[tag], default_response_class=JsonResponse)
        self.registered: list[Registered] = []  # in registration order (tether.api.dispatch)

    def route(
        self,
        path: str,
        methods: list[str],
        *,
        request: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
    ) -> Callable[[Callable[..., Any]], Any]:
        """Serve `func` at `path` under both prefixes; only /api/2.0/mlflow is documented."""
        record = document(request=request, response=response)

        def decorator(func: Callable[..., Any]) -> Any:
            endpoint = _encoded(func)
            # One route per method, so each documented operation has its own operationId.
            for index, prefix in enumerate(PREFIXES):
                for method in methods:
                    self.router.add_api_route(
                        prefix + path,
                        endpoint,
                        methods=[method],
                        response_model=None,  # shapes are documented by `document`
                        include_in_schema=index == 0,
                        name=func.__name__ if index == 0 else f"{func.__name__}_ajax",
                    )
                    self.registered.append(Registered(method, prefix + path, func, endpoint))
            record(endpoint)  # the OpenAPI builder finds routes by the endpoint they call
            return record(func)

        return decorator


def _encoded(func: Callable[..., Any]) -> Callable[..., Any]:
    """Answer a handler's plain dict with orjson directly. Left to FastAPI, every answer is
    first walked through pydantic (or, without a response model, the far slower
    `jsonable_encoder`): ~7 ms of a 1000-run search page spent before encoding even starts."""

    @functools.wraps(func)
    async def endpoint(*args: Any, **kwargs: Any) -> Any:
        answer = await func(*args, **kwargs)
        return JsonResponse(answer) if isinstance(answer, dict) else answer

    return endpoint
