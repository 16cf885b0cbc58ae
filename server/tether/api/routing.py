"""Register endpoints, all in one way, and hand each one its parsed request message.

    api = Router("runs", prefixes=MLFLOW_PREFIXES)

    @api.post("/runs/create")
    async def create_run(body: schemas.CreateRun, service: Runs) -> schemas.RunResponse: ...

The router reads an endpoint's signature once, when it is registered:
- the parameter annotated with a request model (`tether.wire.RequestModel`) is the request
  message: read from the query string on GET and from the JSON body otherwise, and parsed
  with MLflow's rules and wording (`tether.api.request.read_body`). FastAPI never sees it, so
  it never answers a 422 or walks the body through its own validation;
- a parameter annotated `Visibility` gets what the caller may read, as the route's access
  rule found it (`tether.api.access`): searches add it to their SQL;
- every other parameter is FastAPI's as usual: the `Request`, dependencies (the services,
  `tether.api.deps`), path parameters;
- the return annotation is the 200 answer's shape in the OpenAPI document
  (`tether.api.openapi`): a TypedDict for a JSON body, a `StreamingResponse` for a byte stream.

A dict answer is encoded with orjson directly (`_answer`). A route is served at its path under
every prefix of its router (MLflow's API answers at /api/2.0/mlflow and /ajax-api/2.0/mlflow;
a route may name its own `prefixes`); only the first is documented. `registered` lists every
(method, path) with the callable FastAPI calls, which `tether.api.dispatch` calls itself for
fixed paths: the same parsing either way.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from tether.api import access as rules
from tether.api.access import Rule
from tether.api.request import read_body
from tether.api.responses import JsonResponse
from tether.db.visibility import Visibility
from tether.wire import RequestModel

MLFLOW_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
MLFLOW3_PREFIXES = ("/api/3.0/mlflow", "/ajax-api/3.0/mlflow")

Endpoint = Callable[..., Awaitable[Response]]
Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class RouteDoc:
    """What an endpoint reads and answers, for the OpenAPI document only.

    `request`: the request model, read from the query string on GET and from a JSON body
    otherwise. `response`: the 200 JSON body's type (a TypedDict). `binary_request` /
    `binary_response`: the body is a raw byte stream (application/octet-stream) instead.
    `empty_response`: the 200 answer has no body at all. `same_body_on`: other statuses
    answered with the 200 body's shape rather than MLflow's error body (readiness's 503).
    `ok_status`: the success status, when MLflow's is not 200 (201 Created, 204 No Content).
    `text_on`: statuses answered with a plain-text sentence rather than an error body (the
    workspace API's 503 while workspaces are off, as MLflow words it).
    """

    request: type[RequestModel] | None = None
    response: Any = None
    binary_request: bool = False
    binary_response: bool = False
    empty_response: bool = False
    same_body_on: tuple[int, ...] = ()
    ok_status: int = 200
    text_on: tuple[int, ...] = ()


def route_doc(endpoint: Callable[..., Any]) -> RouteDoc | None:
    """The documentation a Router recorded for the callable it registered, if any."""
    doc: RouteDoc | None = getattr(endpoint, "route_doc", None)
    return doc


@dataclass(frozen=True)
class Registered:
    """One (method, path) a Router serves: `endpoint` is what FastAPI calls (request message
    parsed, answer encoded), after the router's own `dependencies` (FastAPI `Depends`)."""

    method: str
    path: str
    endpoint: Endpoint
    dependencies: tuple[Any, ...] = ()


class Router:
    """Routes of one tag under `prefixes` ("": at the path itself), all registered through
    `route` (or `get`, `post`, ...). `dependencies` run before each of its endpoints."""

    def __init__(
        self, tag: str, *, prefixes: tuple[str, ...] = ("",), dependencies: Sequence[Any] = ()
    ) -> None:
        self.prefixes = prefixes
        self.dependencies = tuple(dependencies)
        self.router = APIRouter(
            tags=[tag], default_response_class=JsonResponse, dependencies=list(dependencies)
        )
        self.registered: list[Registered] = []  # in registration order (tether.api.dispatch)

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["GET"], **options)

    def post(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["POST"], **options)

    def put(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["PUT"], **options)

    def patch(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["PATCH"], **options)

    def delete(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["DELETE"], **options)

    def route(
        self,
        path: str,
        methods: list[str],
        *,
        prefixes: tuple[str, ...] | None = None,
        documented: bool = True,
        response_class: type[Response] = JsonResponse,
        response: Any = None,
        binary_request: bool = False,
        empty_response: bool = False,
        same_body_on: tuple[int, ...] = (),
        ok_status: int = 200,
        text_on: tuple[int, ...] = (),
        access: Rule | None = None,
        openapi_extra: dict[str, Any] | None = None,
    ) -> Callable[[Handler], Handler]:
        """Serve the decorated endpoint at `path` under each prefix, for each method.

        `access` is what the caller needs (`tether.api.access`), checked once the request
        message is parsed and before the endpoint runs. `documented=False` leaves the route
        out of the OpenAPI document. `response_class` encodes an answer that is not already
        a Response (JSON by default). `response` overrides the documented 200 body when the
        endpoint returns a Response itself; `openapi_extra` is merged into the operation's
        document as given (for a route that is not JSON, which the document cannot describe
        from annotations); the other options are `RouteDoc`'s."""

        def decorator(handler: Handler) -> Handler:
            endpoint, body, returns = _endpoint(handler, response_class, access)
            if issubclass(response_class, JsonResponse):  # the document describes JSON routes
                binary = _is_response(returns, StreamingResponse)
                bodiless = returns in (None, Any, NoReturn) or _is_response(returns, Response)
                shape = None if bodiless else returns
                endpoint.route_doc = RouteDoc(  # type: ignore[attr-defined]
                    request=body,
                    response=response if response is not None else shape,
                    binary_request=binary_request,
                    binary_response=binary,
                    empty_response=empty_response,
                    same_body_on=same_body_on,
                    ok_status=ok_status,
                    text_on=text_on,
                )
            # One route per method, so each documented operation has its own operationId.
            for index, prefix in enumerate(prefixes or self.prefixes):
                for method in methods:
                    self.router.add_api_route(
                        prefix + path,
                        endpoint,
                        methods=[method],
                        response_model=None,  # shapes are documented from the annotations
                        response_class=response_class,
                        include_in_schema=documented and index == 0,
                        openapi_extra=openapi_extra,
                        name=handler.__name__ if index == 0 else f"{handler.__name__}_ajax",
                    )
                    self.registered.append(
                        Registered(method, prefix + path, endpoint, self.dependencies)
                    )
            return handler

        return decorator


def _is_response(annotation: Any, cls: type[Response]) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, cls)


