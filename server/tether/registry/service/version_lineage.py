"""Where a new model version comes from: its source resolved, its run and logged model linked.

A `models:/<name>/<version|alias|stage>` source is pinned to the version it names and lends
that version its run and logged model ids (MLflow's store); a `models:/<model_id>` source
names a logged model. Registering a version from a logged model also lists the version on the
logged model, as MLflow's `set_model_versions_tags` does.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from sqlalchemy.orm import Session

from tether.db import outbox
from tether.db.outbox.records import LoggedModelSetTags
from tether.errors import invalid_parameter
from tether.registry import repository, sources
from tether.registry.service.lookup import is_prompt_model, load_model, load_version
from tether.registry.service.stages_and_aliases import alias_target, latest_in_stage

MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # on a logged model: the versions registered from it


def resolve_lineage(
    session: Session,
    source: str,
    run_id: str,
    model_id: str,
    *,
    has_run_id: bool,
    has_model_id: bool,
) -> tuple[str, str | None, str | None]:
    """A `models:/<name>/...` source: pinned to its version, run/model ids inherited."""
    if sources.scheme_of(source) != "models":
        return source, run_id, model_id
    if urllib.parse.urlparse(source).netloc:
        raise invalid_parameter(
            f"Invalid model version source: '{source}'. Registered model sources must use "
            "the active model registry."
        )
    try:
        uri = sources.parse_model_uri(source)
    except sources.ImproperModelUri:
        raise sources.invalid_source(source, "model_id") from None
    if uri.model_id is not None:
        return source, run_id, model_id
    name = uri.name or ""
    registered = load_model(session, name)
    if is_prompt_model(session, registered):
        raise invalid_parameter(
            f"Invalid model version source: '{source}'. Prompt versions cannot be used as "
            "model version sources."
        )
    if uri.version is not None:
        version: str | int = uri.version
    elif uri.alias is not None:
        version = alias_target(session, registered, uri.alias).version
    else:
        version = latest_in_stage(session, registered, uri.stage)
    _, source_version = load_version(session, name, version)
    # Ids the request gives explicitly must agree with the version's; absent ones are inherited.
    if (has_run_id and run_id != (source_version.run_id or "")) or (
        has_model_id and model_id != (source_version.model_id or "")
    ):
        raise invalid_parameter(
            f"Invalid model version source: '{source}'. The run_id and model_id request "
            "parameters must match the referenced model version."
        )
    return (
        f"models:/{name}/{source_version.version}",
        run_id if has_run_id else source_version.run_id,
        model_id if has_model_id else source_version.model_id,
    )


def model_uri_location(
    session: Session, source: str, run_id: str | None
) -> tuple[str | None, str | None]:
    """Where a `models:/` source's files are, and the run id it implies (MLflow's store)."""
    try:
        uri = sources.parse_model_uri(source)
    except sources.ImproperModelUri:
        raise sources.invalid_source(source, "model_id") from None
    if uri.model_id is not None:
        logged_model = sources.active_logged_model(session, uri.model_id)
        return logged_model.artifact_location, run_id or logged_model.source_run_id
    _, row = load_version(session, uri.name or "", uri.version or "")
    return row.storage_location or row.source, run_id


def link_logged_model(session: Session, model_id: str, name: str, version: int) -> None:
    """MLflow's `set_model_versions_tags`: the logged model lists its registered versions."""
    # The version as MLflow's store returns it, an int: the reference writes `"version": 1`.
    entry: dict[str, Any] = {"name": name, "version": version}
    entries: list[Any] = [entry]
    existing = repository.logged_model_tag(session, model_id, MODEL_VERSIONS_TAG)
    if existing:
        try:
            previous = json.loads(existing)
        except ValueError:
            previous = None
        # A tag value that is not a JSON list is overwritten rather than failing the request.
        if isinstance(previous, list):
            entries = previous if entry in previous else [*previous, entry]
    value = json.dumps(entries)
    repository.set_logged_model_tag(session, model_id, MODEL_VERSIONS_TAG, value)
    outbox.append(session, LoggedModelSetTags(model_id, tags={MODEL_VERSIONS_TAG: value}))
