"""Uploading one file to a block-blob SAS URL, as azureml-mlflow does.

Files up to one block go in a single Put Blob; larger ones as Put Block (4 MiB each, staged
as they are read: at most one block in memory) then Put Block List. The committing request
carries `If-None-Match: *`, so a path that is already in storage answers 409 (`Exists`)
instead of being overwritten. A 403 (`SasRejected`) means the SAS expired or was revoked:
the caller asks for a new one. Storage's other failures are transient.

Every upload records the content's MD5 as the blob's `Content-MD5` property: sent as
`Content-MD5` on a single Put Blob (storage also verifies it) and as `x-ms-blob-content-md5`
on Put Block List (storage stores it unverified; it computes none itself for block lists).
`Exists` carries our MD5, so the caller can tell a replay of the same bytes from other
content of equal size (`properties`, `content_md5`).

Azure's side: docs/azureml-protocol.md §5.2.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import quote
from xml.sax.saxutils import escape

import httpx

from tether.sync.azureml.client import tls_trust
from tether.sync.azureml.errors import TransientError

BLOCK_SIZE = 4 * 1024 * 1024
_VERSION = "2021-08-06"


class Exists(Exception):
    """The blob is already there (`If-None-Match: *` failed); `md5` is the base64 MD5 of
    the content we tried to write."""

    def __init__(self, reason: str, md5: str = "") -> None:
        super().__init__(reason)
        self.md5 = md5


@dataclass(frozen=True)
class BlobProperties:
    size: int
    md5: str | None  # base64 `Content-MD5`; None when the blob has none (a foreign upload)


class SasRejected(Exception):
    """Storage refused the SAS (403): expired, revoked or without the permission."""


class BlobStore:
    def __init__(self, *, block_size: int = BLOCK_SIZE, timeout: float = 120.0) -> None:
        self.block_size = block_size
        self.http = httpx.Client(timeout=timeout, trust_env=False, verify=tls_trust())

    def close(self) -> None:
        self.http.close()

    def upload(self, sas_url: str, size: int, chunks: Iterable[bytes]) -> None:
        """Write `size` bytes from `chunks` as a new block blob at `sas_url`."""
        if size <= self.block_size:
            data = b"".join(chunks)
            md5 = _b64(hashlib.md5(data, usedforsecurity=False).digest())
            headers = {"x-ms-blob-type": "BlockBlob", "If-None-Match": "*", "Content-MD5": md5}
            self._put(sas_url, "", data, headers, md5)
            return
        ids = []
        digest = hashlib.md5(usedforsecurity=False)
        for index, block in enumerate(_blocks(chunks, self.block_size)):
            digest.update(block)
            block_id = _b64(f"tether-{index:08d}".encode())
            self._put(sas_url, f"comp=block&blockid={quote(block_id, safe='')}", block, {})
            ids.append(block_id)
        md5 = _b64(digest.digest())
        listing = "".join(f"<Latest>{escape(i)}</Latest>" for i in ids)
        body = f'<?xml version="1.0" encoding="utf-8"?><BlockList>{listing}</BlockList>'
        headers = {"If-None-Match": "*", "x-ms-blob-content-md5": md5}
        self._put(sas_url, "comp=blocklist", body.encode(), headers, md5)

    def properties(self, sas_url: str) -> BlobProperties | None:
        """Size and Content-MD5 of the blob, or None when there is none (or the SAS may not
        read it)."""
        try:
            response = self.http.head(sas_url, headers={"x-ms-version": _VERSION})
        except httpx.TransportError as exc:
            raise TransientError(f"blob HEAD {_strip(sas_url)}: {exc!r}") from exc
        if response.status_code == 200:
            size = int(response.headers.get("Content-Length", "0"))
            return BlobProperties(size, response.headers.get("Content-MD5") or None)
        if response.status_code in (403, 404):
            return None
        raise TransientError(_describe(response), status=response.status_code)

    def content_md5(self, sas_url: str) -> str | None:
        """The base64 MD5 of the blob's bytes, read through (for a blob without Content-MD5);
        None when the SAS may not read it."""
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with self.http.stream("GET", sas_url, headers={"x-ms-version": _VERSION}) as response:
                if response.status_code in (403, 404):
                    return None
                if response.status_code != 200:
                    response.read()
                    raise TransientError(_describe(response), status=response.status_code)
                for chunk in response.iter_bytes():
                    digest.update(chunk)
        except httpx.TransportError as exc:
            raise TransientError(f"blob GET {_strip(sas_url)}: {exc!r}") from exc
        return _b64(digest.digest())

    def _put(
        self, url: str, query: str, data: bytes, headers: dict[str, str], md5: str = ""
    ) -> None:
        if query:  # appended as is: re-encoding the SAS query could break its signature
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        try:
            response = self.http.put(
                url, content=data, headers={"x-ms-version": _VERSION, **headers}
            )
        except httpx.TransportError as exc:
            raise TransientError(f"blob PUT {_strip(url)}: {exc!r}") from exc
        if response.status_code in (200, 201):
            return
        if response.status_code in (409, 412):
            raise Exists(_describe(response), md5)
        if response.status_code == 403:
            raise SasRejected(_describe(response))
        raise TransientError(_describe(response), status=response.status_code)


def _blocks(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _strip(url: str) -> str:
    """No SAS signature in logs or reasons."""
    return url.split("?", 1)[0]


def _describe(response: httpx.Response) -> str:
    code = response.headers.get("x-ms-error-code", "")
    return f"blob {response.request.method} {_strip(str(response.request.url))} -> " + (
        f"{response.status_code} {code}".strip()
    )
