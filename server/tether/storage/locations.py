"""Artifact locations (the URIs runs, logged models and model versions record) as paths in
Tether's own artifact store. Used by the artifact proxy and by the sync worker, which reads
the files it uploads from the same store.

A location is whatever a client gave an experiment (`artifact_location`), so it can be
unusable: a NUL byte once percent-decoded, an invalid URL, a traversal. Every such location
is refused with 400 INVALID_PARAMETER_VALUE naming it, never a 500; and the store path
(location root joined with the relative path) is bounded like any artifact path.
"""

from __future__ import annotations

import pathlib
import urllib.parse
import urllib.request

from tether.errors import MlflowError, invalid_parameter
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
    try:
        root = _root(backend, uri)
    except paths.UnsafePathError as exc:
        raise _unusable(uri, exc.reason) from None
    except (ValueError, OSError, RuntimeError) as exc:  # NUL byte, bad URL, symlink loop
        raise _unusable(uri, str(exc)) from None
    if root is None:
        raise MlflowError(
            f"Artifacts at '{_shown(uri)}' are not stored in this server's artifact store",
            "NOT_IMPLEMENTED",
        )
    path = paths.join(root, relative)
    paths.check_bounds(path)
    return path


def _root(backend: ArtifactBackend, uri: str) -> str | None:
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "mlflow-artifacts":
        return paths.uri_to_path(uri)
    if parsed.scheme in ("http", "https") and _HTTP_ANCHOR in parsed.path:
        return paths.safe_directory_path(parsed.path.split(_HTTP_ANCHOR, 1)[1].lstrip("/"))
    return backend.locate(uri)


# A location is echoed in the error; a client-made one can be any size.
_SHOWN = 1000


def _shown(uri: str) -> str:
    return uri if len(uri) <= _SHOWN else f"{uri[:_SHOWN]}..."


def _unusable(uri: str, reason: str) -> MlflowError:
    return invalid_parameter(f"The artifact location '{_shown(uri)}' is not usable: {reason}")


def absolute_if_local(location: str) -> str:
    """An experiment's `artifact_location` as MLflow's store keeps it (`resolve_uri_if_local`):
    a relative local path, bare or `file:`, is made absolute against the server's working
    directory; any other location is kept as given."""
    try:
        parsed = urllib.parse.urlsplit(location)
        remote = parsed.scheme == "file" and _remote(parsed)
    except ValueError:  # not a URL at all ("file://[::1/x"): kept, refused where it is used
        return location
    if parsed.scheme not in ("", "file") or remote:
        return location
    local = urllib.request.url2pathname(parsed.path if parsed.scheme == "file" else location)
    if pathlib.PurePosixPath(local).is_absolute():
        return location
    absolute = pathlib.Path.cwd().joinpath(local).as_posix()
    if parsed.scheme == "":
        return absolute
    return urllib.parse.urlunsplit(("file", None, absolute, parsed.query, parsed.fragment))


def _remote(parsed: urllib.parse.SplitResult) -> bool:
    host = parsed.hostname
    return host is not None and not (host == "." or host.startswith(("localhost", "127.0.0.1")))
