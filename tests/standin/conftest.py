"""Fixtures for the stand-in's own tests (the shared ones are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from standin.helpers import AzClient
from standin.identity import ManagedIdentityEndpoint
from standin.workspace import AzuremlWorkspace


@pytest.fixture
def token(azureml_identity: ManagedIdentityEndpoint) -> str:
    return azureml_identity.mint(lifetime=600)


@pytest.fixture
def az(azureml_workspace: AzuremlWorkspace, token: str) -> Iterator[AzClient]:
    client = AzClient(azureml_workspace, token)
    try:
        yield client
    finally:
        client.close()
