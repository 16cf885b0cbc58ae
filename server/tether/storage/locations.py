"""Artifact locations (the URIs runs, logged models and model versions record) as paths in
Tether's own artifact store. Used by the artifact proxy and by the sync worker, which reads
the files it uploads from the same store."""

from __future__ import annotations

import urllib.parse

from tether.errors import MlflowError
from tether.storage import paths
from tether.storage.base import ArtifactBackend

# Where the proxy's artifact paths start in an http(s) location URL.
_HTTP_ANCHOR = "/api/2.0/mlflow-artifacts/artifacts"


def resolve(backend: ArtifactBackend, uri: str, relative: str = "") -> str:
    """The store path of `relative` (already safe) inside the artifact location `uri`.

    `uri` is a run's `artifact_uri`, a logged model's or model version's location:
    `mlflow-artifacts:/...`, an `http(s)://.../api/2.0/mlflow-artifacts/artifacts/...`
    URL, or a direct URI into the store (local path, file://, wasbs://). Anything else
    raises NOT_IMPLEMENTED: this server cannot reach it.
    """
    parsed = urllib.parse.urlparse(uri)
    root: str | None
    if parsed.scheme == "mlflow-artifacts":
        root = paths.uri_to_path(uri)
    elif parsed.scheme in ("http", "https") and _HTTP_ANCHOR in parsed.path:
        root = paths.safe_directory_path(parsed.path.split(_HTTP_ANCHOR, 1)[1].lstrip("/"))
    else:
        root = backend.locate(uri)
    if root is None:
        raise MlflowError(
            f"Artifacts at '{uri}' are not stored in this server's artifact store",
            "NOT_IMPLEMENTED",
        )
    return paths.join(root, relative)
