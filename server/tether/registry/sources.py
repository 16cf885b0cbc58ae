"""Model version sources: the checks `mlflow server` makes before it registers a version.

A source is a URI (`runs:/<run_id>/path`, `models:/<model_id>`, `models:/<name>/<version>`,
`mlflow-artifacts:/...`, `s3://...`, a local path ...). MLflow refuses sources that would let a
client make the server read files it should not: local paths outside the run's artifact
directory, relative path segments, `runs:/` / `mlflow-artifacts:` sources that the given run_id
(or model_id) does not contain, and URIs whose scheme connects to a host other than the
server's own artifact storage. The wording of every refusal is MLflow's.
"""

from __future__ import annotations

import pathlib
import posixpath
import re
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from tether.db import workspace_scope
from tether.db.models import LoggedModel, Run
from tether.errors import MlflowError, invalid_parameter, not_found
from tether.tracking import validation as tracking_validation

# Schemes whose artifact repositories connect to the host named in the URI (MLflow's
# `HOST_ADDRESSED_ARTIFACT_SCHEMES`) and the families / default ports used to compare hosts.
_HOST_ADDRESSED_SCHEMES = frozenset(
    {"ftp", "sftp", "hdfs", "viewfs", "http", "https", "mlflow-artifacts", "r2", "b2", "abfss"}
)
_SCHEME_FAMILIES = {"viewfs": "hdfs", "https": "http", "mlflow-artifacts": "http"}
_DEFAULT_PORTS: dict[str, tuple[int | None, ...]] = {
    "ftp": (21,),
    "sftp": (22,),
    "http": (80,),
    "https": (443,),
    "mlflow-artifacts": (80, 443),
    "r2": (443,),
    "b2": (443,),
    "abfss": (443,),
}
_MALFORMED = "malformed"
_ARTIFACT_ROUTE = ("api", "2.0", "mlflow-artifacts", "artifacts")

Target = tuple[str, str, int | None]


# ------------------------------------------------------------------------- models:/ URIs


@dataclass(frozen=True)
class ModelUri:
    """A parsed `models:/` URI: exactly one of the forms MLflow's `_parse_model_uri` returns."""

    model_id: str | None = None
    name: str | None = None
    version: str | None = None
    stage: str | None = None
    alias: str | None = None


class ImproperModelUri(ValueError):
    pass


def parse_model_uri(uri: str) -> ModelUri:
    parsed = urllib.parse.urlparse(uri, allow_fragments=False)
    if parsed.scheme != "models":
        raise ImproperModelUri(uri)
    path = parsed.path
    if not path.startswith("/") or len(path) <= 1:
        raise ImproperModelUri(uri)
    parts = path.lstrip("/").split("/")
    if len(parts) > 2 or parts[0].strip() == "":
        raise ImproperModelUri(uri)
    if len(parts) == 2:
        name, suffix = parts
        if suffix.strip() == "":
            raise ImproperModelUri(uri)
        if suffix.isdigit():
            return ModelUri(name=name, version=suffix)
        if suffix.lower() == "latest":
            return ModelUri(name=name)
        return ModelUri(name=name, stage=suffix)
    if "@" in path:
        name, _, alias = parts[0].rpartition("@")
        if alias.strip() == "":
            raise ImproperModelUri(uri)
        return ModelUri(name=name, alias=alias)
    return ModelUri(model_id=parts[0])


def scheme_of(uri: str) -> str:
    return urllib.parse.urlparse(uri).scheme


# ------------------------------------------------------------------------ error messages


def invalid_source(source: str, id_name: str) -> MlflowError:
    return invalid_parameter(
        f"Invalid model version source: '{source}'. The {id_name} request parameter must "
        "identify the resource that contains the source."
    )


def _relative_path_error(source: str) -> MlflowError:
    return invalid_parameter(
        f"Invalid model version source: '{source}'. If supplying a source as an http, https, "
        "local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be "
        "provided without relative path references present. "
        "Please provide an absolute path."
    )


def _local_source_error(source: str, id_name: str, entity: str) -> MlflowError:
    return invalid_parameter(
        f"Invalid model version source: '{source}'. To use a local path as a model version "
        f"source, the {id_name} request parameter has to be specified and the local path has to "
        f"be contained within the artifact directory of the run specified by the {entity}."
    )


# ---------------------------------------------------------------------------- URI helpers


