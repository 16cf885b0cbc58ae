"""Uploading one file to a block-blob SAS URL, as azureml-mlflow does (protocol notes 4.2).

Files up to one block go in a single Put Blob; larger ones as Put Block (4 MiB each, staged
as they are read: at most one block in memory) then Put Block List. The committing request
carries `If-None-Match: *`, so a path that is already in storage answers 409 (`Exists`)
instead of being overwritten. A 403 (`SasRejected`) means the SAS expired or was revoked:
the caller asks for a new one. Storage's other failures are transient.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from urllib.parse import quote
from xml.sax.saxutils import escape

import httpx

from tether.sync.azureml.client import tls_trust
from tether.sync.azureml.errors import TransientError

BLOCK_SIZE = 4 * 1024 * 1024
_VERSION = "2021-08-06"


class Exists(Exception):
    """The blob is already there (`If-None-Match: *` failed)."""


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
            headers = {"x-ms-blob-type": "BlockBlob", "If-None-Match": "*"}
            self._put(sas_url, "", data, headers)
            return
        ids = []
        for index, block in enumerate(_blocks(chunks, self.block_size)):
            block_id = base64.b64encode(f"tether-{index:08d}".encode()).decode()
            self._put(sas_url, f"comp=block&blockid={quote(block_id, safe='')}", block, {})
            ids.append(block_id)
        listing = "".join(f"<Latest>{escape(i)}</Latest>" for i in ids)
        body = f'<?xml version="1.0" encoding="utf-8"?><BlockList>{listing}</BlockList>'
        self._put(sas_url, "comp=blocklist", body.encode(), {"If-None-Match": "*"})

    def size(self, sas_url: str) -> int | None:
        """The blob's size, or None when there is none (or the SAS may not read it)."""
        response = self.http.head(sas_url, headers={"x-ms-version": _VERSION})
        if response.status_code == 200:
            return int(response.headers.get("Content-Length", "0"))
        if response.status_code in (403, 404):
            return None
        raise TransientError(_describe(response), status=response.status_code)

    def _put(self, url: str, query: str, data: bytes, headers: dict[str, str]) -> None:
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
            raise Exists(_describe(response))
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


def _strip(url: str) -> str:
    """No SAS signature in logs or reasons."""
    return url.split("?", 1)[0]


def _describe(response: httpx.Response) -> str:
    code = response.headers.get("x-ms-error-code", "")
    return f"blob {response.request.method} {_strip(str(response.request.url))} -> " + (
        f"{response.status_code} {code}".strip()
    )
