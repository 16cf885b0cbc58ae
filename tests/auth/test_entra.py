"""Microsoft Entra ID access tokens as bearer credentials, against a local OpenID provider of
our own (support/oidc.py: its keys, discovery document and JWKS on loopback): a good token
signs its user in (by object id), the stock MLflow client works with it as
MLFLOW_TRACKING_TOKEN; keys rotate; expired, not-yet-valid, wrong-audience, wrong-issuer,
other-tenant, unsigned (`alg: none`), HMAC-confused and foreign-key tokens are refused; group
and app-role claims map to admin and to a default permission."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from support import BackendUriFactory, TetherServer, unique_name
from support.auth import ADMIN, ADMIN_PASSWORD, http, signed_in, tether_auth_server
from support.oidc import OpenIdProvider, _Key

pytestmark = [
    pytest.mark.usefixtures("clean_mlflow_client"),
    pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True),
]

TENANT = "7c1f6f55-0000-4000-8000-00000000beef"
AUDIENCE = "api://tether-test"


@pytest.fixture(scope="module")
def idp() -> Iterator[OpenIdProvider]:
    with OpenIdProvider(TENANT) as provider:
        yield provider


@pytest.fixture(scope="module")
def server(
    idp: OpenIdProvider, backend_kind: str, make_backend_uri: BackendUriFactory
) -> Iterator[TetherServer]:
    started = tether_auth_server(
        make_backend_uri(backend_kind),
        env={
            "TETHER_ENTRA_TENANT_ID": TENANT,
            "TETHER_ENTRA_AUDIENCES": f"{AUDIENCE},00000000-aaaa-4bbb-8ccc-000000000001",
            "TETHER_ENTRA_METADATA_URL": idp.metadata_url,
            "TETHER_ENTRA_JWKS_REFRESH_FLOOR_SECONDS": "0",
            "TETHER_ENTRA_ADMIN_GROUPS": "admins-group-id",
            "TETHER_ENTRA_DEFAULT_PERMISSIONS": "editors-group-id=EDIT,Tether.Writer=EDIT",
        },
    )
    try:
        yield started
    finally:
        started.stop()


def current(server: TetherServer, token: str) -> httpx.Response:
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        return client.get(
            "/api/2.0/mlflow/users/current", headers={"Authorization": f"Bearer {token}"}
        )


def test_a_valid_token_signs_its_user_in(server: TetherServer, idp: OpenIdProvider) -> None:
    oid = str(uuid.uuid4())
    answer = current(server, idp.token(audience=AUDIENCE, oid=oid, upn="ada@contoso.com"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["user"]["username"] == oid
    assert answer.json()["user"]["is_admin"] is False
    assert answer.json()["is_basic_auth"] is False
    # The app registration's client id is an accepted audience too.
    other = idp.token(audience="00000000-aaaa-4bbb-8ccc-000000000001", oid=oid)
    assert current(server, other).status_code == 200
    with http(server.url, ADMIN, ADMIN_PASSWORD) as admin:
        users = admin.get("/api/2.0/mlflow/users/list").json()["users"]
    assert oid in [u["username"] for u in users]


def test_the_stock_client_with_a_token(server: TetherServer, idp: OpenIdProvider) -> None:
    oid = str(uuid.uuid4())
    client = MlflowClient(tracking_uri=server.url)
    with signed_in(token=idp.token(audience=AUDIENCE, oid=oid)):
        experiment_id = client.create_experiment(unique_name("entra"))
        run = client.create_run(experiment_id)
        client.log_metric(run.info.run_id, "m", 1.0)
        assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}
    # Grants name the object id.
    with http(server.url, ADMIN, ADMIN_PASSWORD) as admin:
        answer = admin.get(
            "/api/3.0/mlflow/users/permissions/get",
            params={"username": oid, "resource_type": "experiment", "resource_id": experiment_id},
        )
    assert answer.json()["permission"] == "MANAGE"  # the creator's


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(claims: dict[str, Any], kid: str) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def _hmac_with_public_key(claims: dict[str, Any], key: _Key) -> str:
    """The algorithm-confusion attack: HS256 keyed with the (public) RSA key's PEM."""
    from cryptography.hazmat.primitives import serialization

    secret = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def test_bad_tokens_are_refused(server: TetherServer, idp: OpenIdProvider) -> None:
    oid = str(uuid.uuid4())
    now = time.time()
    claims = {
        "iss": idp.issuer,
        "aud": AUDIENCE,
        "exp": int(now + 600),
        "nbf": int(now - 5),
        "oid": oid,
        "tid": TENANT,
    }
    bad = {
        "expired": idp.token(audience=AUDIENCE, oid=oid, lifetime=-300),
        "not yet valid": idp.token(audience=AUDIENCE, oid=oid, not_before=now + 600),
        "wrong audience": idp.token(audience="api://someone-else", oid=oid),
        "wrong issuer": idp.token(
            audience=AUDIENCE, oid=oid, issuer="https://login.microsoftonline.com/evil/v2.0"
        ),
        "other tenant": idp.token(audience=AUDIENCE, oid=oid, extra={"tid": "another-tenant"}),
        "no oid": idp.token(audience=AUDIENCE),
        "unsigned": _unsigned(claims, idp.keys[-1].kid),
        "hmac confusion": _hmac_with_public_key(claims, idp.keys[-1]),
        "foreign key": idp.token(audience=AUDIENCE, oid=oid, key=_Key()),
        "not a jwt": "hello",
    }
    forged = _Key()
    forged.kid = idp.keys[-1].kid  # a key the provider never published, under a known kid
    bad["forged under a known kid"] = idp.token(audience=AUDIENCE, oid=oid, key=forged)
    got = {name: current(server, token).status_code for name, token in bad.items()}
    assert got == dict.fromkeys(bad, 401)
    for name, token in bad.items():
        answer = current(server, token)
        assert answer.json()["error_code"] == "UNAUTHENTICATED", name
        assert token not in answer.text and token not in server.log_text()
    # Nobody was created for the refused object id.
    with http(server.url, ADMIN, ADMIN_PASSWORD) as admin:
        assert admin.get("/api/2.0/mlflow/users/get", params={"username": oid}).status_code == 404


