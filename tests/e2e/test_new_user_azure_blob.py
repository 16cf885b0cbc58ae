"""Issue 3's acceptance walk, as a new user would do it with Azure Blob (Azurite) behind Tether.

The client holds no storage credentials: only the server has AZURE_STORAGE_CONNECTION_STRING.
Log a model, register it, give it an alias, load it back by alias and predict; log and fetch
artifacts; the bytes are really in the blob container.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
from azure.storage.blob import BlobServiceClient
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from support import TetherServer, unique_name
from support.mlflow3 import tracking_to


@pytest.fixture(scope="module")
def blob_server(azurite: Any, make_backend_uri: Any) -> Iterator[tuple[TetherServer, Any, str]]:
    container = azurite.new_container()
    server = TetherServer(
        make_backend_uri("sqlite"),
        extra_args=["--artifacts-destination", azurite.wasbs(container, "store")],
        env=azurite.env(),
    )
    try:
        yield server, azurite, container
    finally:
        server.stop()


@pytest.fixture
def client_without_storage_credentials(
    blob_server: tuple[TetherServer, Any, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[MlflowClient]:
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    server = blob_server[0]
    with tracking_to(server.url):
        mlflow.set_registry_uri(server.url)
        yield MlflowClient(server.url, server.url)


def test_model_registered_and_loaded_by_alias_from_blob(
    client_without_storage_credentials: MlflowClient,
    blob_server: tuple[TetherServer, Any, str],
    tmp_path: Path,
) -> None:
    client = client_without_storage_credentials
    _, azurite, container = blob_server
    assert "AZURE_STORAGE_CONNECTION_STRING" not in os.environ

    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    model = LogisticRegression().fit(x, y)
    name = unique_name("model")
    mlflow.set_experiment(unique_name("blob"))
    with mlflow.start_run() as run:
        mlflow.log_param("C", model.C)
        info = mlflow.sklearn.log_model(model, name="clf", registered_model_name=name)
        notes = tmp_path / "notes.txt"
        notes.write_text("trained on four points\n")
        mlflow.log_artifact(str(notes), artifact_path="docs")

    (registered,) = client.search_model_versions(f"name = '{name}'")
    version = registered.version
    client.set_registered_model_alias(name, "champion", version)
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert list(loaded.predict(np.array([[0.0], [3.0]]))) == [0, 1]
    assert client.get_model_version_by_alias(name, "champion").version == version

    downloaded = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"{run.info.artifact_uri}/docs/notes.txt", dst_path=str(tmp_path / "d")
        )
    )
    assert downloaded.read_text() == "trained on four points\n"

    # The bytes live in the blob container, under the run's and the logged model's folders.
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    names = [b.name for b in blobs.get_container_client(container).list_blobs()]
    assert any(n.endswith(f"{run.info.run_id}/artifacts/docs/notes.txt") for n in names)
    assert any(info.model_id in n and n.endswith("MLmodel") for n in names), names
