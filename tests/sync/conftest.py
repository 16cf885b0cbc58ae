"""Fixtures shared by the sync tests: a migrated store (`db`), `tether serve` processes syncing
into the stand-in workspace (`start_synced_server`), and Tether's services in-process syncing
into it (`tether`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support import TetherServer, TetherServerStarter
from sync.sync_servers import SyncedServerStarter, start_synced
from sync.sync_tether import Tether, open_tether

if TYPE_CHECKING:
    from standin.identity import ManagedIdentityEndpoint
    from standin.workspace import AzuremlWorkspace


@pytest.fixture
def start_synced_server(
    start_tether_server: TetherServerStarter,
    azureml_workspace: AzuremlWorkspace,
    azureml_identity: ManagedIdentityEndpoint,
    tmp_path: Path,
) -> SyncedServerStarter:
    """`start(backend_uri=None)`: `tether serve --azureml-workspace` on the stand-in, stopped
    when the test ends. All servers it starts share one artifact store, which outlives a killed
    server (a server's own tmpdir does not)."""
    store = str(tmp_path / "artifacts")

    def start(backend_uri: str | None = None) -> TetherServer:
        return start_synced(
            start_tether_server,
            azureml_workspace,
            azureml_identity,
            backend_uri,
            artifacts_destination=store,
        )

    return start


@pytest.fixture
def tether(
    tmp_path: Path,
    azureml_workspace: AzuremlWorkspace,
    azureml_identity: ManagedIdentityEndpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Tether]:
    """Tether's services on a fresh SQLite store, syncing into the stand-in workspace."""
    with open_tether(tmp_path, azureml_workspace, azureml_identity, monkeypatch) as tether:
        yield tether


@pytest.fixture(scope="module")
def team_b_workspace(
    request: pytest.FixtureRequest, azureml_identity: ManagedIdentityEndpoint
) -> Iterator[AzuremlWorkspace]:
    """A second stand-in Azure ML workspace (its own MLflow, own Blob container)."""
    from standin.workspace import AzuremlWorkspace
    from support.azurite import ACCOUNT, ACCOUNT_KEY

    def blob() -> tuple[str, tuple[str, str]]:
        azurite = request.getfixturevalue("azurite")
        return azurite.blob_endpoint, (ACCOUNT, ACCOUNT_KEY)

    workspace = AzuremlWorkspace(
        azureml_identity,
        shared_blob=blob,
        resource_group="rg-team-b",
        workspace="ws-team-b",
    )
    try:
        yield workspace
    finally:
        workspace.stop()
