"""Fixtures for the stand-in's own tests (the shared ones are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from azureml.helpers import AzClient
from azureml.identity import ManagedIdentityEndpoint
from azureml.workspace import AzuremlWorkspace


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