def test_keys_rotate(server: TetherServer, idp: OpenIdProvider) -> None:
    oid = str(uuid.uuid4())
    assert current(server, idp.token(audience=AUDIENCE, oid=oid)).status_code == 200
    fetched = idp.jwks_requests
    idp.rotate(keep_old=False)
    # A token under the new kid makes Tether fetch the keys again, and it is accepted.
    assert current(server, idp.token(audience=AUDIENCE, oid=oid)).status_code == 200
    assert idp.jwks_requests > fetched
    # The retired key is no longer published: its tokens stop working.
    old = idp.token(audience=AUDIENCE, oid=oid, key=idp.keys[-2])
    assert current(server, old).status_code == 401


def test_groups_and_roles_map_to_admin_and_permissions(
    server: TetherServer, idp: OpenIdProvider
) -> None:
    admin_token = idp.token(audience=AUDIENCE, oid=str(uuid.uuid4()), groups=["admins-group-id"])
    answer = current(server, admin_token)
    assert answer.json()["user"]["is_admin"] is True
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        status = client.get(
            "/api/2.0/tether/sync/status", headers={"Authorization": f"Bearer {admin_token}"}
        )
    assert status.status_code == 200
    with http(server.url, ADMIN, ADMIN_PASSWORD) as admin:
        experiment_id = admin.post(
            "/api/2.0/mlflow/experiments/create", json={"name": unique_name("admins")}
        ).json()["experiment_id"]
    client = MlflowClient(tracking_uri=server.url)
    for claims in ({"groups": ["editors-group-id"]}, {"roles": ["Tether.Writer"]}):
        token = idp.token(audience=AUDIENCE, oid=str(uuid.uuid4()), **claims)  # type: ignore[arg-type]
        with signed_in(token=token):
            client.create_run(experiment_id)  # EDIT, mapped from the claim
    reader = idp.token(audience=AUDIENCE, oid=str(uuid.uuid4()), groups=["someone-else"])
    with signed_in(token=reader), pytest.raises(MlflowException) as refused:
        client.create_run(experiment_id)  # the configured default: READ
    assert refused.value.error_code == "PERMISSION_DENIED"
