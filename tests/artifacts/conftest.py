"""Fixtures for the artifact tests: one Tether server per artifact store and test module.

`store_kind` parametrizes every test that uses `artifact_server` over the local directory
store and Azure Blob Storage (Azurite). The metadata store is SQLite throughout: the artifact
code does not depend on it (the outbox test also runs on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from artifacts.helpers import ArtifactServer
from support import TetherServer

STORES = [pytest.param("local", id="local"), pytest.param("azurite", id="azurite")]


@pytest.fixture(scope="module", params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def server_args(kind: str, request: pytest.FixtureRequest) -> tuple[list[str], dict[str, str]]:
    """(extra_args, env) that point a Tether server at a fresh store of `kind`."""
    if kind == "local":
        return [], {}
    azurite: Any = request.getfixturevalue("azurite")
    container = azurite.new_container()
    return ["--artifacts-destination", azurite.wasbs(container, "store")], azurite.env()


@pytest.fixture(scope="module")
def artifact_server(
    store_kind: str, make_backend_uri: Any, request: pytest.FixtureRequest
) -> Iterator[ArtifactServer]:
    """A Tether server on a fresh store of `store_kind`, shared by the test module."""
    extra_args, env = server_args(store_kind, request)
    server = TetherServer(make_backend_uri("sqlite"), extra_args=extra_args, env=env)
    azurite = request.getfixturevalue("azurite") if store_kind == "azurite" else None
    try:
        yield ArtifactServer(server, store_kind, extra_args, azurite)
    finally:
        server.stop()
