"""Decide each route's rule (`tether.api.access.Rule`) for the signed-in caller.

Admins pass every rule. For everyone else a resource rule resolves the resource the request
names to what its permission hangs on, as MLflow does: an experiment (a run, a logged model
and an artifact-proxy path `<experiment id>/...` take their experiment's), or a registered
model by name (its versions, aliases and prompts take the model's). The caller's grants are
read once per request and folded (`permissions.resolve`); the capability the rule names
(read, update, delete, manage) must be there. A run or logged model that does not exist is
refused (403) rather than reported missing, so answers are no oracle for what exists; an
experiment id is judged as it is (an absent one with the default permission), as in MLflow.

A listing rule leaves the caller's `Visibility` on the request for the endpoint's SQL.
A route without any rule is refused to all but admins (fail closed), with a warning. A
creating rule (one whose effect grants the creator MANAGE) needs `permissions.may_create`.

With workspaces on (MLflow 3.17's `--enable-workspaces` with basic-auth), the grants that
count are those of the caller's roles in the request's workspace, and a grant that is absent
means no access (unless `grant_default_workspace_access` opens `default`); a resource the
request names must be in the request's workspace, and one that is not, or does not exist, is
refused (403) to non-admins, as MLflow's resolver denies a resource whose workspace it cannot
resolve (admins then get the workspace guard's 404).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from fastapi import Request

from tether.api.access import (
    VISIBILITY_KEY,
    Action,
    AuthenticationRequired,
    RequestParams,
    Rule,
    Target,
)
from tether.auth import permissions
from tether.auth.credentials import NOT_AUTHENTICATED, Identity
from tether.auth.permissions import EXPERIMENT, NO_PERMISSIONS, REGISTERED_MODEL, WORKSPACE, Grant
from tether.auth.store import AuthStore
from tether.db import workspace_scope
from tether.db.engine import Database
from tether.db.models import (
    Deployment,
    Experiment,
    LoggedModel,
    RegisteredModel,
    Run,
    TraceInfo,
)
from tether.db.models.workspaces import DEFAULT_WORKSPACE
from tether.db.visibility import Readable, Visibility
from tether.errors import MlflowError, not_found
from tether.threads import blocking

log = logging.getLogger("tether.auth")

IDENTITY_KEY = "tether.identity"
_NEEDS_LOOKUP = object()
# MLflow's `_EXPERIMENT_ID_PATTERN`: non-default workspaces prefix `workspaces/<name>/`.
_EXPERIMENT_PATH = re.compile(r"^(?:workspaces/[^/]+/)?(\d+)(?:/|$)")
# What decides for a resource kind: its row's experiment (never changes, so it is cached).
_EXPERIMENT_OF: dict[str, tuple[Any, Any]] = {
    "run": (Run.experiment_id, Run.run_uuid),
    "logged_model": (LoggedModel.experiment_id, LoggedModel.model_id),
    "trace": (TraceInfo.experiment_id, TraceInfo.request_id),
}


def identity_of(request: Request) -> Identity | None:
    identity: Identity | None = request.scope.get(IDENTITY_KEY)
    return identity


def permission_denied() -> MlflowError:
    return MlflowError("Permission denied", "PERMISSION_DENIED")


class _Lru:
    """Immutable facts (a run's experiment) looked up once."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._items: OrderedDict[str, int | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, int | None]:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return True, self._items[key]
            return False, None

    def put(self, key: str, value: int) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class PermissionGate:
    def __init__(
        self,
        store: AuthStore,
        tracking: Database,
        default_permission: str,
        *,
        workspaces: bool = False,
        grant_default_workspace_access: bool = False,
    ) -> None:
        self.store = store
        self.tracking = tracking
        self.default_permission = default_permission
        self.workspaces = workspaces
        self.grant_default_workspace_access = grant_default_workspace_access
        self._caches = {kind: _Lru() for kind in _EXPERIMENT_OF}

    # tether.api.access.Gate --------------------------------------------------------------

    def admit(self, request: Request, rule: Rule | None) -> None:
        if identity_of(request) is None and (rule is None or rule.action is not Action.PUBLIC):
            raise AuthenticationRequired(NOT_AUTHENTICATED)

    async def check(self, request: Request, rule: Rule | None, message: Any) -> None:
        identity = identity_of(request)
        if rule is not None and rule.action is Action.PUBLIC:
            return
        if identity is None:
            raise AuthenticationRequired(NOT_AUTHENTICATED)
        if identity.is_admin:
            return
        if rule is None:
            log.warning(
                "refused %s %s: the route declares no access rule", request.method, request.url.path
            )
            raise permission_denied()
        if rule.action is Action.ADMIN:
            raise permission_denied()
        creates = rule.effect is not None and rule.effect.kind == "grant_creator"
        if not rule.targets and not rule.lists and not creates:
            return  # signed in is all it takes (the endpoint may check more itself)
        # Without workspaces the grants came with the sign-in and a run's experiment is cached
        # after its first lookup: most checks need no query and run right here, off the
        # thread pool. With workspaces on, the workspace's grants and where each resource is
        # are read (resources move to `default` when their workspace is deleted: no cache).
        path_params = RequestParams(request)
        allowed: bool | Visibility | object = _NEEDS_LOOKUP
        if workspace_scope.active() is None:
            allowed = self._decide(identity, rule, message, path_params, lookups=False)
        if allowed is _NEEDS_LOOKUP:
            allowed = await blocking(self._decide, identity, rule, message, path_params)
        if isinstance(allowed, Visibility):
            request.scope[VISIBILITY_KEY] = allowed
        elif not allowed:
            raise permission_denied()

    async def after(self, request: Request, rule: Rule, message: Any, answer: Any) -> None:
        effect = rule.effect
        identity = identity_of(request)
        if effect is None:
            return
        located = effect.located(message, answer, request.path_params)
        workspace = workspace_scope.current()
        if effect.kind == "grant_creator" and identity is not None and located:
            await blocking(
                self.store.grant_creator,
                identity.user_id,
                effect.resource_type,
                str(located),
                workspace,
            )
        elif effect.kind == "forget" and located:
            await blocking(self.store.forget, effect.resource_type, str(located), workspace)
        elif effect.kind == "rename" and located and all(located):
            old, new = located
            await blocking(self.store.rename, effect.resource_type, str(old), str(new), workspace)
        elif effect.kind == "workspace_created" and located:
            if self.seed_roles:
                await blocking(self.store.seed_workspace_roles, str(located))
        elif effect.kind == "workspace_deleted" and located:
            await blocking(self.store.drop_workspace, str(located))

    # Decisions (in a worker thread) ----------------------------------------------------

    seed_roles: bool = True  # MLFLOW_RBAC_SEED_DEFAULT_ROLES (set by `install`)

    def default_for(self, identity: Identity) -> str:
        return identity.default_permission or self.default_permission

    def absent(self, default: str, workspace: str | None) -> str:
        """What a caller with no grant on a resource gets in `workspace` (None: workspaces
        off): the default permission, or with workspaces on nothing, unless the operator
        opened the default workspace (MLflow's `_absent_permission`)."""
        if workspace is None:
            return default
        if self.grant_default_workspace_access and workspace == DEFAULT_WORKSPACE:
            return default
        return NO_PERMISSIONS.name

    def grants_for(self, identity: Identity, workspace: str | None) -> list[Grant]:
        """The caller's grants in `workspace` (None: workspaces off, the default one's).
        The default workspace's came with the sign-in; another's is a query."""
        if workspace is None or workspace == DEFAULT_WORKSPACE:
            return list(identity.grants)
        return self.store.grants_of(identity.user_id, workspace)

    def _decide(
        self,
        identity: Identity,
        rule: Rule,
        message: Any,
        path_params: Mapping[str, Any],
        lookups: bool = True,
    ) -> bool | Visibility | object:
        """Allowed, refused, or the caller's Visibility; `_NEEDS_LOOKUP` when a resource's
        experiment is not cached and `lookups` (a query: not on the event loop) is off."""
        workspace = workspace_scope.active()
        grants = self.grants_for(identity, workspace)
        default = self.default_for(identity)
        absent = self.absent(default, workspace)
        action = rule.action.value
        effect = rule.effect
        if (
            effect is not None
            and effect.kind == "grant_creator"
            and not permissions.may_create(
                grants, effect.resource_type, default, absent, workspace is not None
            )
        ):
            return False
        for target in rule.targets:
            anchors = self._anchors(target, message, path_params, lookups)
            if anchors is None:
                return _NEEDS_LOOKUP
            for resource in anchors:
                if resource is None:
                    return False
                kind, resource_id = resource
                if kind == WORKSPACE:
                    # The workspace grant as it is, not floored (MLflow's artifact proxy).
                    held = permissions.workspace_grant(grants)
                    permission = permissions.get(held or absent)
                else:
                    permission = permissions.resolve(grants, kind, resource_id, default, absent)
                if not permission.allows(action):
                    return False
        if rule.lists == (WORKSPACE,):
            return Visibility(workspaces=frozenset(self.listable_workspaces(identity)))
        if rule.lists:
            return self.visibility(grants, default, rule.lists, absent)
        return True

    def listable_workspaces(self, identity: Identity) -> set[str]:
        """The workspaces a non-admin sees listed (MLflow's `filter_list_workspaces`)."""
        found = self.store.accessible_workspaces(identity.user_id)
        if self.grant_default_workspace_access:
            found.add(DEFAULT_WORKSPACE)
        return found

    def visibility(
        self, grants: list[Grant], default: str, types: tuple[str, ...], absent: str | None = None
    ) -> Visibility:
        readable: dict[str, Readable | None] = {}
        for resource_type in types:
            found = permissions.readable_set(grants, resource_type, default, absent)
            readable[resource_type] = None if found is None else Readable(*found)
        return Visibility(readable.get(EXPERIMENT), readable.get(REGISTERED_MODEL))

    def _anchors(
        self, target: Target, message: Any, path_params: Mapping[str, Any], lookups: bool
    ) -> list[tuple[str, str] | None] | None:
        """(resource type, id) whose permission decides, per id the request names; None for
        a resource that does not exist (refused). None overall: a lookup is needed."""
        anchors = self._anchors_anywhere(target, message, path_params, lookups)
        workspace = workspace_scope.active()
        if anchors is None or workspace is None:
            return anchors
        return self._in_workspace(anchors, workspace)

    def in_workspace(self, resource_type: str, resource_id: str, workspace: str) -> bool:
        """Whether the experiment (by id) or registered model / prompt (by name) is in
        `workspace`."""
        kind = EXPERIMENT if resource_type == EXPERIMENT else REGISTERED_MODEL
        return self._in_workspace([(kind, resource_id)], workspace) != [None]

    def _in_workspace(
        self, anchors: list[tuple[str, str] | None], workspace: str
    ) -> list[tuple[str, str] | None]:
        """Each anchor, or None when it is not in `workspace` (or does not exist)."""
        experiments = {
            int(i) for k, i in filter(None, anchors) if k == EXPERIMENT and i.isdecimal()
        }
        models = {i for k, i in filter(None, anchors) if k == REGISTERED_MODEL}
        experiments_here: set[str] = set()
        models_here: set[str] = set()
        if experiments or models:  # a workspace-wide anchor alone needs no query
            with self.tracking.read() as session:
                if experiments:
                    experiments_here = {
                        str(found)
                        for found in session.scalars(
                            sa.select(Experiment.experiment_id).where(
                                Experiment.experiment_id.in_(experiments),
                                Experiment.workspace == workspace,
                            )
                        )
                    }
                if models:
                    models_here = set(
                        session.scalars(
                            sa.select(RegisteredModel.name).where(
                                RegisteredModel.name.in_(models),
                                RegisteredModel.workspace == workspace,
                            )
                        )
                    )
        checked: list[tuple[str, str] | None] = []
        for anchor in anchors:
            if anchor is None or anchor[0] == WORKSPACE:
                checked.append(anchor)
            elif anchor[0] == EXPERIMENT:
                checked.append(anchor if anchor[1] in experiments_here else None)
            else:
                checked.append(anchor if anchor[1] in models_here else None)
        return checked

    def _anchors_anywhere(
        self, target: Target, message: Any, path_params: Mapping[str, Any], lookups: bool
    ) -> list[tuple[str, str] | None] | None:
        ids = target.ids(message, path_params)
        if target.kind == "artifact_path":
            path = ids[0] if ids else ""
            match = _EXPERIMENT_PATH.match(path.lstrip("/"))
            if match:
                return [(EXPERIMENT, match.group(1))]
            # Outside any experiment's folder the default permission speaks without
            # workspaces, the caller's workspace grant with them (MLflow).
            if workspace_scope.active() is None:
                return [(EXPERIMENT, "*")]
            return [(WORKSPACE, "*")]
        if target.kind == "registered_model":
            return [(REGISTERED_MODEL, name) for name in ids]
        if target.kind in ("deployment", "deployment_endpoint"):
            if not lookups:
                return None  # deployments come and go: never cached, looked up off the loop
            return [
                (REGISTERED_MODEL, model) if model is not None else None
                for resource_id in ids
                for model in self._deployed_models(target.kind, resource_id)
            ]
        if target.kind == "experiment":
            return [(EXPERIMENT, experiment_id) for experiment_id in ids]
        anchors: list[tuple[str, str] | None] = []
        for resource_id in ids:
            if not lookups and not self._cached(target.kind, resource_id):
                return None
            experiment_id = self._experiment_of(target.kind, resource_id)
            anchors.append(None if experiment_id is None else (EXPERIMENT, str(experiment_id)))
        return anchors

    def _deployed_models(self, kind: str, resource_id: str) -> list[str | None]:
        """The registered models a live deployment (by name) or every live deployment of an
        endpoint serves, in the request's workspace; [None] when there is none (refused, as a
        missing run is)."""
        column = Deployment.name if kind == "deployment" else Deployment.endpoint
        with self.tracking.read() as session:
            found = session.scalars(
                sa.select(Deployment.model_name).where(
                    column == resource_id,
                    Deployment.workspace == workspace_scope.current(),
                    Deployment.state != "DELETED",
                )
            ).all()
        return list(found) or [None]

    def _cached(self, kind: str, resource_id: str) -> bool:
        cache = self._caches.get(kind)
        return cache is not None and cache.get(resource_id)[0]

    def _experiment_of(self, kind: str, resource_id: str) -> int | None:
        if kind == "experiment_name":
            with self.tracking.read() as session:
                found = session.scalar(
                    sa.select(Experiment.experiment_id).where(
                        Experiment.workspace == workspace_scope.current(),
                        Experiment.name == resource_id,
                    )
                )
            if found is None:
                raise not_found(f"Could not find experiment with name {resource_id}")
            return int(found)
        cache = self._caches[kind]
        column, key = _EXPERIMENT_OF[kind]
        known, value = cache.get(resource_id)
        if known:
            return value
        with self.tracking.read() as session:
            found = session.scalar(sa.select(column).where(key == resource_id))
        if found is None:
            return None  # not cached: it may be created later
        cache.put(resource_id, int(found))
        return int(found)
