"""Abuse resistance: failed sign-ins are limited per username and per client address (429
with MLflow's error body and Retry-After), refusals look the same whether the user exists or
not, and no password, token or password hash ever reaches a log line or an answer."""

from __future__ import annotations

import base64
import time

import httpx
import pytest

from support import BackendUriFactory, TetherServer
from support.auth import ADMIN, ADMIN_PASSWORD, http, tether_auth_server

pytestmark = pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)


def _status(server: TetherServer, username: str, password: str) -> httpx.Response:
    with http(server.url, username, password) as client:
        return client.get("/api/2.0/mlflow/users/current")


def _create(server: TetherServer, username: str, password: str) -> None:
    with http(server.url, ADMIN, ADMIN_PASSWORD) as admin:
        made = admin.post(
            "/api/2.0/mlflow/users/create", json={"username": username, "password": password}
        )
        assert made.status_code == 200, made.text


def test_failed_sign_ins_are_limited(
    backend_kind: str, make_backend_uri: BackendUriFactory
) -> None:
    server = tether_auth_server(
        make_backend_uri(backend_kind),
        env={
            "TETHER_AUTH_MAX_FAILURES_PER_USER": "3",
            "TETHER_AUTH_MAX_FAILURES_PER_CLIENT": "8",
        },
    )
    try:
        _status(server, ADMIN, ADMIN_PASSWORD)  # verified before the storm: stays usable
        _create(server, "alice", "alice-password-12")
        _create(server, "bob", "bob-password-123")
        # Per user: three wrong passwords, then even the right one waits.
        for _ in range(3):
            assert _status(server, "alice", "wrong-password").status_code == 401
        limited = _status(server, "alice", "alice-password-12")
        assert limited.status_code == 429
        assert limited.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert 0 < int(limited.headers["retry-after"]) <= 300
        # A user who does not exist is limited exactly alike (no existence oracle).
        for _ in range(3):
            assert _status(server, "ghost", "wrong-password").status_code == 401
        assert _status(server, "ghost", "wrong-password").status_code == 429
        # Others are not affected by alice's lock...
        assert _status(server, "bob", "bob-password-123").status_code == 200
        # ... until this address has failed too often (8 in total): then only credentials
        # already verified go through.
        for _ in range(2):
            _status(server, "carol", "wrong-password")
        assert _status(server, "bob", "bob-password-123").status_code == 200  # cached
        assert _status(server, "dave", "dave-password-12").status_code == 429
        assert _status(server, ADMIN, ADMIN_PASSWORD).status_code == 200
    finally:
        server.stop()


def test_refusals_do_not_tell_who_exists(auth_server: TetherServer) -> None:
    _create(auth_server, "erin", "erin-password-12")
    known = _status(auth_server, "erin", "not-her-password")
    unknown = _status(auth_server, "nobody-at-all", "not-her-password")
    assert known.status_code == unknown.status_code == 401
    assert known.json() == unknown.json()
    assert known.headers["www-authenticate"] == unknown.headers["www-authenticate"]

    # Both cost a key derivation: the unknown user is not answered measurably faster.
    def timed(user: str) -> float:
        start = time.perf_counter()
        _status(auth_server, user, "not-the-password-1")
        return time.perf_counter() - start

    known_time = min(timed("erin") for _ in range(3))
    unknown_time = min(timed(f"nobody-{i}") for i in range(3))
    assert unknown_time > known_time / 4, (known_time, unknown_time)


def test_no_secret_in_logs_or_answers(auth_server: TetherServer) -> None:
    password = "PLANTED-password-7f3a9c"
    start = auth_server.log_size()
    _create(auth_server, "frank", password)
    with http(auth_server.url, "frank", password) as frank:
        token = frank.post("/api/2.0/tether/tokens/create", json={"name": "t"}).json()["secret"]
        answers = [
            frank.get("/api/2.0/mlflow/users/get", params={"username": "frank"}).text,
            frank.get("/api/2.0/mlflow/users/current").text,
            frank.get("/api/2.0/tether/tokens/list").text,
        ]
    with http(auth_server.url, ADMIN, ADMIN_PASSWORD) as admin:
        answers.append(admin.get("/api/2.0/mlflow/users/list").text)
        answers.append(
            admin.patch(
                "/api/2.0/mlflow/users/update-password",
                json={"username": "frank", "password": password + "-2"},
            ).text
        )
    wrong = "PLANTED-wrong-2b81d4"
    bad_token = "tether_pat_PLANTED-bad-token-91ce"
    with httpx.Client(base_url=auth_server.url, trust_env=False) as client:
        for headers in (
            {"Authorization": "Bearer " + token},
            {"Authorization": "Bearer " + bad_token},
            {"Authorization": "Basic " + base64.b64encode(f"frank:{wrong}".encode()).decode()},
            {"Authorization": "Basic PLANTED-not-base64"},
            {"Authorization": f"Digest PLANTED-{wrong}"},
        ):
            answers.append(client.get("/api/2.0/mlflow/users/current", headers=headers).text)
    log = auth_server.log_text(start)
    assert "frank" in log  # the lines we look through are there
    secrets = [password, password + "-2", wrong, token, bad_token, "PLANTED-not-base64"]
    secrets += [base64.b64encode(f"frank:{p}".encode()).decode() for p in (password, wrong)]
    for secret in secrets:
        assert secret not in log, f"{secret!r} reached the log"
        for answer in answers:
            assert secret not in answer
    for text in (log, *answers):
        assert "scrypt$" not in text  # no password hash anywhere
        assert "PLANTED" not in text


def test_a_changed_password_stops_working_in_every_worker(
    backend_kind: str, make_backend_uri: BackendUriFactory
) -> None:
    """The verified-credential cache is per worker; it is trusted only while the stored hash
    is the one it verified, so a password change applies at once everywhere."""
    server = tether_auth_server(make_backend_uri(backend_kind), extra_args=["--workers", "2"])
    try:
        _create(server, "gina", "gina-password-12")
        for _ in range(12):  # new connections: both workers verify and cache it
            assert _status(server, "gina", "gina-password-12").status_code == 200
        with http(server.url, ADMIN, ADMIN_PASSWORD) as admin:
            changed = admin.patch(
                "/api/2.0/mlflow/users/update-password",
                json={"username": "gina", "password": "gina-password-34"},
            )
            assert changed.status_code == 200
        assert [_status(server, "gina", "gina-password-12").status_code for _ in range(6)] == [
            401
        ] * 6
        assert _status(server, "gina", "gina-password-34").status_code == 200
    finally:
        server.stop()
