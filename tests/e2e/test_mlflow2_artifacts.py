"""The MLflow 2.x client's artifact and model flows through Tether's proxy, local and Azure Blob.

2.x clients log models as run artifacts (no logged-models API): `mlflow.sklearn.log_model`
then `mlflow.pyfunc.load_model("runs:/<run>/model")`. The same script runs against the
reference `mlflow server`; listings and predictions must agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from support import Mlflow2, ReferenceServer, TetherServer, unique_name

SNIPPET = r"""
import os, tempfile
import numpy as np
from sklearn.linear_model import LogisticRegression

mlflow.set_experiment(__EXPERIMENT__)
work = tempfile.mkdtemp()
os.makedirs(os.path.join(work, "data", "nested"))
with open(os.path.join(work, "data", "a.txt"), "w") as f:
    f.write("alpha")
with open(os.path.join(work, "data", "nested", "b.bin"), "wb") as f:
    f.write(bytes(range(256)) * 4096)  # 1 MiB
with open(os.path.join(work, "empty.txt"), "w"):
    pass
model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1]))
with mlflow.start_run() as run:
    mlflow.log_artifacts(os.path.join(work, "data"), artifact_path="data")
    mlflow.log_artifact(os.path.join(work, "empty.txt"))
    mlflow.sklearn.log_model(model, "model")
run_id = run.info.run_id

def listing(path=None):
    return sorted((f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id, path))

out = tempfile.mkdtemp()
client.download_artifacts(run_id, "data", out)
downloaded = {}
for root, _, files in os.walk(out):
    for name in files:
        full = os.path.join(root, name)
        downloaded[os.path.relpath(full, out)] = os.path.getsize(full)
loaded = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
result = {
    "root": listing(),
    "data": listing("data"),
    "nested": listing("data/nested"),
    "model_files": sorted(p for p, _, _ in listing("model")),
    "downloaded": downloaded,
    "prediction": [int(v) for v in loaded.predict(np.array([[0.0], [3.0]]))],
}
"""


def _run(mlflow2: Mlflow2, url: str) -> dict[str, Any]:
    snippet = SNIPPET.replace("__EXPERIMENT__", repr(unique_name("m2-artifacts")))
    result: dict[str, Any] = mlflow2.run(url, snippet)
    return result


@pytest.fixture(scope="module", params=["local", "azurite"])
def artifact_tether(
    request: pytest.FixtureRequest, make_backend_uri: Any
) -> Iterator[TetherServer]:
    extra_args: list[str] = []
    env: dict[str, str] = {}
    if request.param == "azurite":
        azurite = request.getfixturevalue("azurite")
        extra_args = ["--artifacts-destination", azurite.wasbs(azurite.new_container(), "a")]
        env = azurite.env()
    server = TetherServer(make_backend_uri("sqlite"), extra_args=extra_args, env=env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def reference_result(mlflow2: Mlflow2, reference_server: ReferenceServer) -> dict[str, Any]:
    return _run(mlflow2, reference_server.url)


def test_mlflow2_artifacts_and_run_models(
    mlflow2: Mlflow2, artifact_tether: TetherServer, reference_result: dict[str, Any]
) -> None:
    got = _run(mlflow2, artifact_tether.url)
    assert reference_result["prediction"] == [0, 1]
    assert reference_result["downloaded"] == {"data/a.txt": 5, "data/nested/b.bin": 1 << 20}
    assert "model/MLmodel" in reference_result["model_files"]
    # The model folder is compared by file names only: its environment files may differ in
    # size between two logging calls. Everything else, sizes included, must be identical.
    assert got == reference_result
