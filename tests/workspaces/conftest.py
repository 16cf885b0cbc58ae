"""Fixtures for the workspace tests: `mlflow server --enable-workspaces` (session-wide) and
`tether serve --enable-workspaces` (per module and backend), side by side."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.register_assert_rewrite("compat.diff")

from support import BackendUriFactory, ReferenceServer, TetherServer  # noqa: E402

ENABLE = ["--enable-workspaces"]


@pytest.fixture(scope="session")
def reference_workspaces_server() -> Iterator[ReferenceServer]:
    """The installed `mlflow server --enable-workspaces` on its own SQLite store."""
    server = ReferenceServer(extra_args=ENABLE)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tether_workspaces_server(
    backend_kind: str, make_backend_uri: BackendUriFactory
) -> Iterator[TetherServer]:
    """`tether serve --enable-workspaces` on a fresh store of the current backend."""
    server = TetherServer(make_backend_uri(backend_kind), extra_args=ENABLE)
    try:
        yield server
    finally:
        server.stop()
