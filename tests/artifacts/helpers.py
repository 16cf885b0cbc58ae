"""Helpers for the artifact tests: what a store holds, looked at directly (not through Tether)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support import MlflowRest, TetherServer, outbox, unique_name
from support.outbox import open_store

PROXY = "/api/2.0/mlflow-artifacts/artifacts"
STORE_PREFIX = "store"  # the blob prefix the Azurite servers use


@dataclass
class ArtifactServer:
    """A Tether server plus direct access to the store behind it."""

    server: TetherServer
    kind: str
    extra_args: list[str]
    azurite: Any = None
    _container: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.kind == "azurite":
            # wasbs://<container>@devstoreaccount1.blob.core.windows.net/store
            destination = self.extra_args[self.extra_args.index("--artifacts-destination") + 1]
            self._container = destination.split("//", 1)[1].split("@", 1)[0]

    @property
    def url(self) -> str:
        return self.server.url

    def rest(self) -> MlflowRest:
        return self.server.rest()

    # The store, seen directly ---------------------------------------------------------

    def _container_client(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient.from_connection_string(self.azurite.connection_string)
        return service.get_container_client(self._container)

    def stored_files(self) -> dict[str, int]:
        """Every stored file (store-relative path -> size)."""
        if self.kind == "local":
            root = Path(self.server.artifacts_destination)
            return {
                p.relative_to(root).as_posix(): p.stat().st_size
                for p in root.rglob("*")
                if p.is_file()
            }
        with self._container_client() as container:
            prefix = STORE_PREFIX + "/"
            return {
                b.name[len(prefix) :]: b.size for b in container.list_blobs(name_starts_with=prefix)
            }

    def read_stored(self, path: str) -> bytes | None:
        if self.kind == "local":
            file = Path(self.server.artifacts_destination) / path
            return file.read_bytes() if file.is_file() else None
        from azure.core.exceptions import ResourceNotFoundError

        with self._container_client() as container:
            try:
                return bytes(container.download_blob(f"{STORE_PREFIX}/{path}").readall())
            except ResourceNotFoundError:
                return None

    # Outbox ------------------------------------------------------------------------------

    def outbox_after(self, last_id: int) -> list[dict[str, Any]]:
        return outbox_after(self.server.backend_uri, last_id)

    def last_outbox_id(self) -> int:
        return last_outbox_id(self.server.backend_uri)


def outbox_after(backend_uri: str, last_id: int) -> list[dict[str, Any]]:
    """The artifact records (`artifact_*` ops) after `last_id` in the store at `backend_uri`."""
    with open_store(backend_uri) as db:
        rows = outbox.outbox_after(db, last_id)
    return [r for r in rows if r["op"].startswith("artifact_")]


def last_outbox_id(backend_uri: str) -> int:
    with open_store(backend_uri) as db:
        return outbox.last_outbox_id(db)


def new_run(rest: MlflowRest) -> tuple[str, str]:
    """(run_id, store path of its artifact root) of a new run in a new experiment."""
    exp = rest.post("experiments/create", {"name": unique_name("art")}).json["experiment_id"]
    info = rest.post("runs/create", {"experiment_id": exp}).json["run"]["info"]
    uri: str = info["artifact_uri"]
    assert uri.startswith("mlflow-artifacts:/"), uri
    return info["run_id"], uri.removeprefix("mlflow-artifacts:").lstrip("/")


def raw_request(url: str, method: str, raw_path: str, body: bytes | None = None) -> tuple[int, Any]:
    """Send `raw_path` exactly as given (no client-side normalisation of `..` or escapes)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.putrequest(method, raw_path, skip_accept_encoding=True)
        conn.putheader("Content-Length", str(len(body or b"")))
        if body is not None:
            conn.putheader("Content-Type", "application/octet-stream")
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(data) if data else None
    except ValueError:
        return response.status, data


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root
