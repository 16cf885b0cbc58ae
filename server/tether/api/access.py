"""What a route requires of its caller, declared where the route is registered.

    @api.post("/runs/log-batch", access=EDIT.on(run("run_id")))

A `Rule` is an action (read, update, delete, manage: MLflow's permission capabilities; or
public, signed in, admin) and, for resource actions, a `Target`: which kind of resource the
request names and a plain function that reads its id from the parsed request message and the
path parameters. The router checks the rule after it has parsed the message and before the
endpoint runs, in the same code path for FastAPI routing and direct dispatch
(`tether.api.routing`); routes outside a `Router` (the UI's) declare theirs with `guard`.

This module is vocabulary only and knows no domain: what a user may do is decided by the
`Gate` the composition root puts on `app.state.gate` (`tether.auth`), and with no gate
(authentication off) every rule passes. A route without a rule is refused to everyone but
admins (fail closed) and named by the test that enumerates the app's routes.

Adding a route: pick the rule from the table below, e.g.
    read a run           access=READ.on(run("run_id"))
    change an experiment access=EDIT.on(experiment("experiment_id"))
    list things          access=SIGNED_IN.listing("experiment")   (+ a `Visible` parameter)
    operators only       access=ADMIN
    probes, static files access=PUBLIC
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Protocol

import fastapi.routing
from fastapi import Depends, Request

from tether.db.visibility import EVERYTHING, Visibility
from tether.errors import MlflowError


class Action(Enum):
    PUBLIC = "public"  # no credentials needed (probes, static files, server-info)
    SIGNED_IN = "signed_in"  # any signed-in user; the endpoint filters or checks itself
    READ = "read"
    USE = "use"
    UPDATE = "update"  # MLflow's EDIT
    DELETE = "delete"
    MANAGE = "manage"
    ADMIN = "admin"  # Tether admins only (user administration, the sync status)


Locate = Callable[[Any, Mapping[str, Any]], Any]
"""(parsed request message or None, path parameters) -> an id, a list of ids, or None."""


@dataclass(frozen=True)
class Target:
    """The resource a request names: `kind` is one of `KINDS`, `locate` reads its id."""

    kind: str
    locate: Locate
    describe: str = ""  # for error messages and the route listing

    def ids(self, message: Any, path_params: Mapping[str, Any]) -> list[str]:
        found = self.locate(message, path_params)
        if found is None or found == "":
            return []
        if isinstance(found, list | tuple):
            return [str(item) for item in found]
        return [str(found)]


KINDS = (
    "experiment",  # an experiment id
    "experiment_name",
    "run",  # a run id (its experiment decides)
    "logged_model",  # a logged model id (its experiment decides)
    "registered_model",  # a registered model (or prompt) name
    "artifact_path",  # a path in the artifact proxy: <experiment id>/... decides
    "trace",  # a trace (request) id: its experiment decides
    "deployment",  # a deployment's name: the registered model it serves decides
    "deployment_endpoint",  # an online endpoint: the models of all its deployments decide
)


@dataclass(frozen=True)
class Effect:
    """What the permission store must record once the endpoint succeeded: `grant_creator`
    (MANAGE for the caller on the resource the answer names), `forget` (drop every grant on
    the deleted resource), `rename` (move grants to the new name), `workspace_created`
    (seed the new workspace's roles), `workspace_deleted` (drop the workspace's roles)."""

    kind: str
    resource_type: str
    locate: Callable[[Any, Any], Any]  # (message, answer) -> id, or (old, new) for rename
    path_param: str | None = None  # the id is this path parameter instead

    def located(self, message: Any, answer: Any, path_params: Mapping[str, Any]) -> Any:
        if self.path_param is not None:
            return path_params.get(self.path_param)
        return self.locate(message, answer)


@dataclass(frozen=True)
class Rule:
    action: Action
    target: Target | None = None
    also: tuple[Target, ...] = ()  # more resources the same action is needed on
    lists: tuple[str, ...] = ()  # resource types the endpoint filters by what is readable
    effect: Effect | None = None

    def on(self, target: Target) -> Rule:
        return replace(self, target=target)

    def and_on(self, target: Target) -> Rule:
        return replace(self, also=(*self.also, target))

    @property
    def targets(self) -> tuple[Target, ...]:
        return self.also if self.target is None else (self.target, *self.also)

    def listing(self, *resource_types: str) -> Rule:
        return replace(self, lists=resource_types)

    def then(self, effect: Effect) -> Rule:
        return replace(self, effect=effect)

    def __str__(self) -> str:
        text = self.action.value
        if self.targets:
            text += " " + " + ".join(f"{t.kind}({t.describe})" for t in self.targets)
        if self.lists:
            text += f" listing {','.join(self.lists)}"
        return text


PUBLIC = Rule(Action.PUBLIC)
SIGNED_IN = Rule(Action.SIGNED_IN)
READ = Rule(Action.READ)
USE = Rule(Action.USE)
EDIT = Rule(Action.UPDATE)
DELETE = Rule(Action.DELETE)
MANAGE = Rule(Action.MANAGE)
ADMIN = Rule(Action.ADMIN)


# Locators ---------------------------------------------------------------------------------


def message_field(name: str) -> Locate:
    def locate(message: Any, _: Mapping[str, Any]) -> Any:
        return getattr(message, name, None)

    return locate


HEADER = "header:"
"""Key prefix under which the gate's parameters hold the request headers (`RequestParams`)."""


