"""The stock MLflow 3 client against Tether's artifact proxy, on the local and Azurite stores.

Everything goes through the real client (`mlflow.log_artifact(s)`, `MlflowClient`,
`mlflow.artifacts.download_artifacts`) and is then checked against what the store itself
holds, so a passing test means the bytes really landed where they should.
"""

from __future__ import annotations

import os
import posixpath
import socket
import time
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import FileInfo
from mlflow.exceptions import RestException

from artifacts.helpers import PROXY, ArtifactServer, new_run, write_tree
from support import unique_name

pytestmark = pytest.mark.usefixtures("clean_mlflow_client")  # the fluent API's globals

TREE = {
    "a.txt": b"hello",
    "empty.txt": b"",
    "nested/deeper/b.bin": os.urandom(300_000),
    "nested/c.json": b'{"k": 1}',
    "ünïcødé ✓/名前 with space.txt": "unicode content ✓".encode(),
    "MLmodel": b"flavors: {}\n",
}


def _experiment(url: str) -> str:
    return MlflowClient(url).create_experiment(unique_name("art"))


def _list(url: str, run_id: str, path: str | None = None) -> list[FileInfo]:
    """`MlflowClient.list_artifacts`. Below the root, MLflow 3 also looks for logged models
    of the run (`/logged-models/search`); while this server lacks that API, list by the run's
    artifact URI instead, which is the same proxied listing without the model lookup."""
    client = MlflowClient(url)
    try:
        return client.list_artifacts(run_id, path)
    except RestException as exc:
        if exc.error_code != "ENDPOINT_NOT_FOUND" or "logged-models" not in exc.message:
            raise
    uri = client.get_run(run_id).info.artifact_uri
    # Listed relative to the URI's parent: make the paths run-relative again.
    parent = posixpath.dirname(path or "")
    return [
        FileInfo(posixpath.join(parent, f.path), f.is_dir, f.file_size)
        for f in mlflow.artifacts.list_artifacts(artifact_uri=f"{uri}/{path}", tracking_uri=url)
    ]


def test_log_list_download_roundtrip(artifact_server: ArtifactServer, tmp_path: Path) -> None:
    url = artifact_server.url
    source = write_tree(tmp_path / "src", TREE)
    single = write_tree(tmp_path / "one", {"model.pkl": b"\x80\x04pickled"}) / "model.pkl"
    mlflow.set_tracking_uri(url)
    with mlflow.start_run(experiment_id=_experiment(url)) as run:
        mlflow.log_artifact(str(single))
        mlflow.log_artifacts(str(source), artifact_path="tree")
    run_id = run.info.run_id

    top = _list(url, run_id)
    assert [(f.path, f.is_dir, f.file_size) for f in top] == [
        ("model.pkl", False, 9),
        ("tree", True, None),
    ]
    tree = _list(url, run_id, "tree")
    assert [(f.path, f.is_dir) for f in tree] == [
        ("tree/MLmodel", False),
        ("tree/a.txt", False),
        ("tree/empty.txt", False),
        ("tree/nested", True),
        ("tree/ünïcødé ✓", True),
    ]
    sizes = {f.path: f.file_size for f in tree}
    assert sizes["tree/a.txt"] == 5
    assert sizes["tree/empty.txt"] in (0, None)  # MLflow omits a zero size
    nested = _list(url, run_id, "tree/nested/deeper")
    assert [(f.path, f.file_size) for f in nested] == [("tree/nested/deeper/b.bin", 300_000)]
    assert _list(url, run_id, "tree/a.txt") == []  # a file lists as nothing
    assert _list(url, run_id, "no/such/dir") == []

    # By artifact URI: the run_id form also searches the run's logged models, an API this
    # test does not depend on.
    artifact_uri = run.info.artifact_uri
    out = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"{artifact_uri}/tree", dst_path=str(tmp_path / "dl"), tracking_uri=url
        )
    )
    downloaded = {
        p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()
    }
    assert downloaded == TREE
    one = mlflow.artifacts.download_artifacts(
        artifact_uri=f"{artifact_uri}/model.pkl", dst_path=str(tmp_path / "dl1"), tracking_uri=url
    )
    assert Path(one).read_bytes() == b"\x80\x04pickled"

    # The bytes are in the store itself, under <exp>/<run>/artifacts/.
    root = artifact_uri.removeprefix("mlflow-artifacts:").lstrip("/")
    stored = artifact_server.stored_files()
    for name, content in TREE.items():
        assert stored[f"{root}/tree/{name}"] == len(content)
        assert artifact_server.read_stored(f"{root}/tree/{name}") == content


