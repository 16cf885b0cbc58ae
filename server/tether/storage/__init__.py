"""Artifact stores: pick one from `--artifacts-destination`."""

from __future__ import annotations

import os
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from azure.core.credentials_async import AsyncTokenCredential

from tether.errors import invalid_parameter
from tether.storage.azure_blob import AzureBlobBackend, AzureTuning
from tether.storage.base import (
    ArtifactBackend,
    FileInfo,
    MultipartBackend,
    UploadCredential,
    UploadedPart,
)
from tether.storage.local import LocalBackend


def create_backend(
    destination: str,
    *,
    chunk_size: int,
    azure: AzureTuning,
    env: Mapping[str, str] | None = None,
    credential: AsyncTokenCredential | None = None,
) -> ArtifactBackend:
    """A local directory (a path or file:// URI) or `wasbs://container@account.../prefix`
    (reached with `env`'s storage variables, else `credential`, else the default identity)."""
    scheme = urllib.parse.urlparse(destination).scheme
    if scheme == "wasbs":
        return AzureBlobBackend(
            destination,
            tuning=azure,
            env=os.environ if env is None else env,
            credential=credential,
        )
    if scheme == "file":
        path = urllib.request.url2pathname(urllib.parse.urlparse(destination).path)
        return LocalBackend(Path(path), chunk_size=chunk_size)
    if scheme == "" or len(scheme) == 1:  # a plain path (or a Windows drive letter)
        return LocalBackend(Path(destination), chunk_size=chunk_size)
    raise invalid_parameter(
        f"Unsupported --artifacts-destination '{destination}': use a local path, a file:// "
        "URI or wasbs://<container>@<account>.blob.core.windows.net/<prefix>"
    )


__all__ = [
    "ArtifactBackend",
    "AzureBlobBackend",
    "AzureTuning",
    "FileInfo",
    "LocalBackend",
    "MultipartBackend",
    "UploadCredential",
    "UploadedPart",
    "create_backend",
]
