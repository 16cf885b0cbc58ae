"""Artifacts in Azure Blob Storage: `wasbs://<container>@<account>.blob.core.windows.net/<prefix>`.

Credentials are found the way MLflow's AzureBlobArtifactRepository finds them:
`AZURE_STORAGE_CONNECTION_STRING` (its `BlobEndpoint` honoured: Azurite, private endpoints),
else `AZURE_STORAGE_ACCESS_KEY` for the account in the URI, else azure-identity's
`DefaultAzureCredential` (no interactive login).

Uploads are streamed into blocks (`stage_block`, a bounded number in flight) and committed
with `commit_block_list`; a body that fits in one block is a single Put Blob. Downloads stream
`block_size` ranges, a bounded number requested ahead. Multipart uploads hand the client one
SAS URL per block, as MLflow does.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import contextlib
import datetime
import logging
import re
import urllib.parse
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobProperties, BlobSasPermissions, generate_blob_sas
from azure.storage.blob.aio import BlobClient, BlobServiceClient, ContainerClient

from tether.errors import MlflowError, invalid_parameter, not_found
from tether.storage.base import FileInfo, UploadCredential, UploadedPart
from tether.storage.local import directory_error
from tether.storage.paths import join
from tether.storage.streams import rechunk

log = logging.getLogger("tether.artifacts")

_NETLOC = re.compile(
    r"([^@]+)@([^.]+)\.(blob\.core\.(?:windows\.net|chinacloudapi\.cn|usgovcloudapi\.net))"
)
MAX_BLOCKS = 50_000  # Azure's limit per block blob
UNSUPPORTED_MULTIPART = "Multipart upload is not supported for the current artifact repository"


@dataclass(frozen=True)
class WasbsUri:
    container: str
    account: str
    path: str
    suffix: str  # blob.core.windows.net, or a sovereign cloud's

    @classmethod
    def parse(cls, uri: str) -> WasbsUri:
        parsed = urllib.parse.urlparse(uri)
        match = _NETLOC.fullmatch(parsed.netloc) if parsed.scheme == "wasbs" else None
        if match is None:
            raise invalid_parameter(
                "WASBS URI must be of the form <container>@<account>.blob.core.windows.net"
                " or <container>@<account>.blob.core.chinacloudapi.cn"
                " or <container>@<account>.blob.core.usgovcloudapi.net"
                f", got '{uri}'"
            )
        return cls(match[1], match[2], parsed.path.strip("/"), match[3])


@dataclass(frozen=True)
class AzureTuning:
    block_size: int = 4 * 1024 * 1024
    upload_concurrency: int = 4
    download_concurrency: int = 4
    connect_timeout: float = 20.0
    read_timeout: float = 300.0
    sas_expiry_seconds: int = 3600


# Azure Blob Storage's limits on a blob name ("Naming and referencing containers, blobs").
# Blobs deleted per step of a tree delete: bounds memory, whatever the tree's size.
_DELETE_BATCH = 1000
_BLOB_NAME_MAX = 1024
_BLOB_SEGMENTS_MAX = 254


def _block_id(upload_id: str, index: int) -> str:
    # Every block id of a blob must have the same length.
    return f"{upload_id}-{index:06d}"


@contextlib.contextmanager
def _storage_errors(action: str) -> Iterator[None]:
    """Azure failures the client cannot fix become a clear INTERNAL_ERROR (details logged)."""
    try:
        yield
    except MlflowError:
        raise
    except AzureError as exc:
        code = getattr(exc, "error_code", None) or type(exc).__name__
        log.error("Azure Blob Storage failed to %s: %s", action, exc)
        raise MlflowError(
            f"Azure Blob Storage failed to {action}: {code}", "INTERNAL_ERROR"
        ) from exc


class AzureBlobBackend:
    def __init__(
        self,
        uri: str,
        *,
        tuning: AzureTuning | None = None,
        env: Mapping[str, str],
        credential: AsyncTokenCredential | None = None,
    ) -> None:
        """`credential` (owned: closed with the backend) replaces `DefaultAzureCredential`
        when `env` has no connection string or key (a workspace's named identity)."""
        self.uri = WasbsUri.parse(uri)
        self.tuning = tuning or AzureTuning()
        self._service, self._credential = self._make_client(env, credential)
        self._container: ContainerClient = self._service.get_container_client(self.uri.container)

    def __repr__(self) -> str:
        return f"AzureBlobBackend({self.uri.container!r}, {self.uri.account!r}, {self.uri.path!r})"

    def _make_client(
        self, env: Mapping[str, str], credential: AsyncTokenCredential | None
    ) -> tuple[BlobServiceClient, Any]:
        t = self.tuning
        options: dict[str, Any] = {
            "connection_timeout": t.connect_timeout,
            "read_timeout": t.read_timeout,
            "max_single_put_size": t.block_size,
            "max_block_size": t.block_size,
            "max_single_get_size": t.block_size,
            "max_chunk_get_size": t.block_size,
        }
        if conn := env.get("AZURE_STORAGE_CONNECTION_STRING"):
            return BlobServiceClient.from_connection_string(conn, **options), None
        account_url = f"https://{self.uri.account}.{self.uri.suffix}"
        if key := env.get("AZURE_STORAGE_ACCESS_KEY"):
            shared = {"account_name": self.uri.account, "account_key": key}
            return BlobServiceClient(account_url, credential=shared, **options), None
        if credential is None:
            from azure.identity.aio import DefaultAzureCredential

            credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        return BlobServiceClient(account_url, credential=credential, **options), credential

    def _name(self, path: str) -> str:
        """The blob name of `path`, within Azure's limits (else Azure answers 400 and the
        client would see a 500)."""
        name = join(self.uri.path, path)
        if len(name) > _BLOB_NAME_MAX or name.count("/") >= _BLOB_SEGMENTS_MAX:
            raise invalid_parameter(
                f"Artifact path is too long for Azure Blob Storage: a blob name has at most "
                f"{_BLOB_NAME_MAX} characters and {_BLOB_SEGMENTS_MAX} segments."
            )
        return name

    def _blob(self, path: str) -> BlobClient:
        return self._container.get_blob_client(self._name(path))

    def locate(self, uri: str) -> str | None:
        try:
            other = WasbsUri.parse(uri)
        except MlflowError:
            return None
        if (other.container, other.account, other.suffix) != (
            self.uri.container,
            self.uri.account,
            self.uri.suffix,
        ):
            return None
        if not self.uri.path:
            return other.path
        if other.path == self.uri.path:
            return ""
        if other.path.startswith(self.uri.path + "/"):
            return other.path[len(self.uri.path) + 1 :]
        return None

    async def close(self) -> None:
        await self._service.close()
        if self._credential is not None:
            await self._credential.close()

    async def check(self) -> None:
        """The container answers with these credentials (no blob is written)."""
        with _storage_errors("reach the container"):
            await self._container.get_container_properties()

    # Writes ------------------------------------------------------------------------------

    async def write(self, path: str, chunks: AsyncIterator[bytes]) -> int:
        blob = self._blob(path)
        blocks = rechunk(chunks, self.tuning.block_size)
        with _storage_errors(f"write '{path}'"):
            first = await anext(blocks, None)
            second = await anext(blocks, None) if first is not None else None
            if second is None:  # fits in one request
                data = first or b""
                await blob.upload_blob(data, overwrite=True, length=len(data))
                return len(data)
            assert first is not None
            return await self._staged_upload(blob, _prepend((first, second), blocks))

    async def _staged_upload(self, blob: BlobClient, blocks: AsyncIterator[bytes]) -> int:
        upload_id = uuid.uuid4().hex[:16]
        ids: builtins.list[str] = []
        pending: set[asyncio.Task[Any]] = set()
        total = 0
        try:
            async for data in blocks:
                if len(ids) >= MAX_BLOCKS:
                    raise invalid_parameter("Artifact too large for one block blob")
                while len(pending) >= self.tuning.upload_concurrency:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()
                block_id = _block_id(upload_id, len(ids))
                ids.append(block_id)
                total += len(data)
                pending.add(asyncio.create_task(_stage(blob, block_id, data)))
            if pending:
                done, pending = await asyncio.wait(pending)
                for task in done:
                    task.result()
        finally:
            for task in pending:
                task.cancel()
        await blob.commit_block_list(ids)  # type: ignore[arg-type]  # str ids are accepted
        return total

    async def delete(self, path: str) -> bool:
        if not path:
            raise invalid_parameter("Refusing to delete the whole artifact store")
        name = self._name(path)
        semaphore = asyncio.Semaphore(self.tuning.upload_concurrency)

        async def delete_one(blob_name: str) -> None:
            async with semaphore:
                with contextlib.suppress(ResourceNotFoundError):
                    await self._container.delete_blob(blob_name)

        # Streamed: each listing batch is deleted before the next is read, so a tree of any
        # size (a whole workspace's artifacts) is never held in memory.
        deleted = 0
        batch: list[str] = []
        with _storage_errors(f"delete '{path}'"):
            async for blob in self._container.list_blobs(name_starts_with=name):
                if blob.name == name or blob.name.startswith(name + "/"):
                    batch.append(blob.name)
                if len(batch) >= _DELETE_BATCH:
                    await asyncio.gather(*(delete_one(n) for n in batch))
                    deleted, batch = deleted + len(batch), []
            await asyncio.gather(*(delete_one(n) for n in batch))
        return bool(deleted + len(batch))

    # Reads -------------------------------------------------------------------------------

    async def open_read(self, path: str) -> tuple[int, AsyncIterator[bytes]]:
        if not path:
            raise directory_error(path)
        blob = self._blob(path)
        with _storage_errors(f"read '{path}'"):
            try:
                properties = await blob.get_blob_properties()
            except ResourceNotFoundError as exc:
                if getattr(exc, "error_code", None) == "ContainerNotFound":
                    raise
                if await self._is_dir(path):
                    raise directory_error(path) from None
                raise not_found(f"No such artifact: '{path}'") from None
        size = int(properties.size)
        return size, self._ranges(path, blob, size, properties.etag)

    async def _ranges(
        self, path: str, blob: BlobClient, size: int, etag: str
    ) -> AsyncIterator[bytes]:
        """The blob in `block_size` ranges, up to `download_concurrency` requested ahead.
        Every range must come from the version first seen (If-Match), so a concurrent
        overwrite fails the download instead of splicing two versions."""
        step = self.tuning.block_size
        ahead: deque[asyncio.Task[bytes]] = deque()
        offset = 0
        try:
            with _storage_errors(f"read '{path}'"):
                while offset < size or ahead:
                    while offset < size and len(ahead) < self.tuning.download_concurrency:
                        length = min(step, size - offset)
                        ahead.append(asyncio.create_task(_read_range(blob, offset, length, etag)))
                        offset += length
                    yield await ahead.popleft()
        finally:
            for task in ahead:
                task.cancel()

    async def _is_dir(self, path: str) -> bool:
        async for _ in self._container.list_blobs(
            name_starts_with=self._name(path) + "/", results_per_page=1
        ):
            return True
        return False

    async def list(self, path: str) -> builtins.list[FileInfo]:
        name = self._name(path)
        prefix = f"{name}/" if name else ""
        entries: builtins.list[FileInfo] = []
        with _storage_errors(f"list '{path}'"):
            async for item in self._container.walk_blobs(name_starts_with=prefix, delimiter="/"):
                relative = item.name[len(prefix) :].rstrip("/")
                if not relative:
                    continue
                if isinstance(item, BlobProperties):
                    entries.append(FileInfo(relative, False, item.size))
                else:
                    entries.append(FileInfo(relative, True, None))
        return sorted(entries, key=lambda e: e.path)

    # Multipart (presigned block URLs) ----------------------------------------------------

    async def create_multipart_upload(
        self, path: str, num_parts: int
    ) -> tuple[builtins.list[UploadCredential], str | None]:
        if not 1 <= num_parts <= MAX_BLOCKS:
            raise invalid_parameter(f"num_parts must be between 1 and {MAX_BLOCKS}")
        blob = self._blob(path)
        with _storage_errors(f"sign an upload to '{path}'"):
            sas = await self._blob_sas(blob.blob_name)
        upload_id = uuid.uuid4().hex[:16]
        credentials = []
        for number in range(1, num_parts + 1):
            encoded = base64.b64encode(_block_id(upload_id, number).encode()).decode()
            block = urllib.parse.quote(encoded, safe="")
            url = f"{blob.url}?comp=block&blockid={block}&{sas}"
            credentials.append(UploadCredential(url=url, part_number=number, headers={}))
        return credentials, upload_id

    async def _blob_sas(self, blob_name: str) -> str:
        now = datetime.datetime.now(datetime.UTC)
        expiry = now + datetime.timedelta(seconds=self.tuning.sas_expiry_seconds)
        common: dict[str, Any] = {
            "account_name": self._service.account_name,
            "container_name": self.uri.container,
            "blob_name": blob_name,
            "permission": BlobSasPermissions(read=True, write=True),
            "expiry": expiry,
        }
        account_key = getattr(self._service.credential, "account_key", None)
        if account_key:
            return str(generate_blob_sas(account_key=account_key, **common))
        if self._credential is None:
            raise MlflowError(UNSUPPORTED_MULTIPART, "NOT_IMPLEMENTED")
        start = now - datetime.timedelta(minutes=5)
        try:
            key = await self._service.get_user_delegation_key(start, expiry)
        except HttpResponseError as exc:
            code = getattr(exc, "error_code", None)
            if exc.status_code == 403 and code == "AuthorizationPermissionMismatch":
                raise MlflowError(UNSUPPORTED_MULTIPART, "NOT_IMPLEMENTED") from exc
            raise
        return str(generate_blob_sas(user_delegation_key=key, start=start, **common))

    async def complete_multipart_upload(
        self, path: str, upload_id: str | None, parts: builtins.list[UploadedPart]
    ) -> int:
        ids = [_block_id_of(part) for part in sorted(parts, key=lambda p: p.part_number)]
        blob = self._blob(path)
        with _storage_errors(f"commit the upload to '{path}'"):
            try:
                await blob.commit_block_list(ids)  # type: ignore[arg-type]
            except HttpResponseError as exc:
                if exc.status_code == 400:
                    raise invalid_parameter(
                        f"Cannot complete the upload of '{path}': {getattr(exc, 'error_code', '')}"
                    ) from exc
                raise
            properties = await blob.get_blob_properties()
        return int(properties.size)

    async def abort_multipart_upload(self, path: str, upload_id: str | None) -> None:
        # Uncommitted blocks cannot be deleted; Azure drops them after 7 days (as in MLflow).
        return None


def _block_id_of(part: UploadedPart) -> str:
    query = urllib.parse.parse_qs(urllib.parse.urlparse(part.url).query)
    try:
        return base64.b64decode(query["blockid"][0], validate=True).decode()
    except (KeyError, ValueError):
        raise invalid_parameter(
            f"Part {part.part_number} has no valid block id in its URL"
        ) from None


async def _read_range(blob: BlobClient, offset: int, length: int, etag: str) -> bytes:
    downloader = await blob.download_blob(
        offset=offset,
        length=length,
        etag=etag,
        match_condition=MatchConditions.IfNotModified,
        max_concurrency=1,
    )
    return await downloader.readall()


async def _stage(blob: BlobClient, block_id: str, data: bytes) -> None:
    await blob.stage_block(block_id, data, len(data))


async def _prepend(head: tuple[bytes, ...], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    for item in head:
        yield item
    async for item in rest:
        yield item