def test_overwrite_replaces_content(artifact_server: ArtifactServer, tmp_path: Path) -> None:
    url = artifact_server.url
    client = MlflowClient(url)
    run_id = client.create_run(_experiment(url)).info.run_id
    for content in (b"first version, longer", b"second"):
        path = write_tree(tmp_path / content.decode()[:5], {"notes.txt": content}) / "notes.txt"
        client.log_artifact(run_id, str(path), "docs")
    assert [(f.path, f.file_size) for f in _list(url, run_id, "docs")] == [("docs/notes.txt", 6)]
    got = client.download_artifacts(run_id, "docs/notes.txt", str(tmp_path / "dl"))
    assert Path(got).read_bytes() == b"second"


def test_tracking_list_and_get_artifact(artifact_server: ArtifactServer) -> None:
    with artifact_server.rest() as rest:
        run_id, root = new_run(rest)
        for name, content in TREE.items():
            assert rest.request("PUT", f"{PROXY}/{root}/{name}", content=content).status == 200

        listing = rest.get("artifacts/list", {"run_id": run_id}).json
        assert listing["root_uri"] == f"mlflow-artifacts:/{root}"
        assert listing["files"] == [
            {"path": "MLmodel", "is_dir": False, "file_size": 12},
            {"path": "a.txt", "is_dir": False, "file_size": 5},
            {"path": "empty.txt", "is_dir": False},
            {"path": "nested", "is_dir": True},
            {"path": "ünïcødé ✓", "is_dir": True},
        ]
        nested = rest.get(
            "/ajax-api/2.0/mlflow/artifacts/list", {"run_uuid": run_id, "path": "nested/"}
        )
        assert [f["path"] for f in nested.json["files"]] == ["nested/c.json", "nested/deeper"]
        assert "files" not in rest.get("artifacts/list", {"run_id": run_id, "path": "a.txt"}).json

        got = rest.get("/get-artifact", {"run_id": run_id, "path": "ünïcødé ✓/名前 with space.txt"})
        assert got.status == 200
        assert got.text == "unicode content ✓"
        assert got.headers["content-type"] == "text/plain"
        assert got.headers["x-content-type-options"] == "nosniff"
        assert got.headers["content-disposition"].endswith(
            "; filename*=UTF-8''%E5%90%8D%E5%89%8D%20with%20space.txt"
        )
        model = rest.get("/get-artifact", {"run_id": run_id, "path": "MLmodel"})
        assert (model.status, model.headers["content-type"]) == (200, "text/plain")
        binary = rest.get(f"{PROXY}/{root}/nested/deeper/b.bin")
        assert binary.headers["content-type"] == "application/octet-stream"
        assert binary.headers["content-length"] == "300000"
        assert binary.headers["content-disposition"] == "attachment; filename=b.bin"

        assert rest.get("/get-artifact", {"run_id": run_id, "path": "nested"}).status == 400
        missing = rest.get("/get-artifact", {"run_id": run_id, "path": "nope.txt"})
        assert (missing.status, missing.error_code) == (404, "RESOURCE_DOES_NOT_EXIST")
        unknown = rest.get("/get-artifact", {"run_id": "0" * 32, "path": "a.txt"})
        assert (unknown.status, unknown.error_code) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_delete_files_and_directories(artifact_server: ArtifactServer) -> None:
    with artifact_server.rest() as rest:
        _, root = new_run(rest)
        for name, content in TREE.items():
            rest.request("PUT", f"{PROXY}/{root}/{name}", content=content)
        assert rest.delete(f"{PROXY}/{root}/a.txt").status == 200
        assert rest.delete(f"{PROXY}/{root}/nested").status == 200
        assert rest.delete(f"{PROXY}/{root}/never-there").status == 200  # idempotent, as MLflow
        listing = rest.get(PROXY, {"path": root}).json
        assert [f["path"] for f in listing["files"]] == ["MLmodel", "empty.txt", "ünïcødé ✓"]
    remaining = {p for p in artifact_server.stored_files() if p.startswith(root + "/")}
    assert remaining == {
        f"{root}/{n}" for n in ("MLmodel", "empty.txt", "ünïcødé ✓/名前 with space.txt")
    }


