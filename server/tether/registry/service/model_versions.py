"""Model versions: register, read, describe, tag, delete and search them, and find their files.

Versions are numbered from 1 per model and never reused: a deleted version keeps its row
(flagged `deleted`, with MLflow's redactions) so `max(version) + 1` stays monotonic. A version
is READY as soon as it exists, as in MLflow's SQL store.
"""

from __future__ import annotations

import urllib.parse

from tether.clock import now_ms
from tether.db import outbox, workspace_scope
from tether.db.engine import Database
from tether.db.models import ModelVersion, Run
from tether.db.outbox.records import (
    ModelVersionCreate,
    ModelVersionDelete,
    ModelVersionDeleteTag,
    ModelVersionSetTag,
    ModelVersionUpdate,
)
from tether.db.visibility import EVERYTHING, Visibility
from tether.errors import not_found
from tether.registry import repository, schemas, search, serialize, sources
from tether.registry.service.lookup import load_model, load_version, version_json
from tether.registry.service.outbox_records import version_key
from tether.registry.service.version_lineage import (
    link_logged_model,
    model_uri_location,
    resolve_lineage,
)
from tether.registry.sources import HostPolicy
from tether.registry.validation import (
    PROMPT_SOURCE_PLACEHOLDERS,
    STAGE_NONE,
    Tags,
    is_prompt_tags,
    parse_version,
    tag_map,
    validate_model_name,
    validate_model_version_tag,
    validate_run_id_length,
    validate_tag_name,
)

_REDACTED = {
    "source": "REDACTED-SOURCE-PATH",
    "run_id": "REDACTED-RUN-ID",
    "run_link": "REDACTED-RUN-LINK",
}


