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

from tether.auth.permissions import Grant, readable_set, resolve

LEVELS = ["READ", "USE", "EDIT", "MANAGE", "DENY"]


def _mlflow(grants: list[Grant], experiment_id: str, default: str) -> str:
    rows = [RoleGrantRow(g.resource_type, g.pattern, g.permission) for g in grants]
    if any(mlflow_requirements.is_workspace_admin_grant(r) for r in rows):
        return "MANAGE"
    key = GrantLoadKey("experiment", experiment_id)
    folded = {key: mlflow_requirements.fold_grants_for_key(rows, key)}
    requirement = mlflow_requirements.Requirement("experiment", experiment_id, "read")
    absent = mlflow_permissions.get_permission(default)
    return mlflow_requirements.governing_permission(requirement, folded, default, absent).name


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
def test_readable_set_agrees_with_each_resource(seed: int) -> None:
    rng = random.Random(100 + seed)
    for _ in range(400):
        grants = _random_grants(rng)
        default = rng.choice(["READ", "NO_PERMISSIONS"])
        found = readable_set(grants, "experiment", default)
        for experiment_id in ("1", "2", "3"):
            can_read = resolve(grants, "experiment", experiment_id, default).can_read
            if found is None:
                assert can_read
            else:
                by_default, exceptions = found
                assert (by_default != (experiment_id in exceptions)) == can_read


def test_prompt_grants_speak_for_the_registered_model() -> None:
    grants = [Grant("prompt", "p", "DENY"), Grant("registered_model", "p", "MANAGE")]
    assert resolve(grants, "registered_model", "p", "READ").name == "DENY"
    assert resolve([Grant("prompt", "q", "EDIT")], "registered_model", "q", "READ").name == "EDIT"