def is_local_uri(uri: str) -> bool:
    """MLflow's `is_local_uri`: no scheme, or `file:` on this host."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "":
        return True
    hostname = parsed.hostname or ""
    is_remote = bool(hostname) and not (
        hostname == "." or hostname.startswith("localhost") or hostname.startswith("127.0.0.1")
    )
    if parsed.scheme == "file":
        if is_remote:
            raise invalid_parameter(
                f"{uri} is not a valid remote uri. For remote access "
                "on windows, please consider using a different scheme "
                "such as SMB (e.g. smb://<hostname>/<path>)."
            )
        return True
    return False


def _local_path(uri: str) -> pathlib.Path:
    """MLflow's `local_file_uri_to_path`, resolved."""
    path = urllib.parse.urlparse(uri).path if uri.startswith("file:") else uri
    return pathlib.Path(urllib.request.url2pathname(path)).resolve()


def _contains(directory_uri: str | None, source: pathlib.Path) -> bool:
    if not directory_uri or not is_local_uri(directory_uri):
        return False
    directory = _local_path(directory_uri)
    return directory == source or directory in source.parents


def check_no_relative_paths(source: str) -> None:
    """MLflow's `_validate_non_local_source_contains_relative_paths`.

    MLflow compares the path with `pathlib.Path(path).resolve()`; resolving against this host's
    file system (its symlinks, its working directory) says nothing about an object-store path,
    so Tether compares with the lexically normalised path instead: the same answer for every
    path without symlinks, and relative or empty paths are refused as MLflow refuses them.
    """
    error = _relative_path_error(source)
    while (unquoted := urllib.parse.unquote_plus(source)) != source:
        source = unquoted
    source_path = re.sub(r"/+", "/", urllib.parse.urlparse(source).path.rstrip("/"))
    if "\x00" in source_path or any(part == ".." for part in source.split("/")):
        raise error
    if not source_path.startswith("/") or posixpath.normpath(source_path) != source_path:
        raise error


def _unquote_fully(value: str) -> str:
    while (unquoted := urllib.parse.unquote(value)) != value:
        value = unquoted
    return value


def _uri_parts(uri: str) -> tuple[str, str, tuple[str, ...]]:
    parsed = urllib.parse.urlsplit(uri)
    parts = tuple(_unquote_fully(part) for part in parsed.path.split("/") if part)
    return parsed.scheme.lower(), parsed.netloc.lower(), parts


def is_uri_within_root(source: str, root: str) -> bool:
    source_scheme, source_authority, source_parts = _uri_parts(source)
    root_scheme, root_authority, root_parts = _uri_parts(root)
    return (
        source_scheme == root_scheme
        and source_authority == root_authority
        and bool(root_parts)
        and source_parts[: len(root_parts)] == root_parts
    )


def _is_mlflow_artifact_source(source: str) -> bool:
    scheme, _, parts = _uri_parts(source)
    if scheme == "mlflow-artifacts":
        return True
    width = len(_ARTIFACT_ROUTE)
    return scheme in ("http", "https") and any(
        parts[i : i + width] == _ARTIFACT_ROUTE for i in range(len(parts) - width + 1)
    )


def _runs_uri_run_id(source: str) -> str | None:
    """The run id of a `runs:/<run_id>/...` URI, or None when it is not a proper one."""
    path = urllib.parse.urlparse(source).path
    if not path.startswith("/") or len(path) <= 1:
        return None
    run_id = path[1:].split("/")[0]
    return run_id or None


# ------------------------------------------------------------------ host-addressed schemes


def _host_targets(uri: str) -> frozenset[Target] | None:
    scheme = scheme_of(uri)
    if scheme not in _HOST_ADDRESSED_SCHEMES:
        return None
    parsed = urllib.parse.urlparse(uri)
    if scheme == "mlflow-artifacts" and not parsed.netloc:
        return None  # resolved against this server
    if "\\" in parsed.netloc or any(c.isspace() for c in parsed.netloc):
        return frozenset({(_MALFORMED, parsed.netloc, None)})
    try:
        port = parsed.port
    except ValueError:
        return frozenset({(_MALFORMED, parsed.netloc, None)})
    family = _SCHEME_FAMILIES.get(scheme, scheme)
    hostname = (parsed.hostname or "").lower()
    ports = (port,) if port is not None else _DEFAULT_PORTS.get(scheme, (None,))
    return frozenset((family, hostname, p) for p in ports)


