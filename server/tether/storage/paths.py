"""Artifact paths: what a client may name, and how artifact URIs map to store-relative paths.

Every path that reaches a backend went through `safe_relative_path` first: a POSIX path
relative to the artifact root, with no way out of it. MLflow's own check
(`validate_path_is_safe`) percent-decodes the path until it stops changing and refuses `..`
segments and absolute paths; Tether does the same decoding (so names round-trip exactly as
with `mlflow server`) and is stricter about the rest: backslashes, control characters (NUL
included), `#`, empty and `.` segments, encoded slashes and undecodable escapes are refused too.

Paths are bounded (`check_bounds`): at most `MAX_PATH_LENGTH` characters and
`MAX_PATH_SEGMENTS` segments, client paths and store paths alike (a run's artifact root joined
with a client path included), so no path makes a backend recurse or a log line grow without
limit (2,000 segments made `mkdir(parents=True)` raise RecursionError).
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse

from tether.errors import MlflowError, invalid_parameter

# Linux's PATH_MAX; real artifact paths are a few hundred characters at most.
MAX_PATH_LENGTH = 4096
# Azure Blob Storage allows 254 segments in a blob name; real paths have a few dozen at most.
MAX_PATH_SEGMENTS = 256
# What a client may send before decoding: room for MAX_PATH_LENGTH characters percent-encoded
# several times over, still cheap to decode.
_MAX_RAW_LENGTH = 16 * MAX_PATH_LENGTH
_MAX_DECODE_ROUNDS = 10
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_SCHEME = "mlflow-artifacts"


class UnsafePathError(MlflowError):
    """A path that could leave the artifact root. The client sees MLflow's "Invalid path";
    `reason` (for the server log) says which rule it broke."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__("Invalid path", "INVALID_PARAMETER_VALUE")
        self.path = path
        self.reason = reason


def check_bounds(path: str) -> None:
    """Refuse (400 INVALID_PARAMETER_VALUE) a path over `MAX_PATH_LENGTH` characters or
    `MAX_PATH_SEGMENTS` segments."""
    if len(path) > MAX_PATH_LENGTH:
        raise invalid_parameter(
            f"Artifact path is too long: {len(path)} characters, the limit is {MAX_PATH_LENGTH}."
        )
    segments = path.count("/") + 1
    if segments > MAX_PATH_SEGMENTS:
        raise invalid_parameter(
            f"Artifact path has too many segments: {segments}, the limit is {MAX_PATH_SEGMENTS}."
        )


def _decode(path: str) -> str:
    """Percent-decode until stable, like MLflow; undecodable UTF-8 is refused."""
    for _ in range(_MAX_DECODE_ROUNDS):
        try:
            decoded = urllib.parse.unquote(path, errors="strict")
        except UnicodeDecodeError:
            raise UnsafePathError(path, "percent-escapes that are not UTF-8") from None
        if decoded == path:
            return path
        if decoded.count("/") != path.count("/"):
            raise UnsafePathError(path, "percent-encoded slash")
        path = decoded
    raise UnsafePathError(path, "too many levels of percent-encoding")


def safe_relative_path(path: str) -> str:
    """The decoded form of `path`, checked to stay inside the artifact root.

    "" is the root itself. Raises `UnsafePathError` (400 INVALID_PARAMETER_VALUE) for `..`,
    `.` or empty segments, absolute paths (`/x`, `C:x`), backslashes, control characters,
    `#`, and percent-encoded variants of any of these (`%2e%2e`, `%2f`, `%00`, `%5c`); and
    INVALID_PARAMETER_VALUE for a path out of bounds (`check_bounds`).
    """
    if path == "":
        return ""
    if len(path) > _MAX_RAW_LENGTH:
        raise invalid_parameter(
            f"Artifact path is too long: {len(path)} characters, the limit is {MAX_PATH_LENGTH}."
        )
    decoded = _decode(path)
    check_bounds(decoded)
    if _CONTROL.search(decoded):
        raise UnsafePathError(path, "control character")
    if "\\" in decoded:
        raise UnsafePathError(path, "backslash")
    if "#" in decoded:
        raise UnsafePathError(path, "'#'")
    if decoded.startswith("/") or _DRIVE.match(decoded):
        raise UnsafePathError(path, "absolute path")
    for segment in decoded.split("/"):
        if segment in ("", ".", ".."):
            raise UnsafePathError(path, f"segment {segment!r}")
    return decoded


def safe_directory_path(path: str) -> str:
    """`safe_relative_path` for a directory to list: trailing slashes ("dir/") are allowed,
    as MLflow's client produces them when joining a root and a path."""
    stripped = path.rstrip("/")
    if path and not stripped:
        return ""  # "/" alone: the root, as MLflow lists it
    return safe_relative_path(stripped)


def join(*parts: str) -> str:
    """Join store-relative paths, skipping empty parts ("" is the root)."""
    return "/".join(p for p in parts if p)


def uri_to_path(uri: str) -> str:
    """The store-relative path of an `mlflow-artifacts:` URI.

    `mlflow-artifacts:/a/b`, `mlflow-artifacts:///a/b` and `mlflow-artifacts://host:5000/a/b`
    all map to `a/b`; `mlflow-artifacts:` alone is the root (""). The result is checked with
    `safe_relative_path`. Anything else raises INVALID_PARAMETER_VALUE.
    """
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme != _SCHEME:
        raise MlflowError(f"Not an {_SCHEME} URI: '{uri}'", "INVALID_PARAMETER_VALUE")
    if parsed.query or parsed.fragment:
        raise UnsafePathError(uri, "query or fragment in URI")
    return safe_directory_path(parsed.path.lstrip("/"))


WORKSPACES_DIR = "workspaces"  # `workspaces/<name>/`: a workspace's prefix in the artifact root


def owner_relative(path: str) -> str:
    """`workspaces/<name>/<rest>` -> `<rest>`; any other path as it is (the `default`
    workspace's experiments, and every experiment while workspaces are off, are at the root)."""
    parts = path.split("/", 2)
    if len(parts) == 3 and parts[0] == WORKSPACES_DIR and parts[1]:
        return parts[2]
    return path


def sync_entity(path: str) -> tuple[str, str]:
    """The outbox entity an artifact path belongs to.

    `[workspaces/<name>/]<exp>/<run_id>/artifacts/...` -> ("run", run_id);
    `[workspaces/<name>/]<exp>/models/<model_id>/artifacts/...` -> ("logged_model", model_id);
    anything else -> ("artifact", path), or the path's sha256 when it is longer than the
    outbox's 64-character entity id (the payload always carries the full path).
    """
    parts = owner_relative(path).split("/")
    if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
        return "logged_model", parts[2]
    if len(parts) >= 3 and parts[2] == "artifacts" and parts[1] != "models":
        return "run", parts[1]
    if len(path) > 64:
        return "artifact", hashlib.sha256(path.encode()).hexdigest()
    return "artifact", path
