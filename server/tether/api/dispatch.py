"""Direct dispatch of the fixed-path MLflow endpoints, in front of FastAPI's router.

Through FastAPI, a request to `/api/2.0/mlflow/runs/log-metric` goes through Starlette's
router (regex matches against route after route, ~300 with both prefixes), FastAPI's
per-request dependency solving, its exit-stack and body-limit layers and Starlette's
exception middleware: together most of the Python time of a small write (bench/RESULTS.md).
Here the endpoint is found by one dict lookup on (method, path) and called with arguments
planned once, when the app is built.

Taken: every route registered through a `Router` with a fixed path whose arguments are the
request and request-only dependencies (the services, `tether.api.deps`; the request message
is read from the request by the registered callable itself, with the same code either way),
and that no parameterised route of the same method could also match. Everything else goes
through FastAPI as before. A failure is answered by the app's own exception handlers, as
FastAPI's exception middleware would.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.params import Depends
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from tether.api.routing import Endpoint, Registered, Router

Handler = Callable[[Request, Exception], Response | Awaitable[Response]]
Provide = Callable[[Request], Any]


@dataclass(frozen=True)
class DirectRoute:
    """What FastAPI would call for one (method, path). `path` and `path_format` stand in for
    the route in the scope (the request metrics label requests by it)."""

    path: str
    endpoint: Endpoint
    arguments: tuple[tuple[str, Provide], ...]
    checks: tuple[Provide, ...]  # the router's dependencies, called first

    @property
    def path_format(self) -> str:
        return self.path

    async def __call__(self, request: Request) -> Response:
        for check in self.checks:
            check(request)
        return await self.endpoint(**{name: provide(request) for name, provide in self.arguments})


class DirectDispatch:
    """Pure ASGI: serves the table's routes itself, passes every other request to `app`."""

    def __init__(self, app: ASGIApp, *, fastapi_app: FastAPI, routers: Iterable[Router]) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.table = direct_routes(routers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        direct = (
            self.table.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if direct is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = direct
        scope["path_params"] = {}
        request = Request(scope, receive, send)
        try:
            response = await direct(request)
        except Exception as exc:
            handler = _handler_for(self.fastapi_app, exc)
            if handler is None:
                raise  # the catch-all middleware outside answers it
            answer = handler(request, exc)
            response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)


def direct_routes(routers: Iterable[Router]) -> dict[tuple[str, str], DirectRoute]:
    """(method, path) -> route, for every registered route this module can call itself."""
    registered = [entry for router in routers for entry in router.registered]
    patterns = [
        (entry.method, compile_path(entry.path)[0]) for entry in registered if "{" in entry.path
    ]
    table: dict[tuple[str, str], DirectRoute] = {}
    for entry in registered:
        key = (entry.method, entry.path)
        if "{" in entry.path or key in table:
            continue
        if any(method == entry.method and regex.match(entry.path) for method, regex in patterns):
            continue  # which route FastAPI picks would depend on the order: leave it to it
        arguments, checks = _plan(entry), _checks(entry)
        if arguments is not None and checks is not None:
            table[key] = DirectRoute(entry.path, entry.endpoint, arguments, checks)
    return table


def _plan(entry: Registered) -> tuple[tuple[str, Provide], ...] | None:
    """How to produce each argument of the endpoint from the request, or None when one needs
    FastAPI (a path or query parameter it would parse, or a richer dependency)."""
    arguments: list[tuple[str, Provide]] = []
    for name, parameter in inspect.signature(entry.endpoint).parameters.items():
        hint = parameter.annotation
        if hint is Request:
            arguments.append((name, _the_request))
            continue
        provide = _request_dependency(hint)
        if provide is None:
            return None
        arguments.append((name, provide))
    return tuple(arguments)


def _checks(entry: Registered) -> tuple[Provide, ...] | None:
    """The router's dependencies as plain request functions, or None when one needs FastAPI."""
    checks = []
    for dependency in entry.dependencies:
        check = _request_function(dependency)
        if check is None:
            return None
        checks.append(check)
    return tuple(checks)


def _request_dependency(hint: Any) -> Provide | None:
    """`Annotated[T, Depends(f)]` where `f(request: Request)` is a plain function."""
    if typing.get_origin(hint) is not typing.Annotated:
        return None
    depends = [m for m in typing.get_args(hint)[1:] if isinstance(m, Depends)]
    if len(depends) != 1:
        return None
    return _request_function(depends[0])


def _request_function(depends: Any) -> Provide | None:
    """The function of a `Depends(f)` where `f(request: Request)` is a plain function."""
    if not isinstance(depends, Depends) or depends.dependency is None:
        return None
    call = depends.dependency
    if not inspect.isfunction(call) or _is_special(call):
        return None
    params = list(inspect.signature(call).parameters)
    hints = typing.get_type_hints(call)
    if len(params) != 1 or hints.get(params[0]) is not Request:
        return None
    return call


def _is_special(call: Callable[..., Any]) -> bool:
    """Coroutines and generators (yield dependencies) need FastAPI's machinery."""
    return (
        inspect.iscoroutinefunction(call)
        or inspect.isgeneratorfunction(call)
        or inspect.isasyncgenfunction(call)
    )


def _the_request(request: Request) -> Request:
    return request


def _handler_for(app: FastAPI, exc: Exception) -> Handler | None:
    handlers: dict[Any, Handler] = app.exception_handlers
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None
