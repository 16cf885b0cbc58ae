"""Turning authentication on: the first admin comes from configuration or Tether refuses to
start; an existing MLflow auth configuration (MLFLOW_AUTH_CONFIG_PATH, MLFLOW_AUTH_ADMIN_*)
works as it is, its `database_uri` included; listening beyond loopback without
authentication is said loudly."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from support import TetherServer, free_port
from support.auth import http
from support.servers import clean_env, tether_command
from tether.cli import _check_authentication
from tether.config import Settings


def test_refuses_to_start_without_an_admin_password(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *tether_command(),
            "serve",
            "--app-name",
            "basic-auth",
            "--port",
            str(free_port()),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'tether.db'}",
        ],
        env=clean_env({"TETHER_DATA_DIR": str(tmp_path)}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "TETHER_AUTH_ADMIN_PASSWORD" in done.stderr
    assert "no default password" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_too_short_admin_password_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [*tether_command(), "serve", "--app-name", "basic-auth", "--port", str(free_port())],
        env=clean_env({"TETHER_DATA_DIR": str(tmp_path), "TETHER_AUTH_ADMIN_PASSWORD": "short"}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "at least 12 characters" in done.stderr
    assert "short" not in done.stderr.replace("too short", "")


def test_an_mlflow_auth_configuration_works_as_it_is(tmp_path: Path) -> None:
    auth_db = tmp_path / "basic_auth.db"
    ini = tmp_path / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = sqlite:///{auth_db}\n"
        "admin_username = root\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    server = TetherServer(
        f"sqlite:///{tmp_path / 'tether.db'}",
        extra_args=["--app-name", "basic-auth"],
        env={
            "MLFLOW_AUTH_CONFIG_PATH": str(ini),
            "MLFLOW_AUTH_ADMIN_PASSWORD": "root-password-123",
        },
    )
    try:
        with http(server.url, "root", "root-password-123") as root:
            assert root.get("/api/2.0/mlflow/users/current").json()["user"]["is_admin"]
            made = root.post(
                "/api/2.0/mlflow/users/create",
                json={"username": "bob", "password": "bob-password-123"},
            )
            assert made.status_code == 200
            ids = [
                root.post(
                    "/api/2.0/mlflow/experiments/create", json={"name": f"shared-{i}"}
                ).json()["experiment_id"]
                for i in range(6)
            ]
            for experiment_id in ids[::2]:
                granted = root.post(
                    "/api/3.0/mlflow/users/permissions/grant",
                    json={
                        "username": "bob",
                        "resource_type": "experiment",
                        "resource_id": experiment_id,
                        "permission": "READ",
                    },
                )
                assert granted.status_code == 200
        with http(server.url, "bob", "bob-password-123") as bob:
            own = bob.post("/api/2.0/mlflow/experiments/create", json={"name": "bobs"})
            assert own.status_code == 200
            seen: list[str] = []
            token = None
            while True:
                page = bob.post(
                    "/api/2.0/mlflow/experiments/search",
                    json={"max_results": 2, **({"page_token": token} if token else {})},
                ).json()
                seen += [e["experiment_id"] for e in page.get("experiments", [])]
                token = page.get("next_page_token")
                if not token:
                    break
            # NO_PERMISSIONS by default: only what bob was granted and what he created.
            assert sorted(seen) == sorted([*ids[::2], own.json()["experiment_id"]])
            refused = bob.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": ids[1]})
            assert refused.status_code == 403
    finally:
        server.stop()
    # The users live in the database the file names, not in Tether's own.
    with sqlite3.connect(auth_db) as db:
        assert {r[0] for r in db.execute("SELECT username FROM auth_users")} == {"root", "bob"}
    with sqlite3.connect(tmp_path / "tether.db") as db:
        assert db.execute("SELECT count(*) FROM auth_users").fetchone() == (0,)


@pytest.mark.parametrize(
    ("host", "warned"), [("0.0.0.0", True), ("10.1.2.3", True), ("127.0.0.1", False)]
)
def test_loud_warning_beyond_loopback_without_auth(
    host: str, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tether"):
        _check_authentication(Settings(host=host))
    assert ("AUTHENTICATION IS OFF" in caplog.text) is warned


def test_set_password_is_the_way_back_in(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tether.auth.passwords import verify_password
    from tether.auth.store import AuthStore
    from tether.cli import main
    from tether.db.engine import Database

    uri = f"sqlite:///{tmp_path / 'tether.db'}"

    def set_password(password: str) -> Any:
        command = ["auth", "set-password", "--backend-store-uri", uri, "ops"]
        return CliRunner().invoke(main, [*command, "--password", password])

    made = set_password("first-password-1")
    assert made.exit_code == 0, made.output
    changed = set_password("second-password-2")
    assert changed.exit_code == 0, changed.output
    short = set_password("short")
    assert short.exit_code != 0 and "12 characters" in short.output
    database = Database(uri)
    try:
        user = AuthStore(database).get_user("ops")
        assert user.is_admin
        assert verify_password("second-password-2", user.password_hash)
    finally:
        database.dispose()
