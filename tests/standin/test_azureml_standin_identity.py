"""The managed-identity stand-in speaks what azure-identity's ManagedIdentityCredential sends,
and the workspace stand-in accepts exactly the tokens it should (docs/azureml-protocol.md §3,
§8.2.7)."""

from __future__ import annotations

import time

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ManagedIdentityCredential

from standin.identity import ManagedIdentityEndpoint
from standin.tokens import verify_token
from standin.workspace import AzuremlWorkspace

ARM_SCOPE = "https://management.azure.com/.default"
SEARCH = {"max_results": 5}


@pytest.fixture
def mi_env(monkeypatch: pytest.MonkeyPatch, azureml_identity: ManagedIdentityEndpoint) -> None:
    for name in ("IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in azureml_identity.env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("mi_env")
def test_managed_identity_credential_gets_a_token(
    azureml_identity: ManagedIdentityEndpoint,
) -> None:
    before = len(azureml_identity.requests())
    credential = ManagedIdentityCredential()
    access = credential.get_token(ARM_SCOPE)
    claims = verify_token(access.token, azureml_identity.secret)
    assert claims.audience == "https://management.azure.com"
    assert 100 <= access.expires_on - time.time() <= 125  # the 120 s lifetime
    (request,) = azureml_identity.requests()[before:]
    assert request["resource"] == "https://management.azure.com"
    assert request["api_version"] == "2019-08-01"
    assert request["status"] == 200


@pytest.mark.usefixtures("mi_env")
def test_token_from_the_credential_is_accepted(
    azureml_workspace: AzuremlWorkspace,
) -> None:
    token = ManagedIdentityCredential().get_token(ARM_SCOPE).token
    with azureml_workspace.client(token) as client:
        arm = client.get(azureml_workspace.scope, params={"api-version": "2024-10-01"})
        assert arm.status_code == 200, arm.text
        search = client.post(
            f"{azureml_workspace.mlflow_api()}/experiments/search", json={"max_results": 1}
        )
        assert search.status_code == 200, search.text


@pytest.mark.usefixtures("mi_env")
def test_user_assigned_client_id(azureml_identity: ManagedIdentityEndpoint) -> None:
    token = ManagedIdentityCredential(client_id=azureml_identity.client_id).get_token(ARM_SCOPE)
    assert verify_token(token.token, azureml_identity.secret)
    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential(client_id="11111111-2222-3333-4444-555555555555").get_token(
            ARM_SCOPE
        )


def test_wrong_identity_header_is_refused(
    monkeypatch: pytest.MonkeyPatch, azureml_identity: ManagedIdentityEndpoint
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", azureml_identity.endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-secret")
    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential().get_token(ARM_SCOPE)
    assert azureml_identity.requests()[-1]["status"] == 401


@pytest.mark.usefixtures("mi_env")
def test_configurable_lifetime_and_injected_failure(
    azureml_identity: ManagedIdentityEndpoint,
) -> None:
    azureml_identity.configure(lifetime=30, fail_next=1, fail_status=400)
    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential().get_token(ARM_SCOPE)
    access = ManagedIdentityCredential().get_token(ARM_SCOPE)
    assert 20 <= access.expires_on - time.time() <= 31


def _unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer authorization_uri=")


def test_missing_expired_forged_tokens_get_401_in_each_familys_shape(
    azureml_workspace: AzuremlWorkspace, azureml_identity: ManagedIdentityEndpoint
) -> None:
    expired = azureml_identity.mint(lifetime=-5)
    wrong_audience, _ = azureml_identity.mint_with_claims(audience="https://storage.azure.com")
    garbage = "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"
    ws = azureml_workspace
    mlflow_url = f"{ws.mlflow_api()}/experiments/search"
    history_url = f"{ws.history_api()}/experiments/0/runs/nope/artifacts"
    with ws.client() as client:
        missing = client.post(mlflow_url, json={})
        _unauthorized(missing)
        body = missing.json()
        assert body["error_code"] == "UNAUTHENTICATED" and "message" not in body
        assert body["Error"]["Message"] and body["ComponentName"] == "mlflow"

        for token, code in [
            (expired, "ExpiredAuthenticationToken"),
            (wrong_audience, "InvalidAuthenticationToken"),
            (garbage, "InvalidAuthenticationToken"),
        ]:
            headers = {"Authorization": f"Bearer {token}"}
            response = client.post(mlflow_url, json={}, headers=headers)
            _unauthorized(response)
            assert response.json()["Error"]["Code"] == code

            history = client.get(history_url, headers=headers)
            _unauthorized(history)
            assert history.json()["error"]["code"] == code

            arm = client.get(ws.scope, params={"api-version": "2024-10-01"}, headers=headers)
            _unauthorized(arm)
            assert arm.json() == {
                "error": {"code": code, "message": arm.json()["error"]["message"]}
            }
        assert (
            "is earlier than current UTC time"
            in client.get(
                ws.scope,
                params={"api-version": "x"},
                headers={"Authorization": f"Bearer {expired}"},
            ).json()["error"]["message"]
        )


def test_token_expiry_fault_refuses_old_tokens_until_a_fresh_one_comes(
    azureml_workspace: AzuremlWorkspace, azureml_identity: ManagedIdentityEndpoint
) -> None:
    ws = azureml_workspace
    old = azureml_identity.mint()
    time.sleep(0.01)
    (rule,) = ws.faults(action="reject_tokens", times=None)
    time.sleep(0.01)
    fresh = azureml_identity.mint()
    assert rule["issued_before"] > 0
    mark = ws.mark()
    url = f"{ws.mlflow_api()}/experiments/search"
    with ws.client() as client:
        for _ in range(2):
            response = client.post(url, json=SEARCH, headers={"Authorization": f"Bearer {old}"})
            assert response.status_code == 401
            assert response.json()["Error"]["Code"] == "ExpiredAuthenticationToken"
        response = client.post(url, json=SEARCH, headers={"Authorization": f"Bearer {fresh}"})
        assert response.status_code == 200, response.text
    log = ws.requests(since=mark)
    assert [(e["status"], e["auth"]) for e in log] == [
        (401, "rejected"),
        (401, "rejected"),
        (200, "ok"),
    ]
    ws.clear_faults()
    with ws.client(old) as client:
        assert client.post(url, json=SEARCH).status_code == 200