class HostPolicy:
    """MLflow's host policy for artifact URIs: a source whose scheme connects to a host may only
    name the host of the server's own artifact root / destination (or an allowed scheme)."""

    def __init__(self, trusted_roots: Iterable[str], allowed_schemes: Iterable[str] = ()) -> None:
        self.trusted: set[Target] = set()
        for root in trusted_roots:
            self.trusted |= _host_targets(root) or set()
        self.allowed = {s.lower() for s in allowed_schemes}

    def check(self, uri: str, field_name: str) -> None:
        targets = _host_targets(uri)
        if targets is None:
            return
        scheme = scheme_of(uri)
        if scheme in self.allowed or targets & self.trusted:
            return
        raise invalid_parameter(
            f"'{field_name}' cannot use the '{scheme}' scheme: the '{scheme}' scheme addresses a "
            "host other than the tracking server's configured artifact storage, so the server "
            "would connect to the host named in the URI. Set the "
            "MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES environment variable on the server "
            "to allow it."
        )


# ------------------------------------------------------------------ runs and logged models


def source_run(session: Session, run_id: str, source: str) -> Run:
    """The run a source names (MLflow's `_get_source_run`)."""
    tracking_validation.validate_run_id(run_id)
    run = session.get(Run, run_id)
    if run is None or not workspace_scope.holds_experiment(session, run.experiment_id):
        raise invalid_source(source, "run_id")
    return run


def active_logged_model(session: Session, model_id: str) -> LoggedModel:
    """A logged model as MLflow's `get_logged_model` finds it (not deleted)."""
    model = session.get(LoggedModel, model_id)
    if (
        model is None
        or model.lifecycle_stage == "deleted"
        or not workspace_scope.holds_experiment(session, model.experiment_id)
    ):
        raise not_found(f"Logged model with ID '{model_id}' not found.")
    return model


def _source_model(session: Session, model_id: str, source: str) -> LoggedModel:
    try:
        return active_logged_model(session, model_id)
    except MlflowError:
        raise invalid_source(source, "model_id") from None


def validate_source_run(session: Session, source: str, run_id: str) -> None:
    """MLflow's `_validate_source_run`: the checks for a version without a model_id."""
    if is_local_uri(source):
        if run_id:
            run = source_run(session, run_id, source)
            resolved = _local_path(source)
            if _contains(run.artifact_uri, resolved):
                return
            source = str(resolved)
        raise _local_source_error(source, "run_id", "run_id")
    check_no_relative_paths(source)
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "runs":
        if parsed.netloc:
            raise invalid_source(source, "run_id")
        if run_id and _runs_uri_run_id(source) == run_id:
            return
        raise invalid_source(source, "run_id")
    if parsed.scheme == "models" and _models_uri_model_id(source, parsed) is not None:
        raise invalid_source(source, "model_id")
    if _is_mlflow_artifact_source(source):
        if run_id:
            run = source_run(session, run_id, source)
            if run.artifact_uri and is_uri_within_root(source, run.artifact_uri):
                return
        raise invalid_source(source, "run_id")


def _models_uri_model_id(source: str, parsed: urllib.parse.ParseResult) -> str | None:
    """The model id a well-formed `models:/` source names (None for a registry name); a
    `models://host/...` or unparsable one is an invalid source in both checks."""
    if parsed.netloc:
        raise invalid_source(source, "model_id")
    try:
        return parse_model_uri(source).model_id
    except ImproperModelUri:
        raise invalid_source(source, "model_id") from None


def validate_source_model(session: Session, source: str, model_id: str) -> None:
    """MLflow's `_validate_source_model`: the checks for a version with a model_id."""
    if is_local_uri(source):
        if model_id:
            model = _source_model(session, model_id, source)
            resolved = _local_path(source)
            if _contains(model.artifact_location, resolved):
                return
            source = str(resolved)
        raise _local_source_error(source, "model_id", "model_id")
    check_no_relative_paths(source)
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "models":
        source_model_id = _models_uri_model_id(source, parsed)
        if source_model_id is not None:
            if model_id and source_model_id == model_id:
                return
            raise invalid_source(source, "model_id")
    if parsed.scheme == "runs":
        raise invalid_source(source, "model_id")
    if _is_mlflow_artifact_source(source):
        if model_id:
            model = _source_model(session, model_id, source)
            if is_uri_within_root(source, model.artifact_location):
                return
        raise invalid_source(source, "model_id")


def validate_prompt_source(source: str, placeholders: frozenset[str]) -> None:
    if source not in placeholders:
        raise invalid_parameter(
            f"Invalid prompt source: '{source}'. Prompt sources must use an MLflow placeholder."
        )
