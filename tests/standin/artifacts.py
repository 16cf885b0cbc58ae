"""The workspace's artifact index and the SAS URLs it hands out (docs/azureml-protocol.md §5).

Azure keeps artifact *records* (run history) apart from the blobs (§5.4: deleting blobs does
not change what Studio lists; list/contentinfo answer from records). So here too: a record is
created by `batch/metadata`, which returns a write SAS; the bytes go straight to Azurite; list
and contentinfo answer from the records, never from the container. A worker that writes blobs
without asking for records first is caught by that.

Blob layout (§5.2/§5.3): container `<workspace-guid>-azureml`, blob
`<origin>/<container>/<path>`, i.e. `ExperimentRun/dcid.<run id>/<path>` for run artifacts.
SAS are real (azure-storage-blob's `generate_blob_sas` with Azurite's account key), so Azurite
enforces them: expiry -> 403, and `If-None-Match: *` on an existing blob -> 409 (§8.2 item 8).
"""

from __future__ import annotations

import base64
import datetime as dt
import posixpath
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from azure.storage.blob import BlobSasPermissions, generate_blob_sas

RUN_ORIGIN = "ExperimentRun"
DATASTORE = "workspaceartifactstore"
MAX_PATH_LENGTH = 5000  # §4.2 "artifacts per run / path length"


def run_container(run_id: str) -> str:
    return f"dcid.{run_id}"


def blob_name(origin: str, container: str, path: str) -> str:
    return f"{origin}/{container}/{path}"


def path_problem(path: Any) -> str | None:
    """Why `path` cannot be an artifact path, or None."""
    if not isinstance(path, str) or not path:
        return "The artifact path must be a non-empty string."
    if len(path) > MAX_PATH_LENGTH:
        return f"The artifact path is longer than {MAX_PATH_LENGTH} characters."
    if path.startswith("/") or "\\" in path or "\x00" in path:
        return f"Invalid artifact path {path!r}: it must be relative and use '/'."
    normalized = posixpath.normpath(path)
    if normalized != path.rstrip("/") or normalized.startswith("..") or normalized == ".":
        return f"Invalid artifact path {path!r}: it must be normalized and stay inside the run."
    return None


@dataclass
class BlobAccount:
    endpoint: str  # http://127.0.0.1:<port>/devstoreaccount1
    account_name: str
    account_key: str
    container: str  # <workspace-guid>-azureml

    def sas_url(
        self,
        name: str,
        *,
        write: bool,
        ttl_seconds: float,
        via: str | None = None,
        read: bool = True,
    ) -> str:
        """A SAS URL of blob `name`; `via` replaces the storage endpoint (the front's storage
        pass-through, same path layout, so the signature still matches); a write SAS without
        `read` may create and write only."""
        now = dt.datetime.now(dt.UTC)
        sas = generate_blob_sas(
            account_name=self.account_name,
            container_name=self.container,
            blob_name=name,
            account_key=self.account_key,
            permission=BlobSasPermissions(read=read or not write, create=write, write=write),
            start=now - dt.timedelta(minutes=5),
            expiry=now + dt.timedelta(seconds=ttl_seconds),
        )
        return f"{via or self.endpoint}/{self.container}/{quote(name, safe='/')}?{sas}"


class ArtifactIndex:
    def __init__(self, account: BlobAccount) -> None:
        self.account = account
        self._records: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}

    def records(self, origin: str, container: str) -> list[dict[str, Any]]:
        return list(self._records.get((origin, container), {}).values())

    def get(self, origin: str, container: str, path: str) -> dict[str, Any] | None:
        return self._records.get((origin, container), {}).get(path)

    def create(
        self, origin: str, container: str, path: str, tags: dict[str, str] | None
    ) -> dict[str, Any]:
        """The record for `path`, created if new (an existing record is kept as it is) [INF]."""
        bucket = self._records.setdefault((origin, container), {})
        record = bucket.get(path)
        if record is None:
            name = blob_name(origin, container, path)
            record = {
                "artifactId": name,
                "origin": origin,
                "container": container,
                "path": path,
                "etag": f'"{uuid.uuid4()}"',
                "createdTime": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
                "dataPath": {
                    "dataStoreName": DATASTORE,
                    "relativePath": name,
                    "sqlDataPath": None,
                },
                "tags": dict(tags or {}),
            }
            bucket[path] = record
        return record

    def content_info(
        self,
        record: dict[str, Any],
        *,
        write: bool,
        ttl: float,
        via: str | None = None,
        write_reads: bool = True,
    ) -> dict[str, Any]:
        """`write_reads`: whether a write SAS may read too (quirk `write_sas_reads`)."""
        name = blob_name(record["origin"], record["container"], record["path"])
        uri = self.account.sas_url(name, write=write, ttl_seconds=ttl, via=via, read=write_reads)
        return {
            "contentUri": uri,
            "origin": record["origin"],
            "container": record["container"],
            "path": record["path"],
            "tags": record["tags"],
        }

    def clear(self) -> None:
        self._records.clear()


def page(
    records: list[dict[str, Any]], token: str | None, size: int
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a listing and the continuationToken of the next (None at the end)."""
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode())
        except ValueError:
            start = 0
    end = start + max(1, size)
    following = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(records) else None
    return records[start:end], following
