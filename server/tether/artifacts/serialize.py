"""Artifact listings as MLflow's JSON shows them (`FileInfo`)."""

from __future__ import annotations

from tether.artifacts.schemas import FileInfo
from tether.storage import base


def file_info(entry: base.FileInfo, path: str) -> FileInfo:
    """A listing entry, shown at `path` (no file_size for 0 or directories, as MLflow)."""
    body: FileInfo = {"path": path, "is_dir": entry.is_dir}
    if entry.file_size:
        body["file_size"] = entry.file_size
    return body
