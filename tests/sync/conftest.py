"""Fixtures shared by the sync tests that drive Tether's services in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sync.sync_tether import Tether, open_tether

if TYPE_CHECKING:
    from standin.identity import ManagedIdentityEndpoint
    from standin.workspace import AzuremlWorkspace


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