class RequestParams(Mapping[str, Any]):
    """What a locator reads besides the message: the path parameters, and the headers under
    `header:<lower-case name>` (for routes whose body is no message, e.g. OTLP's)."""

    def __init__(self, request: Request) -> None:
        self._request = request

    def __getitem__(self, key: str) -> Any:
        if key.startswith(HEADER):
            value = self._request.headers.get(key[len(HEADER) :])
            if value is None:
                raise KeyError(key)
            return value
        return self._request.path_params[key]

    def __iter__(self) -> Iterator[str]:
        yield from self._request.path_params
        for name in self._request.headers:
            yield HEADER + name

    def __len__(self) -> int:
        return len(self._request.path_params) + len(self._request.headers)


def header(name: str) -> Locate:
    key = HEADER + name.lower()

    def locate(_: Any, params: Mapping[str, Any]) -> Any:
        return params.get(key)

    return locate


def path_param(name: str) -> Locate:
    def locate(_: Any, path_params: Mapping[str, Any]) -> Any:
        return path_params.get(name)

    return locate


def experiment(name: str = "experiment_id") -> Target:
    return Target("experiment", message_field(name), name)


def experiment_named(name: str = "experiment_name") -> Target:
    return Target("experiment_name", message_field(name), name)


def run(name: str = "run_id") -> Target:
    return Target("run", message_field(name), name)


def runs(name: str = "run_ids") -> Target:
    return Target("run", message_field(name), f"each of {name}")


def logged_model(param: str = "model_id") -> Target:
    return Target("logged_model", path_param(param), f"path {param}")


def logged_models(locate: Locate, describe: str) -> Target:
    """Logged models a request names in its message (e.g. the model_id of logged metrics)."""
    return Target("logged_model", locate, describe)


def experiments(locate: Locate, describe: str) -> Target:
    """Experiments a request names elsewhere than one field (nested, or in a header)."""
    return Target("experiment", locate, describe)


def trace(param: str = "trace_id") -> Target:
    """A trace by the id in the path."""
    return Target("trace", path_param(param), f"path {param}")


def traces(name: str) -> Target:
    """Traces by the id (or list of ids) in the message's field `name`."""
    return Target("trace", message_field(name), name)


def deployment(name: str = "name") -> Target:
    return Target("deployment", message_field(name), name)


def deployment_endpoint(name: str = "endpoint") -> Target:
    return Target("deployment_endpoint", message_field(name), name)


def registered_model(name: str = "name") -> Target:
    return Target("registered_model", message_field(name), name)


def registered_models(locate: Locate, describe: str) -> Target:
    """Registered models a request names elsewhere than a `name` field (e.g. in a URI)."""
    return Target("registered_model", locate, describe)


def artifact_path(locate: Locate, describe: str) -> Target:
    return Target("artifact_path", locate, describe)


def grant_creator(resource_type: str, locate: Callable[[Any, Any], Any]) -> Effect:
    return Effect("grant_creator", resource_type, locate)


def forget(resource_type: str, name: str = "name") -> Effect:
    return Effect("forget", resource_type, lambda message, _: getattr(message, name, None))


def rename(resource_type: str, old: str = "name", new: str = "new_name") -> Effect:
    return Effect(
        "rename",
        resource_type,
        lambda message, _: (getattr(message, old, None), getattr(message, new, None)),
    )


def workspace_created(locate: Callable[[Any, Any], Any]) -> Effect:
    return Effect("workspace_created", "workspace", locate)