def test_logged_model_artifacts(artifact_server: ArtifactServer) -> None:
    model_root = f"{unique_name('9')}/models/m-{os.urandom(16).hex()}/artifacts"
    with httpx.Client(base_url=artifact_server.url, timeout=30) as http:
        assert http.put(f"{PROXY}/{model_root}/model.pkl", content=b"weights").status_code == 200
        listing = http.get(PROXY, params={"path": model_root}).json()
        assert listing == {"files": [{"path": "model.pkl", "is_dir": False, "file_size": 7}]}
        assert http.get(f"{PROXY}/{model_root}/model.pkl").content == b"weights"


@pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)
def test_no_serve_artifacts(start_tether_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`--no-serve-artifacts`: the proxy answers 503 as MLflow's does, the client writes to the
    destination directly, and the tracking API still lists and serves the run's files."""
    server = start_tether_server(extra_args=["--no-serve-artifacts"])
    with server.rest() as rest:
        for method, path in [("PUT", f"{PROXY}/0/x.txt"), ("GET", PROXY), ("GET", f"{PROXY}/x")]:
            answer = rest.request(method, path, content=b"x" if method == "PUT" else None)
            assert (answer.status, answer.error_code) == (503, "TEMPORARILY_UNAVAILABLE")
        mpu = rest.post("/api/2.0/mlflow-artifacts/mpu/create/0", {"path": "f", "num_parts": 1})
        assert mpu.status == 503
        info = rest.get("/api/3.0/mlflow/server-info").json
        assert info["multipart_uploads_enabled"] is False

    client = MlflowClient(server.url)
    run = client.create_run(_experiment(server.url))
    assert run.info.artifact_uri.startswith(server.artifacts_destination)
    source = write_tree(tmp_path / "src", {"a.txt": b"direct", "d/b.txt": b"bb"})
    client.log_artifacts(run.info.run_id, str(source))
    with server.rest() as rest:
        listing = rest.get("artifacts/list", {"run_id": run.info.run_id}).json
        assert listing["files"] == [
            {"path": "a.txt", "is_dir": False, "file_size": 6},
            {"path": "d", "is_dir": True},
        ]
        got = rest.get("/get-artifact", {"run_id": run.info.run_id, "path": "d/b.txt"})
        assert (got.status, got.text) == (200, "bb")


def test_interrupted_upload_keeps_previous_version(artifact_server: ArtifactServer) -> None:
    path = f"{unique_name('9')}/interrupted/file.bin"
    with httpx.Client(base_url=artifact_server.url, timeout=30) as http:
        assert http.put(f"{PROXY}/{path}", content=b"complete v1").status_code == 200
    last = artifact_server.last_outbox_id()
    host, port = artifact_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            # A real Host: others are refused before the body is read (tether.ui.security).
            f"PUT {PROXY}/{path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Length: 10000000\r\n\r\n".encode()
            + os.urandom(6 * 1024 * 1024)
        )
    # The server notices the disconnect; the stored file must still be the complete v1.
    deadline = time.monotonic() + 20
    while "aborted: the client disconnected" not in artifact_server.server.log_text():
        assert time.monotonic() < deadline, artifact_server.server.log_text()
        time.sleep(0.1)
    assert artifact_server.read_stored(path) == b"complete v1"
    assert artifact_server.outbox_after(last) == []
    stored = artifact_server.stored_files()
    assert [p for p in stored if "interrupted" in p] == [path]  # no temporary files left
