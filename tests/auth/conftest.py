"""Servers with authentication on, for this folder's tests (support/auth.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support import BackendUriFactory, TetherServer
from support.auth import ReferenceAuthServer, tether_auth_server


@pytest.fixture(scope="module")
def auth_server(backend_kind: str, make_backend_uri: BackendUriFactory) -> Iterator[TetherServer]:
    """`tether serve --app-name basic-auth` on a fresh store of the current backend, shared
    by the test module; admin: support.auth.ADMIN / ADMIN_PASSWORD."""
    server = tether_auth_server(make_backend_uri(backend_kind))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def reference_auth_server() -> Iterator[ReferenceAuthServer]:
    """A fresh `mlflow server --app-name basic-auth` for the module."""
    server = ReferenceAuthServer()
    try:
        yield server
    finally:
        server.stop()
