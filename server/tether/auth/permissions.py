"""MLflow 3.17's permission levels and how grants fold into one permission (pure functions).

A grant is `(resource_type, resource_pattern, permission)`; the pattern is an id or `*`.
For one resource, every grant of the caller whose pattern matches folds into one: an explicit
DENY wins, otherwise the highest level, floored at the default permission (a positive grant
never lowers what everyone gets). No matching grant: the `absent` permission, which is the
default permission while workspaces are off; with workspaces on it is NO_PERMISSIONS (a user
has no access in a workspace where no role of theirs says so), unless the operator opted the
`default` workspace into `grant_default_workspace_access`. A workspace admin grant
(`workspace`, `*`, MANAGE) gives MANAGE on everything in its workspace. (MLflow's
`requirements.fold_grants_for_key`, `floor_positive_permission`, `is_workspace_admin_grant`,
`_absent_permission`.)

The workspace grant (`workspace`, `*`, USE|MANAGE) is also what lets a user create
experiments and registered models in a workspace (`may_create`) and, in listings only, the
fallback for a resource the user holds no grant of its own type on (`readable_set`): MLflow
3.17 lists with that fallback but judges a point read without it, so a workspace USE member
lists every experiment of the workspace yet reads only those granted or their own. Tether
keeps that asymmetry because the reference has it (its docstring of
`_role_based_read_predicate` calls it out).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tether.errors import invalid_parameter


@dataclass(frozen=True)
class Permission:
    name: str
    can_read: bool
    can_use: bool
    can_update: bool
    can_delete: bool
    can_manage: bool

    def allows(self, action: str) -> bool:
        return bool(getattr(self, f"can_{action}"))


READ = Permission("READ", True, False, False, False, False)
USE = Permission("USE", True, True, False, False, False)
EDIT = Permission("EDIT", True, True, True, False, False)
MANAGE = Permission("MANAGE", True, True, True, True, True)
DENY = Permission("DENY", False, False, False, False, False)
NO_PERMISSIONS = Permission("NO_PERMISSIONS", False, False, False, False, False)

ALL = {p.name: p for p in (READ, USE, EDIT, MANAGE, NO_PERMISSIONS, DENY)}
_PRIORITY = {"DENY": -1, "NO_PERMISSIONS": 0, "READ": 1, "USE": 2, "EDIT": 3, "MANAGE": 4}

WORKSPACE = "workspace"
EXPERIMENT = "experiment"
REGISTERED_MODEL = "registered_model"
PROMPT = "prompt"
DEFAULT_WORKSPACE = "default"  # MLflow's, where every grant lives without workspaces

# MLflow 3.17 accepts more types (scorers, gateway, traces, runs as wildcard tiers ...): Tether
# serves none of those resources, and a grant it stored but never enforced would protect
# nothing, so it refuses them instead.
RESOURCE_TYPES = (WORKSPACE, EXPERIMENT, REGISTERED_MODEL, PROMPT)
RESOURCE_GRANTABLE = ("DENY", "EDIT", "MANAGE", "READ", "USE")
WORKSPACE_GRANTABLE = ("MANAGE", "USE")


def get(name: str) -> Permission:
    return ALL[name]


def higher(a: str, b: str) -> str:
    return a if _PRIORITY.get(a, 0) >= _PRIORITY.get(b, 0) else b


def validate_permission(name: object) -> str:
    if not isinstance(name, str) or name not in ALL:
        raise invalid_parameter(f"Invalid permission '{name}'. Valid permissions are: {tuple(ALL)}")
    return name


def validate_resource_type(resource_type: object) -> str:
    if not isinstance(resource_type, str) or resource_type not in RESOURCE_TYPES:
        raise invalid_parameter(
            f"Invalid resource type '{resource_type}'. "
            f"Valid resource types are: {tuple(sorted(RESOURCE_TYPES))}"
        )
    return resource_type


def validate_grant(resource_type: str, pattern: str, permission: str) -> None:
    validate_permission(permission)
    validate_resource_type(resource_type)
    if resource_type == WORKSPACE:
        if permission not in WORKSPACE_GRANTABLE:
            raise invalid_parameter(
                f"Invalid permission '{permission}' for resource_type='{WORKSPACE}'. "
                f"Workspace-wide grants accept only: {WORKSPACE_GRANTABLE}."
            )
        if pattern != "*":
            raise invalid_parameter(
                f"Invalid resource_pattern '{pattern}' for resource_type='{WORKSPACE}'. "
                "This resource type supports only wildcard ('*') grants."
            )
        return
    if permission not in RESOURCE_GRANTABLE:
        raise invalid_parameter(
            f"Invalid permission '{permission}' for resource_type='{resource_type}'. "
            f"Resource-level grants accept only: {RESOURCE_GRANTABLE}."
        )


@dataclass(frozen=True)
class Grant:
    resource_type: str
    pattern: str
    permission: str


def is_workspace_admin(grants: Iterable[Grant]) -> bool:
    return any(
        g.resource_type == WORKSPACE and g.pattern == "*" and g.permission == "MANAGE"
        for g in grants
    )


def fold(permissions: Iterable[str]) -> str | None:
    """Several matching grants as one: DENY wins, else the highest; None when there are none."""
    best: str | None = None
    for name in permissions:
        if name == "DENY":
            return "DENY"
        best = name if best is None else higher(best, name)
    return best


def effective(folded: str | None, default: str, absent: str | None = None) -> Permission:
    """The permission a folded grant (or none) gives, with `default` as floor; `absent`
    (default: `default`) when there is none."""
    if folded is None:
        return get(absent or default)
    if folded in ("DENY", "NO_PERMISSIONS"):
        return get(folded)
    return get(higher(folded, default))


def workspace_grant(grants: Iterable[Grant]) -> str | None:
    """The caller's workspace-wide grant (folded), None when they hold none."""
    return fold(g.permission for g in grants if g.resource_type == WORKSPACE and g.pattern == "*")


