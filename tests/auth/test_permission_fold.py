"""How grants fold into one permission (tether.auth.permissions), checked against MLflow
3.17's own fold (`mlflow.server.auth.requirements`) on random grant sets, and the readable
set a search filters by against the per-resource answer."""

from __future__ import annotations

import random

import pytest
from mlflow.server.auth import permissions as mlflow_permissions
from mlflow.server.auth import requirements as mlflow_requirements
from mlflow.server.auth.permissions import GrantLoadKey
from mlflow.server.auth.sqlalchemy_store import RoleGrantRow

from tether.auth.permissions import Grant, may_create, readable_set, resolve

LEVELS = ["READ", "USE", "EDIT", "MANAGE", "DENY"]


def _rows(grants: list[Grant]) -> list[RoleGrantRow]:
    return [RoleGrantRow(g.resource_type, g.pattern, g.permission) for g in grants]


def _mlflow(
    grants: list[Grant], experiment_id: str, default: str, absent: str | None = None
) -> str:
    """MLflow's point permission (`_role_permission_for` then `_get_role_permission_or_default`):
    `absent` is NO_PERMISSIONS with workspaces on, the default without."""
    rows = _rows(grants)
    if any(mlflow_requirements.is_workspace_admin_grant(r) for r in rows):
        return "MANAGE"
    key = GrantLoadKey("experiment", experiment_id)
    folded = {key: mlflow_requirements.fold_grants_for_key(rows, key)}
    requirement = mlflow_requirements.Requirement("experiment", experiment_id, "read")
    nothing = mlflow_permissions.get_permission(absent or default)
    return mlflow_requirements.governing_permission(requirement, folded, default, nothing).name


def _mlflow_lists(grants: list[Grant], experiment_id: str, default: str, absent: str) -> bool:
    """MLflow's listing predicate (`_role_based_read_predicate`): the row's own grant, else
    the workspace grant, else `absent`."""
    rows = _rows(grants)
    if any(mlflow_requirements.is_workspace_admin_grant(r) for r in rows):
        return True
    requirement = mlflow_requirements.Requirement(
        "experiment", experiment_id, "read", fallback_if_no_grant=(("workspace", "*"),)
    )
    folded = {
        key: mlflow_requirements.fold_grants_for_key(rows, key)
        for key in mlflow_requirements.requirement_to_grant_load_keys(requirement)
    }
    nothing = mlflow_permissions.get_permission(absent)
    return mlflow_requirements.requirement_satisfied(requirement, folded, default, nothing)


def _random_grants(rng: random.Random) -> list[Grant]:
    grants = []
    for _ in range(rng.randint(0, 5)):
        if rng.random() < 0.1:
            grants.append(Grant("workspace", "*", rng.choice(["USE", "MANAGE"])))
        else:
            rtype = rng.choice(["experiment", "experiment", "registered_model"])
            grants.append(Grant(rtype, rng.choice(["*", "1", "2"]), rng.choice(LEVELS)))
    return grants


@pytest.mark.parametrize("seed", range(5))
def test_fold_matches_mlflow(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(400):
        grants = _random_grants(rng)
        default = rng.choice(["READ", "NO_PERMISSIONS", "EDIT", "USE"])
        for experiment_id in ("1", "2", "3"):
            ours = resolve(grants, "experiment", experiment_id, default).name
            assert ours == _mlflow(grants, experiment_id, default), (grants, default)


@pytest.mark.parametrize("seed", range(5))
def test_fold_matches_mlflow_with_workspaces(seed: int) -> None:
    """With workspaces on, no grant means no permission (not the default)."""
    rng = random.Random(50 + seed)
    for _ in range(400):
        grants = _random_grants(rng)
        default = rng.choice(["READ", "EDIT", "USE"])
        for experiment_id in ("1", "2", "3"):
            ours = resolve(grants, "experiment", experiment_id, default, "NO_PERMISSIONS").name
            expected = _mlflow(grants, experiment_id, default, "NO_PERMISSIONS")
            assert ours == expected, (grants, default)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("workspaces", [False, True])
def test_readable_set_matches_mlflow_listing(seed: int, workspaces: bool) -> None:
    rng = random.Random(100 + seed)
    for _ in range(400):
        grants = _random_grants(rng)
        default = rng.choice(["READ", "NO_PERMISSIONS"])
        absent = "NO_PERMISSIONS" if workspaces else default
        found = readable_set(grants, "experiment", default, absent)
        for experiment_id in ("1", "2", "3"):
            listed = found is None or (found[0] != (experiment_id in found[1]))
            assert listed == _mlflow_lists(grants, experiment_id, default, absent), (
                grants,
                default,
            )


def test_a_workspace_member_lists_what_it_cannot_read() -> None:
    """MLflow 3.17's asymmetry, kept: (workspace, *, USE) lists every experiment of the
    workspace but reads only those granted (with workspaces on)."""
    grants = [Grant("workspace", "*", "USE"), Grant("experiment", "2", "READ")]
    assert readable_set(grants, "experiment", "READ", "NO_PERMISSIONS") == (True, frozenset())
    assert not resolve(grants, "experiment", "1", "READ", "NO_PERMISSIONS").can_read
    assert resolve(grants, "experiment", "2", "READ", "NO_PERMISSIONS").can_read


def test_prompt_grants_speak_for_the_registered_model() -> None:
    grants = [Grant("prompt", "p", "DENY"), Grant("registered_model", "p", "MANAGE")]
    assert resolve(grants, "registered_model", "p", "READ").name == "DENY"
    assert resolve([Grant("prompt", "q", "EDIT")], "registered_model", "q", "READ").name == "EDIT"


def _mlflow_may_create(grants: list[Grant], default: str, inherits: bool) -> bool:
    """MLflow's `validate_can_create_experiment` with workspaces on, from its own pieces:
    `_can_create_in_workspace` then `_create_not_denied`."""
    rows = _rows(grants)
    if any(mlflow_requirements.is_workspace_admin_grant(r) for r in rows):
        return True
    held = mlflow_requirements.fold_grants_for_key(rows, GrantLoadKey("workspace", "*"))
    if held is not None:
        member = held.can_use
    else:
        member = inherits and mlflow_permissions.get_permission(default).can_use
    if not member:
        return False
    requirement = mlflow_requirements.Requirement(
        "experiment", "*", mlflow_requirements.ACTION_NOT_DENIED
    )
    key = GrantLoadKey("experiment", "*")
    folded = {key: mlflow_requirements.fold_grants_for_key(rows, key)}
    nothing = mlflow_permissions.NO_PERMISSIONS
    return mlflow_requirements.requirement_satisfied(requirement, folded, default, nothing)


@pytest.mark.parametrize("seed", range(3))
def test_may_create_matches_mlflow(seed: int) -> None:
    rng = random.Random(200 + seed)
    for _ in range(400):
        grants = _random_grants(rng)
        default = rng.choice(["READ", "USE", "EDIT"])
        inherits = rng.random() < 0.5
        absent = default if inherits else "NO_PERMISSIONS"
        ours = may_create(grants, "experiment", default, absent, workspaces_on=True)
        assert ours == _mlflow_may_create(grants, default, inherits), (grants, default, inherits)
