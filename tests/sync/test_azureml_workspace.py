"""Parsing the operator's workspace setting into the URLs the sync worker calls."""

from __future__ import annotations

import pytest

from tether.errors import MlflowError
from tether.sync.azureml.client import RetryPolicy, _retry_after
from tether.sync.azureml.workspace import Workspace, parse_workspace_setting

SCOPE = (
    "subscriptions/0000-sub/resourceGroups/rg-ml/providers/"
    "Microsoft.MachineLearningServices/workspaces/ws1"
)


def test_tracking_uri_gives_host_and_scope() -> None:
    ref = parse_workspace_setting(f"azureml://westeurope.api.azureml.ms/mlflow/v1.0/{SCOPE}")
    assert ref.host_url == "https://westeurope.api.azureml.ms"
    assert (ref.subscription, ref.resource_group, ref.name) == ("0000-sub", "rg-ml", "ws1")


def test_arm_id_needs_discovery() -> None:
    ref = parse_workspace_setting("subscriptions/0000-sub/resourceGroups/rg-ml/workspaces/ws1")
    assert ref.host_url is None
    assert ref.arm_path == "/" + SCOPE


def test_urls_follow_azureml_mlflow_layout() -> None:
    ws = Workspace("https://h.api.azureml.ms", "0000-sub", "rg-ml", "ws1")
    assert ws.mlflow_api == f"https://h.api.azureml.ms/mlflow/v2.0/{SCOPE}/api/2.0/mlflow"
    assert ws.history_api == f"https://h.api.azureml.ms/history/v1.0/{SCOPE}"


@pytest.mark.parametrize(
    "value",
    ["", "workspaces/ws1", "https://example.com/subscriptions/s/resourceGroups/r/workspaces/w"],
)
def test_bad_settings_are_refused(value: str) -> None:
    with pytest.raises(MlflowError):
        parse_workspace_setting(value)


def test_retry_after_seconds_and_dates() -> None:
    assert _retry_after("7") == 7.0
    assert _retry_after(None) is None
    assert _retry_after("soon") is None
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: no wait


def test_backoff_honours_retry_after_and_caps() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0)
    assert policy.delay(0, 3.0) == 3.0
    # Never shortened: the client hands a long Retry-After to the worker instead of sleeping.
    assert policy.delay(0, 500.0) == 500.0
    for attempt in range(8):
        assert 0.0 <= policy.delay(attempt, None) <= min(10.0, 2**attempt)