def may_create(
    grants: Iterable[Grant],
    resource_type: str,
    default: str,
    absent: str | None,
    workspaces_on: bool,
) -> bool:
    """Whether the caller may create a resource of `resource_type` in the workspace the
    grants are of: with workspaces on, a workspace grant that can use (USE or MANAGE), or
    none and an `absent` permission (the default workspace's opt-in) that can; always with
    workspaces off. Either way an explicit (`resource_type`, `*`, DENY) refuses (MLflow's
    `_can_create_in_workspace` and `_create_not_denied`)."""
    grants = list(grants)
    if is_workspace_admin(grants):
        return True
    if workspaces_on:
        held = workspace_grant(grants)
        allowed = get(held).can_use if held is not None else get(absent or default).can_use
        if not allowed:
            return False
    types = types_for(resource_type)
    wildcard = [g.permission for g in grants if g.resource_type in types and g.pattern == "*"]
    return fold(wildcard) != "DENY"


def types_for(resource_type: str) -> tuple[str, ...]:
    """Grant types that speak for a resource: a registered model's grants may be given as
    `registered_model` or `prompt` (Tether keeps prompts in the same registry)."""
    if resource_type in (REGISTERED_MODEL, PROMPT):
        return (REGISTERED_MODEL, PROMPT)
    return (resource_type,)


def resolve(
    grants: Iterable[Grant],
    resource_type: str,
    resource_id: str,
    default: str,
    absent: str | None = None,
) -> Permission:
    """The caller's permission on one resource (`absent`: see the module docstring)."""
    grants = list(grants)
    if is_workspace_admin(grants):
        return MANAGE
    types = types_for(resource_type)
    matching = [
        g.permission for g in grants if g.resource_type in types and g.pattern in ("*", resource_id)
    ]
    return effective(fold(matching), default, absent)


def readable_set(
    grants: Iterable[Grant], resource_type: str, default: str, absent: str | None = None
) -> tuple[bool, frozenset[str]] | None:
    """(readable by default, the ids that differ) for one resource type; None: everything
    (a workspace admin). Computed in memory from the caller's grants, so a search can turn it
    into one SQL condition (`tether.db.visibility.Readable`). A resource with no grant of its
    own type falls back to the workspace grant, then to `absent` (MLflow's listing rule)."""
    grants = list(grants)
    if is_workspace_admin(grants):
        return None
    types = types_for(resource_type)
    wildcard = [g.permission for g in grants if g.resource_type in types and g.pattern == "*"]
    fallback = workspace_grant(grants)
    if fallback is not None:
        absent = "NO_PERMISSIONS" if fallback == "DENY" else higher(fallback, default)
    base = effective(fold(wildcard), default, absent).can_read
    exact: dict[str, list[str]] = {}
    for g in grants:
        if g.resource_type in types and g.pattern != "*":
            exact.setdefault(g.pattern, []).append(g.permission)
    exceptions = frozenset(
        resource_id
        for resource_id, names in exact.items()
        if effective(fold([*names, *wildcard]), default, absent).can_read != base
    )
    return base, exceptions
