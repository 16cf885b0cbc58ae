"""Servers with authentication on: Tether (`--app-name basic-auth`) and the reference
`mlflow server --app-name basic-auth` (its own auth database and ini file), and a way to act
as one user with the in-process MLflow client."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from .net import free_port
from .servers import MLFLOW_SERVER_ENV, MlflowServer, TetherServer, clean_env, mlflow_server_argv

ADMIN = "admin"
ADMIN_PASSWORD = "admin-password-123"


def tether_auth_server(
    backend_uri: str,
    *,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> TetherServer:
    """`tether serve --app-name basic-auth` whose first admin is ADMIN / ADMIN_PASSWORD."""
    return TetherServer(
        backend_uri,
        extra_args=["--app-name", "basic-auth", *extra_args],
        env={"TETHER_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD, **(env or {})},
    )


class ReferenceAuthServer(MlflowServer):
    """The installed `mlflow server --app-name basic-auth` (3.x) on fresh SQLite stores; its
    ini file (MLFLOW_AUTH_CONFIG_PATH) names its own auth database and the same admin."""

    kind = "mlflow-auth"

    def __init__(
        self,
        *,
        default_permission: str = "READ",
        extra_args: Sequence[str] = (),
        ini_lines: Sequence[str] = (),
    ) -> None:
        tmpdir = Path(tempfile.mkdtemp(prefix="tether-ref-auth-"))
        port = free_port()
        ini = tmpdir / "basic_auth.ini"
        ini.write_text(
            "[mlflow]\n"
            f"default_permission = {default_permission}\n"
            f"database_uri = sqlite:///{tmpdir / 'auth.db'}\n"
            f"admin_username = {ADMIN}\n"
            f"admin_password = {ADMIN_PASSWORD}\n" + "".join(f"{line}\n" for line in ini_lines)
        )
        argv = mlflow_server_argv(
            f"sqlite:///{tmpdir / 'mlflow.db'}",
            port,
            "--artifacts-destination",
            str(tmpdir / "artifacts"),
            "--app-name",
            "basic-auth",
            *extra_args,
        )
        env = clean_env(
            {
                **MLFLOW_SERVER_ENV,
                "MLFLOW_AUTH_CONFIG_PATH": str(ini),
                "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-secret",
            }
        )
        super().__init__(argv, port=port, tmpdir=tmpdir, env=env, owns_tmpdir=True)


def http(url: str, username: str | None = None, password: str | None = None) -> httpx.Client:
    """An httpx client for `url`, signed in as `username` when given."""
    auth = (username, password or "") if username is not None else None
    return httpx.Client(base_url=url, auth=auth, timeout=60.0, trust_env=False)


_CREDENTIAL_VARS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


@contextlib.contextmanager
def signed_in(
    username: str | None = None, password: str | None = None, *, token: str | None = None
) -> Iterator[None]:
    """The in-process MLflow client sends these credentials (its environment variables,
    read on every request) inside the block, and none afterwards."""
    saved = {name: os.environ.pop(name, None) for name in _CREDENTIAL_VARS}
    if username is not None:
        os.environ["MLFLOW_TRACKING_USERNAME"] = username
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password or ""
    if token is not None:
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
    try:
        yield
    finally:
        for name in _CREDENTIAL_VARS:
            os.environ.pop(name, None)
            if saved[name] is not None:
                os.environ[name] = saved[name]  # type: ignore[assignment]


def create_users(url: str, passwords: dict[str, str]) -> None:
    """Create each user (name -> password) as the admin."""
    with http(url, ADMIN, ADMIN_PASSWORD) as admin:
        for name, password in passwords.items():
            answer = admin.post(
                "/api/2.0/mlflow/users/create", json={"username": name, "password": password}
            )
            assert answer.status_code == 200, answer.text


def grant(
    client: httpx.Client, user: str, resource_type: str, resource_id: str, permission: str
) -> None:
    """`client` (signed in as someone who may) grants `user` a permission (MLflow 3.17's API)."""
    answer = client.post(
        "/api/3.0/mlflow/users/permissions/grant",
        json={
            "username": user,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "permission": permission,
        },
    )
    assert answer.status_code == 200, answer.text