class ModelVersionOperations:
    db: Database
    host_policy: HostPolicy

    def create_version(
        self,
        *,
        name: str,
        source: str,
        run_id: str | None,
        tags: Tags,
        run_link: str,
        description: str,
        model_id: str | None,
    ) -> schemas.ModelVersion:
        tags_by_key = tag_map(tags)
        is_prompt = is_prompt_tags(tags_by_key)
        if is_prompt:
            sources.validate_prompt_source(source, PROMPT_SOURCE_PLACEHOLDERS)
        self.host_policy.check(source, "source")
        run: str | None = run_id or ""
        model: str | None = model_id or ""
        with self.db.write() as session:
            if not is_prompt:
                source, run, model = resolve_lineage(
                    session,
                    source,
                    run or "",
                    model or "",
                    has_run_id=run_id is not None,
                    has_model_id=model_id is not None,
                )
                if model:
                    sources.validate_source_model(session, source, model)
                else:
                    sources.validate_source_run(session, source, run or "")
            # MLflow's store: name, tags, the storage location, then the model itself.
            validate_model_name(name)
            for key, value in tags:
                validate_model_version_tag(key or "", value or "")
            storage_location: str | None = source
            if sources.scheme_of(source) == "models":
                storage_location, run = model_uri_location(session, source, run)
            if model:
                logged_model = sources.active_logged_model(session, model)
                run = run or logged_model.source_run_id
            validate_run_id_length(run)
            registered = load_model(session, name, for_update=True)
            now = now_ms()
            registered.last_updated_time = now
            row = ModelVersion(
                registered_model_id=registered.id,
                version=repository.max_version(session, registered.id) + 1,
                creation_time=now,
                last_updated_time=now,
                description=description,
                user_id=None,
                current_stage=STAGE_NONE,
                source=source,
                storage_location=storage_location,
                run_id=run,
                run_link=run_link,
                model_id=model or None,
                status="READY",
                status_message=None,
                deleted=False,
            )
            session.add(row)
            session.flush()
            repository.upsert_version_tags(session, registered.id, row.version, tags_by_key)
            if model and not is_prompt:
                link_logged_model(session, model, name, row.version)
            outbox.append(
                session,
                ModelVersionCreate(
                    version_key(row),
                    name=name,
                    version=str(row.version),
                    source=source,
                    storage_location=storage_location,
                    run_id=run,
                    run_link=run_link,
                    description=description,
                    model_id=model or None,
                    tags=tags_by_key,
                    status=row.status,
                ),
            )
            return version_json(session, registered, row)

    def get_version(self, name: str, version: str) -> schemas.ModelVersion:
        with self.db.read() as session:
            model, row = load_version(session, name, version)
            return version_json(session, model, row)

    def update_version(
        self, name: str, version: str, description: str | None
    ) -> schemas.ModelVersion:
        with self.db.write() as session:
            model, row = load_version(session, name, version, for_update=True)
            row.description = description
            row.last_updated_time = now_ms()
            outbox.append(
                session,
                ModelVersionUpdate(
                    version_key(row),
                    name=model.name,
                    version=str(row.version),
                    description=description,
                ),
            )
            session.flush()
            return version_json(session, model, row)

    def delete_version(self, name: str, version: str) -> None:
        parse_version(version)
        with self.db.write() as session:
            model, row = load_version(session, name, version, for_update=True)
            now = now_ms()
            model.last_updated_time = now
            aliases = repository.delete_version_aliases(session, model.id, row.version)
            # The row stays (its number is never reused), redacted as MLflow redacts it.
            row.deleted = True
            row.last_updated_time = now
            row.description = None
            row.user_id = None
            row.status_message = None
            row.storage_location = None
            row.source = _REDACTED["source"]
            row.run_id = _REDACTED["run_id"]
            row.run_link = _REDACTED["run_link"]
            outbox.append(
                session,
                ModelVersionDelete(
                    version_key(row),
                    name=model.name,
                    version=str(row.version),
                    deleted_aliases=tuple(aliases),
                ),
            )

    def get_download_uri(self, name: str, version: str) -> str | None:
        validate_model_name(name)
        parse_version(version)
        with self.db.read() as session:
            _, row = load_version(session, name, version)
            return row.storage_location or row.source

    def artifact_root(self, name: str, version: str) -> tuple[str, str]:
        """(artifact URI, path inside it) of a version's files, for `get-artifact`.

        The download URI as MLflow resolves it to read files: a `runs:/<run_id>/<path>`
        location is the run's artifact URI and that path.
        """
        uri = self.get_download_uri(name, version) or ""
        if sources.scheme_of(uri) != "runs":
            return uri, ""
        path = urllib.parse.urlparse(uri).path.lstrip("/")
        run_id, _, sub_path = path.partition("/")
        with self.db.read() as session:
            run = session.get(Run, run_id)
            if run is None or not workspace_scope.holds_experiment(session, run.experiment_id):
                raise not_found(f"Run with id={run_id} not found")
            return run.artifact_uri or "", sub_path

    def search_versions(
        self,
        *,
        filter_string: str,
        max_results: int,
        order_by: list[str],
        page_token: str | None,
        readable: Visibility = EVERYTHING,
    ) -> tuple[list[schemas.ModelVersion], str | None]:
        with self.db.read() as session:
            keys, token = search.search_version_keys(
                session,
                readable=readable,
                filter_string=filter_string,
                max_results=max_results,
                order_by=order_by,
                page_token=page_token,
            )
            versions = repository.live_versions(session, keys)
            names = {
                model_id: row.name
                for model_id, row in repository.models_by_id(
                    session, sorted({k[0] for k in keys})
                ).items()
            }
            tags = repository.version_tags(session, keys)
            # MLflow's search results carry no aliases.
            return [
                serialize.model_version(versions[key], names[key[0]], tags[key])
                for key in keys
                if key in versions and key[0] in names  # (deleted concurrently since)
            ], token

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        validate_model_name(name)
        parse_version(version)
        validate_model_version_tag(key, value)
        with self.db.write() as session:
            model, row = load_version(session, name, version, for_update=True)
            repository.upsert_version_tags(session, model.id, row.version, {key: value})
            outbox.append(
                session,
                ModelVersionSetTag(
                    version_key(row),
                    name=model.name,
                    version=str(row.version),
                    key=key,
                    value=value,
                ),
            )

    def delete_version_tag(self, name: str, version: str, key: str) -> None:
        validate_model_name(name)
        parse_version(version)
        validate_tag_name(key)
        with self.db.write() as session:
            model, row = load_version(session, name, version, for_update=True)
            # MLflow answers success when the tag is not there: nothing to sync then.
            if repository.delete_version_tag(session, model.id, row.version, key) == 0:
                return
            outbox.append(
                session,
                ModelVersionDeleteTag(
                    version_key(row), name=model.name, version=str(row.version), key=key
                ),
            )