def _endpoint(
    handler: Handler, response_class: type[Response], rule: Rule | None
) -> tuple[Endpoint, type[RequestModel] | None, Any]:
    """(what FastAPI calls, the request model if any, the return annotation) of a handler.

    The callable's signature is the handler's without the request message, plus the
    `Request` it is read from and checked against (`rule`): FastAPI (and
    tether.api.dispatch) provide the rest."""
    if not inspect.iscoroutinefunction(handler):
        raise TypeError(f"{handler.__qualname__}: endpoints are coroutine functions")
    hints = typing.get_type_hints(handler, include_extras=True)
    message: tuple[str, type[RequestModel]] | None = None
    request_name: str | None = None
    visibility: str | None = None
    parameters = []
    for parameter in inspect.signature(handler).parameters.values():
        hint = hints.get(parameter.name, Any)
        if inspect.isclass(hint) and issubclass(hint, RequestModel):
            if message is not None:
                raise TypeError(f"{handler.__qualname__}: two request messages")
            message = (parameter.name, hint)
            continue
        if hint is Visibility:
            if visibility is not None:
                raise TypeError(f"{handler.__qualname__}: two Visibility parameters")
            visibility = parameter.name
            continue
        if hint is Request:
            request_name = parameter.name
        # Keyword-only: FastAPI passes keywords, and parameters with defaults may come first.
        parameters.append(parameter.replace(annotation=hint, kind=inspect.Parameter.KEYWORD_ONLY))
    takes_request = request_name is not None
    if request_name is None:
        if any(p.name == "request" for p in parameters):
            raise TypeError(f"{handler.__qualname__}: a parameter named request is not one")
        request_name = "request"
        parameters.append(
            inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request)
        )
    endpoint = _call(
        handler, response_class, rule, message, request_name, takes_request, visibility
    )
    if rule is not None:
        endpoint.access_rule = rule  # type: ignore[attr-defined]
    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__annotations__ = {p.name: p.annotation for p in parameters}
    endpoint.__name__ = handler.__name__
    endpoint.__qualname__ = handler.__qualname__
    endpoint.__module__ = handler.__module__
    endpoint.__doc__ = handler.__doc__
    return endpoint, message[1] if message else None, hints.get("return")


def _call(
    handler: Handler,
    response_class: type[Response],
    rule: Rule | None,
    message: tuple[str, type[RequestModel]] | None,
    request_name: str,
    takes_request: bool,
    visibility: str | None,
) -> Endpoint:
    """The handler, called with its request message (if it has one) read from the request
    (`request_name`; left out of the call unless the handler `takes_request` too), once the
    caller passed the route's `rule`; its `Visibility` parameter (if any) gets what the check
    found the caller may read."""
    effect = rule is not None and rule.effect is not None

    async def endpoint(**kwargs: Any) -> Response:
        request = kwargs[request_name] if takes_request else kwargs.pop(request_name)
        parsed = None
        if message is not None:
            rules.admit(request, rule)
            parsed = kwargs[message[0]] = await read_body(request, message[1])
        await rules.check(request, rule, parsed)
        if visibility is not None:
            kwargs[visibility] = rules.visible(request)
        answer = await handler(**kwargs)
        if effect:
            gate = rules.gate_of(request)
            if gate is not None and rule is not None:
                await gate.after(request, rule, parsed, answer)
        return _answer(answer, response_class)

    return endpoint


def _answer(answer: Any, response_class: type[Response]) -> Response:
    """A handler's answer as a Response. A plain dict is encoded with orjson directly: left to
    FastAPI, every answer would first be walked through pydantic (or, without a response
    model, the far slower `jsonable_encoder`): ~7 ms of a 1000-run search page spent before
    encoding even starts."""
    return answer if isinstance(answer, Response) else response_class(answer)
