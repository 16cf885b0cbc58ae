"""The stand-in's pure parts: tokens, quirk checks, fault rules, artifact paths (no servers)."""

from __future__ import annotations

import time

import pytest

from standin.artifacts import page, path_problem
from standin.faults import FaultPlan, FaultRule
from standin.quirks import Quirks, experiment_name_ok, model_source_ok, search_restriction
from standin.tokens import TokenError, mint_token, verify_token

SECRET = "unit-test-secret"


def test_token_round_trip_and_claims() -> None:
    token, claims = mint_token(SECRET, lifetime=60)
    verified = verify_token(token, SECRET)
    assert verified.audience == "https://management.azure.com"
    assert verified.token_id == claims.token_id
    assert 58 <= verified.expires_at - time.time() <= 61  # exp is whole seconds; a slow check
    assert token.count(".") == 2  # a JWT, as Entra's tokens are


@pytest.mark.parametrize(
    ("kwargs", "secret", "reason"),
    [
        ({"lifetime": -1}, SECRET, TokenError.EXPIRED),
        ({}, "another-secret", TokenError.BAD_SIGNATURE),
        ({"audience": "https://storage.azure.com"}, SECRET, TokenError.WRONG_AUDIENCE),
    ],
)
def test_token_refusals(kwargs: dict[str, object], secret: str, reason: str) -> None:
    token, _ = mint_token(SECRET, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TokenError) as info:
        verify_token(token, secret)
    assert info.value.reason == reason


def test_malformed_token() -> None:
    with pytest.raises(TokenError) as info:
        verify_token("not-a-jwt", SECRET)
    assert info.value.reason == TokenError.MALFORMED


@pytest.mark.parametrize("name", ["a", "exp-1", "Exp_2", "9lives", "x" * 256])
def test_experiment_names_accepted(name: str) -> None:
    assert experiment_name_ok(name)


@pytest.mark.parametrize("name", ["", "-a", "_a", "a b", "a/b", "a.b", "é", "x" * 257, "/a"])
def test_experiment_names_refused(name: str) -> None:
    assert not experiment_name_ok(name)


def test_slash_names_pass_only_with_the_slash_bug() -> None:
    assert experiment_name_ok("team/exp", allow_slash=True)
    assert not experiment_name_ok("/exp", allow_slash=True)


@pytest.mark.parametrize(
    ("filter_string", "order_by", "refused"),
    [
        ("metrics.a > 1 AND params.b = 'x'", None, False),
        ("metrics.a > 1 OR metrics.b > 1", None, True),
        ("metrics.a > 1 or metrics.b > 1", None, True),
        ("params.b = 'this OR that'", None, False),
        ("tags.t != 'x'", None, True),
        ("tags.`my tag` != 'x'", None, True),
        ("params.p != 'x'", None, False),
        ("attributes.status = 'FINISHED'", ["attributes.start_time DESC"], False),
        (None, ["metrics.loss ASC"], True),
        (None, ["params.lr"], True),
        (None, ["tags.t DESC"], True),
    ],
)
def test_search_restrictions(
    filter_string: str | None, order_by: list[str] | None, refused: bool
) -> None:
    assert (search_restriction(filter_string, order_by) is not None) is refused


@pytest.mark.parametrize(
    ("source", "ok"),
    [
        ("runs:/abc/model", True),
        ("runs:/abc", True),
        ("azureml://artifacts/LocalUpload/240101T000000-abcd1234/model", True),
        (
            "azureml://h:1/mlflow/v2.0/subscriptions/s/resourceGroups/r/providers/"
            "Microsoft.MachineLearningServices/workspaces/w/experiments/1/runs/abc/artifacts/model",
            True,
        ),
        ("s3://bucket/model", False),
        ("file:///tmp/model", False),
        ("models:/m-123", False),
        ("azureml://datastores/workspaceblobstore/paths/model", False),
    ],
)
def test_model_sources(source: str, ok: bool) -> None:
    assert model_source_ok(source) is ok


def test_quirks_update_validates() -> None:
    quirks = Quirks()
    quirks.update({"max_metrics_per_batch": 10, "registry_pending_seconds": 2})
    assert quirks.max_metrics_per_batch == 10
    assert quirks.registry_pending_seconds == 2.0
    with pytest.raises(ValueError):
        quirks.update({"no_such_quirk": True})
    with pytest.raises(ValueError):
        quirks.update({"logged_models_404": "yes"})


def test_fault_rules_count_and_match() -> None:
    plan = FaultPlan()
    plan.add([{"path": "runs/create$", "method": "post", "times": 2, "action": "status"}])
    assert plan.take("GET", "/x/runs/create") is None
    assert plan.take("POST", "/x/runs/get") is None
    assert plan.take("POST", "/x/runs/create") is not None
    assert plan.take("POST", "/x/runs/create") is not None
    assert plan.take("POST", "/x/runs/create") is None
    with pytest.raises(ValueError):
        FaultRule.from_json({"action": "explode"})
    with pytest.raises(ValueError):
        FaultRule.from_json({"action": "drop", "pathh": "x"})


def test_token_rules_apply_to_old_tokens_only() -> None:
    plan = FaultPlan()
    (rule,) = plan.add({"action": "reject_tokens", "times": None})
    assert plan.rejects_token("GET", "/any", rule.issued_before - 1) is rule
    assert plan.rejects_token("GET", "/any", rule.issued_before + 1) is None
    assert plan.take("GET", "/any") is None  # token rules never act as request faults


@pytest.mark.parametrize("path", ["a.txt", "dir/sub/a.txt", "model/MLmodel"])
def test_artifact_paths_accepted(path: str) -> None:
    assert path_problem(path) is None


@pytest.mark.parametrize("path", ["", "/abs", "../up", "a/../../b", "a//b", "./a", "a\\b", 3])
def test_artifact_paths_refused(path: object) -> None:
    assert path_problem(path) is not None


def test_listing_pages() -> None:
    records = [{"path": str(i)} for i in range(5)]
    first, token = page(records, None, 2)
    second, token2 = page(records, token, 2)
    third, token3 = page(records, token2, 2)
    assert [r["path"] for r in first + second + third] == ["0", "1", "2", "3", "4"]
    assert token3 is None