def workspace_deleted(param: str) -> Effect:
    """The workspace named by the path parameter `param` was deleted."""
    return Effect("workspace_deleted", "workspace", lambda *_: None, path_param=param)


# The gate ---------------------------------------------------------------------------------


class Gate(Protocol):
    """Decides rules for one app (`tether.auth.gate.PermissionGate`)."""

    def admit(self, request: Request, rule: Rule | None) -> None:
        """Before the request message is read: raise 401 unless the caller is signed in
        (or the rule is public), so a stranger's malformed body is never parsed."""

    async def check(self, request: Request, rule: Rule | None, message: Any) -> None:
        """Raise an MlflowError (401, 403) unless the caller may do what `rule` needs; for
        listing rules, leave the caller's `Visibility` on the request (`visible`)."""

    async def after(self, request: Request, rule: Rule, message: Any, answer: Any) -> None:
        """Record the rule's effect once the endpoint succeeded."""


def gate_of(request: Request) -> Gate | None:
    gate: Gate | None = getattr(request.app.state, "gate", None)
    return gate


def admit(request: Request, rule: Rule | None) -> None:
    """The router's first check, before it reads the message: nothing when authentication
    is off."""
    gate = gate_of(request)
    if gate is not None:
        gate.admit(request, rule)


class WorkspaceCheck(Protocol):
    """Refuses resources of another workspace (`tether.workspaces.guard`)."""

    async def check(self, request: Request, rule: Rule | None, message: Any) -> None: ...


async def check(request: Request, rule: Rule | None, message: Any) -> None:
    """The router's check: the gate's (nothing when authentication is off), then the
    resources the rule names are in the request's workspace (with workspaces on). In that
    order because MLflow's auth runs before its handlers: a non-admin naming another
    workspace's resource is refused (403) before anyone could answer that it is missing."""
    gate = gate_of(request)
    if gate is not None:
        await gate.check(request, rule, message)
    workspaces: WorkspaceCheck | None = getattr(request.app.state, "workspace_guard", None)
    if workspaces is not None:
        await workspaces.check(request, rule, message)


VISIBILITY_KEY = "tether.visibility"


def visible(request: Request) -> Visibility:
    """What the caller may read (set by the gate for listing rules; everything without one)."""
    found: Visibility | None = request.scope.get(VISIBILITY_KEY)
    return EVERYTHING if found is None else found


# An endpoint's parameter of this type is filled by the router after the rule's check.
Visible = Visibility


class AuthenticationRequired(MlflowError):
    """401 with the Basic challenge, so browsers and curl ask for credentials."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "UNAUTHENTICATED")

    headers = {"WWW-Authenticate": 'Basic realm="mlflow"'}


def guard(rule: Rule) -> Any:
    """A FastAPI dependency checking `rule` for a route outside a `Router` (no message):
    `@router.get("/tether/", dependencies=[guard(ADMIN)])`."""

    async def check_rule(request: Request) -> None:
        await check(request, rule, None)

    check_rule.access_rule = rule  # type: ignore[attr-defined]
    return Depends(check_rule)


def rule_of(endpoint: Any, dependencies: Any = ()) -> Rule | None:
    """The rule a route declared: on its endpoint (Router) or as a `guard` dependency."""
    rule: Rule | None = getattr(endpoint, "access_rule", None)
    if rule is not None:
        return rule
    for dependency in dependencies:
        call = getattr(dependency, "dependency", None) or getattr(dependency, "call", None)
        found: Rule | None = getattr(call, "access_rule", None)
        if found is not None:
            return found
    return None


# FastAPI's own pages describe the API and hold no data: public, like MLflow's server-info.
FRAMEWORK_PUBLIC_PATHS = ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")


def route_rules(app: Any) -> list[tuple[str, str, Rule | None]]:
    """(method, path, rule or None) of every HTTP route of `app`, for the test that makes
    sure no route is left without one."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = list(contexts(app.routes)) if contexts is not None else app.routes
    found: list[tuple[str, str, Rule | None]] = []
    for route in routes:
        path = getattr(route, "path", "")
        methods = sorted(getattr(route, "methods", None) or ["*"])
        endpoint = getattr(route, "endpoint", None)
        original = getattr(route, "original_route", route)
        rule = rule_of(endpoint, getattr(original, "dependencies", ()))
        if rule is None and path in FRAMEWORK_PUBLIC_PATHS:
            rule = PUBLIC
        found.extend((method, path, rule) for method in methods)
    return found
