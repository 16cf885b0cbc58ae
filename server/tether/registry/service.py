"""Model registry operations: MLflow's semantics, validation order and messages, and the outbox.

Registered models have a surrogate id, so a rename is one update of the model row (plus the
versions' last_updated_time, which MLflow bumps too); versions follow because they reference
the id. Versions are numbered from 1 per model and never reused: a deleted version keeps its
row (flagged `deleted`, with MLflow's redactions) so `max(version) + 1` stays monotonic.
Stages are None / Staging / Production / Archived; a version is READY as soon as it exists, as
in MLflow's SQL store.

Each write is one transaction that also appends one outbox record: entity "registered_model"
keyed by the model's id (aliases are the model's), or "model_version" keyed
"<model id>/<version>" (ids, not names: stable across renames, and a name of up to 256
characters would not fit the outbox's entity_id); payloads carry the names. Deleting a tag or
alias that is not there succeeds, as in MLflow, and appends nothing. Validation that needs no
data happens before the transaction; a rejected request changes nothing. Every write locks
the model's row first (SELECT ... FOR UPDATE on PostgreSQL; SQLite has one writer), so
version numbers, stage archiving and deletes never interleave.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tether.clock import now_ms
from tether.db.engine import Database
from tether.db.models import ModelVersion, RegisteredModel, Run
from tether.errors import already_exists, invalid_parameter, not_found
from tether.registry import repository, search, serialize, sources
from tether.registry.sources import HostPolicy
from tether.registry.validation import (
    ACTIVE_STAGES,
    ALL_STAGES,
    IS_PROMPT_TAG_KEY,
    LATEST_ALIAS,
    PROMPT_SOURCE_PLACEHOLDERS,
    STAGE_ARCHIVED,
    STAGE_NONE,
    canonical_stage,
    is_prompt_tags,
    parse_version,
    storable_version,
    validate_alias_name,
    validate_alias_not_reserved,
    validate_model_name,
    validate_model_version_tag,
    validate_new_model_name,
    validate_registered_model_tag,
    validate_run_id_length,
    validate_tag_name,
)
from tether.sync import outbox

MODEL_ENTITY = "registered_model"
VERSION_ENTITY = "model_version"
MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # on a logged model: the versions registered from it
_REDACTED = {
    "source": "REDACTED-SOURCE-PATH",
    "run_id": "REDACTED-RUN-ID",
    "run_link": "REDACTED-RUN-LINK",
}

Tags = Sequence[tuple[str | None, str | None]]


def _tag_map(tags: Tags) -> dict[str, str]:
    """Tags as protobuf reads them (a missing key or value is ""), the last value winning."""
    return {key or "": value or "" for key, value in tags}


def _model_key(row: RegisteredModel) -> str:
    return str(row.id)


def _version_key(row: ModelVersion) -> str:
    return f"{row.registered_model_id}/{row.version}"


def _already_exists_message(name: str, existing_is_prompt: bool, new_is_prompt: bool) -> str:
    """MLflow's `handle_resource_already_exist_error`."""
    old = "Prompt" if existing_is_prompt else "Registered Model"
    new = "Prompt" if new_is_prompt else "Registered Model"
    if old != new:
        return (
            f"Tried to create a {new.lower()} with name {name!r}, but the name is already taken "
            f"by a {old.lower()}. MLflow does not allow creating a model and a prompt with the "
            "same name."
        )
    return f"{new} (name={name}) already exists."


class RegistryService:
    def __init__(self, db: Database, host_policy: HostPolicy | None = None) -> None:
        self.db = db
        self.host_policy = host_policy or HostPolicy(())

    # Loading -----------------------------------------------------------------------------

    @staticmethod
    def _model(session: Session, name: str, *, for_update: bool = False) -> RegisteredModel:
        validate_model_name(name)
        row = repository.model_by_name(session, name, for_update=for_update)
        if row is None:
            raise not_found(f"Registered Model with name={name} not found")
        return row

    @staticmethod
    def _version(
        session: Session, name: str, version: str | int, *, for_update: bool = False
    ) -> tuple[RegisteredModel, ModelVersion]:
        validate_model_name(name)
        number = parse_version(version)
        model = repository.model_by_name(session, name, for_update=for_update)
        row = None
        if model is not None and storable_version(number):
            row = repository.live_version(session, model.id, number, for_update=for_update)
        if model is None or row is None:
            raise not_found(f"Model Version (name={name}, version={number}) not found")
        return model, row

    @staticmethod
    def _models_json(session: Session, rows: Sequence[RegisteredModel]) -> list[dict[str, Any]]:
        ids = [row.id for row in rows]
        latest = repository.latest_version_keys(session, ids)
        keys = [(model_id, version) for model_id in ids for version in latest[model_id]]
        versions = repository.live_versions(session, keys)
        version_tags = repository.version_tags(session, keys)
        tags = repository.model_tags(session, ids)
        aliases = repository.model_aliases(session, ids)
        out = []
        for row in rows:
            latest_versions = [
                serialize.model_version(versions[key], row.name, version_tags[key])
                for key in ((row.id, v) for v in latest[row.id])
                if key in versions  # (deleted by a concurrent request since)
            ]
            out.append(
                serialize.registered_model(row, latest_versions, tags[row.id], aliases[row.id])
            )
        return out

    def _model_json(self, session: Session, row: RegisteredModel) -> dict[str, Any]:
        return self._models_json(session, [row])[0]

    @staticmethod
    def _version_json(
        session: Session, model: RegisteredModel, row: ModelVersion
    ) -> dict[str, Any]:
        key = (row.registered_model_id, row.version)
        return serialize.model_version(
            row,
            model.name,
            repository.version_tags(session, [key])[key],
            repository.version_aliases(session, model.id, row.version),
        )

    @staticmethod
    def _is_prompt_model(session: Session, model: RegisteredModel) -> bool:
        tags = dict(repository.model_tags(session, [model.id])[model.id])
        return is_prompt_tags({k: v or "" for k, v in tags.items()})

    # Registered models -------------------------------------------------------------------

    def create_model(self, name: str, tags: Tags, description: str) -> dict[str, Any]:
        validate_model_name(name)
        for key, value in tags:
            validate_registered_model_tag(key or "", value or "")
        tag_map = _tag_map(tags)
        new_is_prompt = IS_PROMPT_TAG_KEY in tag_map
        try:
            with self.db.write() as session:
                existing = repository.model_by_name(session, name)
                if existing is not None:
                    self._raise_exists(session, existing, new_is_prompt)
                now = now_ms()
                row = repository.insert_model(session, name=name, description=description, now=now)
                repository.upsert_model_tags(session, row.id, tag_map)
                outbox.append(
                    session,
                    MODEL_ENTITY,
                    _model_key(row),
                    "create",
                    {"name": name, "description": description, "tags": tag_map},
                )
                return self._model_json(session, row)
        except IntegrityError:
            # Another request created the same name between our check and our insert.
            with self.db.read() as session:
                existing = repository.model_by_name(session, name)
                if existing is not None:
                    self._raise_exists(session, existing, new_is_prompt)
            raise already_exists(f"Registered Model (name={name}) already exists.") from None

    def _raise_exists(
        self, session: Session, existing: RegisteredModel, new_is_prompt: bool
    ) -> None:
        tags = repository.model_tags(session, [existing.id])[existing.id]
        existing_is_prompt = any(key == IS_PROMPT_TAG_KEY for key, _ in tags)
        raise already_exists(
            _already_exists_message(existing.name, existing_is_prompt, new_is_prompt)
        )

    def get_model(self, name: str) -> dict[str, Any]:
        with self.db.read() as session:
            return self._model_json(session, self._model(session, name))

    def update_model(self, name: str, description: str) -> dict[str, Any]:
        with self.db.write() as session:
            row = self._model(session, name, for_update=True)
            row.description = description
            row.last_updated_time = now_ms()
            outbox.append(
                session,
                MODEL_ENTITY,
                _model_key(row),
                "update",
                {"name": row.name, "description": description},
            )
            session.flush()
            return self._model_json(session, row)

    def rename_model(self, name: str, new_name: str) -> dict[str, Any]:
        validate_new_model_name(new_name)
        try:
            with self.db.write() as session:
                row = self._model(session, name, for_update=True)
                other = repository.model_by_name(session, new_name)
                if other is not None and other.id != row.id:
                    raise already_exists(f"Registered Model (name={new_name}) already exists.")
                now = now_ms()
                row.name = new_name
                row.last_updated_time = now
                repository.touch_versions(session, row.id, now)
                outbox.append(
                    session,
                    MODEL_ENTITY,
                    _model_key(row),
                    "rename",
                    {"old_name": name, "name": new_name},
                )
                session.flush()
                return self._model_json(session, row)
        except IntegrityError:
            raise already_exists(f"Registered Model (name={new_name}) already exists.") from None

    def delete_model(self, name: str) -> None:
        with self.db.write() as session:
            row = self._model(session, name, for_update=True)
            repository.delete_model(session, row.id)
            outbox.append(session, MODEL_ENTITY, _model_key(row), "delete", {"name": row.name})

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        validate_model_name(name)
        validate_registered_model_tag(key, value)
        with self.db.write() as session:
            row = self._model(session, name, for_update=True)
            repository.upsert_model_tags(session, row.id, {key: value})
            outbox.append(
                session,
                MODEL_ENTITY,
                _model_key(row),
                "set_tag",
                {"name": row.name, "key": key, "value": value},
            )

    def delete_model_tag(self, name: str, key: str) -> None:
        validate_model_name(name)
        validate_tag_name(key)
        with self.db.write() as session:
            row = self._model(session, name, for_update=True)
            # MLflow answers success when the tag is not there: nothing to sync then.
            if repository.delete_model_tag(session, row.id, key) == 0:
                return
            outbox.append(
                session, MODEL_ENTITY, _model_key(row), "delete_tag", {"name": row.name, "key": key}
            )

    def search_models(
        self, *, filter_string: str, max_results: int, order_by: list[str], page_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        with self.db.read() as session:
            ids, token = search.search_model_ids(
                session,
                filter_string=filter_string,
                max_results=max_results,
                order_by=order_by,
                page_token=page_token,
            )
            rows = repository.models_by_id(session, ids)
            return self._models_json(session, [rows[i] for i in ids if i in rows]), token

    def get_latest_versions(self, name: str, stages: list[str]) -> list[dict[str, Any]]:
        with self.db.read() as session:
            model = self._model(session, name)
            wanted = {canonical_stage(s) for s in stages} if stages else set(ALL_STAGES)
            keys = [
                (model.id, v) for v in repository.latest_version_keys(session, [model.id])[model.id]
            ]
            versions = repository.live_versions(session, keys)
            tags = repository.version_tags(session, keys)
            aliases = repository.aliases_by_version(session, model.id)
            return [
                serialize.model_version(versions[key], model.name, tags[key], aliases[key[1]])
                for key in keys
                if key in versions and versions[key].current_stage in wanted
            ]

    # Model versions ----------------------------------------------------------------------

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
    ) -> dict[str, Any]:
        tag_map = _tag_map(tags)
        is_prompt = is_prompt_tags(tag_map)
        if is_prompt:
            sources.validate_prompt_source(source, PROMPT_SOURCE_PLACEHOLDERS)
        self.host_policy.check(source, "source")
        run: str | None = run_id or ""
        model: str | None = model_id or ""
        with self.db.write() as session:
            if not is_prompt:
                source, run, model = self._resolve_lineage(
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
                storage_location, run = self._model_uri_location(session, source, run)
            if model:
                logged_model = sources.active_logged_model(session, model)
                run = run or logged_model.source_run_id
            validate_run_id_length(run)
            registered = self._model(session, name, for_update=True)
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
            repository.upsert_version_tags(session, registered.id, row.version, tag_map)
            if model and not is_prompt:
                self._link_logged_model(session, model, name, row.version)
            outbox.append(
                session,
                VERSION_ENTITY,
                _version_key(row),
                "create",
                {
                    "name": name,
                    "version": str(row.version),
                    "source": source,
                    "storage_location": storage_location,
                    "run_id": run,
                    "run_link": run_link,
                    "description": description,
                    "model_id": model or None,
                    "tags": tag_map,
                    "status": row.status,
                },
            )
            return self._version_json(session, registered, row)

    def _resolve_lineage(
        self,
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
        registered = self._model(session, name)
        if self._is_prompt_model(session, registered):
            raise invalid_parameter(
                f"Invalid model version source: '{source}'. Prompt versions cannot be used as "
                "model version sources."
            )
        if uri.version is not None:
            version: str | int = uri.version
        elif uri.alias is not None:
            version = self._alias_target(session, registered, uri.alias).version
        else:
            version = self._latest_in_stage(session, registered, uri.stage)
        _, source_version = self._version(session, name, version)
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

    def _latest_in_stage(self, session: Session, model: RegisteredModel, stage: str | None) -> int:
        wanted = {canonical_stage(stage)} if stage is not None else set(ALL_STAGES)
        keys = [
            (model.id, v) for v in repository.latest_version_keys(session, [model.id])[model.id]
        ]
        versions = repository.live_versions(session, keys)
        numbers = [v.version for v in versions.values() if v.current_stage in wanted]
        if not numbers:
            stage_text = "" if stage is None else f" and stage '{stage}'"
            # MLflow answers INTERNAL_ERROR (500) with this message.
            raise not_found(f"No versions of model with name '{model.name}'{stage_text} found")
        return max(numbers)

    def _model_uri_location(
        self, session: Session, source: str, run_id: str | None
    ) -> tuple[str | None, str | None]:
        """Where a `models:/` source's files are, and the run id it implies (MLflow's store)."""
        try:
            uri = sources.parse_model_uri(source)
        except sources.ImproperModelUri:
            raise sources.invalid_source(source, "model_id") from None
        if uri.model_id is not None:
            logged_model = sources.active_logged_model(session, uri.model_id)
            return logged_model.artifact_location, run_id or logged_model.source_run_id
        _, row = self._version(session, uri.name or "", uri.version or "")
        return row.storage_location or row.source, run_id

    @staticmethod
    def _link_logged_model(session: Session, model_id: str, name: str, version: int) -> None:
        """MLflow's `set_model_versions_tags`: the logged model lists its registered versions."""
        entry = {"name": name, "version": str(version)}
        entries: list[Any] = [entry]
        existing = repository.logged_model_tag(session, model_id, MODEL_VERSIONS_TAG)
        if existing:
            try:
                previous = json.loads(existing)
            except ValueError:
                previous = None
            if isinstance(previous, list):
                entries = previous if entry in previous else [*previous, entry]
        value = json.dumps(entries)
        repository.set_logged_model_tag(session, model_id, MODEL_VERSIONS_TAG, value)
        outbox.append(
            session,
            "logged_model",
            model_id,
            "set_tag",
            {"key": MODEL_VERSIONS_TAG, "value": value},
        )

    def get_version(self, name: str, version: str) -> dict[str, Any]:
        with self.db.read() as session:
            model, row = self._version(session, name, version)
            return self._version_json(session, model, row)

    def update_version(self, name: str, version: str, description: str | None) -> dict[str, Any]:
        with self.db.write() as session:
            model, row = self._version(session, name, version, for_update=True)
            row.description = description
            row.last_updated_time = now_ms()
            outbox.append(
                session,
                VERSION_ENTITY,
                _version_key(row),
                "update",
                {"name": model.name, "version": str(row.version), "description": description},
            )
            session.flush()
            return self._version_json(session, model, row)

    def transition_stage(
        self, name: str, version: str, stage: str, archive_existing_versions: bool
    ) -> dict[str, Any]:
        target = canonical_stage(stage)
        if archive_existing_versions and target not in ACTIVE_STAGES:
            # MLflow answers INTERNAL_ERROR (500) with this message.
            raise invalid_parameter(
                "Model version transition cannot archive existing model versions because "
                f"'{stage}' is not an Active stage. Valid stages are {list(ACTIVE_STAGES)}"
            )
        with self.db.write() as session:
            model, row = self._version(session, name, version, for_update=True)
            now = now_ms()
            archived = []
            if archive_existing_versions:
                for other in repository.versions_in_stage(session, model.id, target, row.version):
                    other.current_stage = STAGE_ARCHIVED
                    other.last_updated_time = now
                    archived.append(str(other.version))
            row.current_stage = target
            row.last_updated_time = now
            model.last_updated_time = now
            outbox.append(
                session,
                VERSION_ENTITY,
                _version_key(row),
                "transition_stage",
                {
                    "name": model.name,
                    "version": str(row.version),
                    "stage": target,
                    "archive_existing_versions": archive_existing_versions,
                    "archived_versions": archived,
                },
            )
            session.flush()
            return self._version_json(session, model, row)

    def delete_version(self, name: str, version: str) -> None:
        parse_version(version)
        with self.db.write() as session:
            model, row = self._version(session, name, version, for_update=True)
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
                VERSION_ENTITY,
                _version_key(row),
                "delete",
                {"name": model.name, "version": str(row.version), "deleted_aliases": aliases},
            )

    def get_download_uri(self, name: str, version: str) -> str | None:
        validate_model_name(name)
        parse_version(version)
        with self.db.read() as session:
            _, row = self._version(session, name, version)
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
            if run is None:
                raise not_found(f"Run with id={run_id} not found")
            return run.artifact_uri or "", sub_path

    def search_versions(
        self, *, filter_string: str, max_results: int, order_by: list[str], page_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        with self.db.read() as session:
            keys, token = search.search_version_keys(
                session,
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
            model, row = self._version(session, name, version, for_update=True)
            repository.upsert_version_tags(session, model.id, row.version, {key: value})
            outbox.append(
                session,
                VERSION_ENTITY,
                _version_key(row),
                "set_tag",
                {"name": model.name, "version": str(row.version), "key": key, "value": value},
            )

    def delete_version_tag(self, name: str, version: str, key: str) -> None:
        validate_model_name(name)
        parse_version(version)
        validate_tag_name(key)
        with self.db.write() as session:
            model, row = self._version(session, name, version, for_update=True)
            # MLflow answers success when the tag is not there: nothing to sync then.
            if repository.delete_version_tag(session, model.id, row.version, key) == 0:
                return
            outbox.append(
                session,
                VERSION_ENTITY,
                _version_key(row),
                "delete_tag",
                {"name": model.name, "version": str(row.version), "key": key},
            )

    # Aliases -----------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: str) -> None:
        validate_model_name(name)
        validate_alias_name(alias)
        validate_alias_not_reserved(alias)
        parse_version(version)
        with self.db.write() as session:
            model, row = self._version(session, name, version, for_update=True)
            repository.upsert_alias(session, model.id, alias, row.version)
            outbox.append(
                session,
                MODEL_ENTITY,
                _model_key(model),
                "set_alias",
                {"name": model.name, "alias": alias, "version": str(row.version)},
            )

    def delete_alias(self, name: str, alias: str) -> None:
        validate_model_name(name)
        validate_alias_name(alias)
        with self.db.write() as session:
            model = self._model(session, name, for_update=True)
            # MLflow answers success when the alias is not there: nothing to sync then.
            if repository.delete_alias(session, model.id, alias) == 0:
                return
            outbox.append(
                session,
                MODEL_ENTITY,
                _model_key(model),
                "delete_alias",
                {"name": model.name, "alias": alias},
            )

    def _alias_target(self, session: Session, model: RegisteredModel, alias: str) -> ModelVersion:
        validate_alias_name(alias)
        if alias.lower() == LATEST_ALIAS:
            keys = [
                (model.id, v) for v in repository.latest_version_keys(session, [model.id])[model.id]
            ]
            if not keys:
                raise not_found(f"Latest version not found for model {model.name}.")
            return repository.live_versions(session, [max(keys)])[max(keys)]
        version = repository.alias_version(session, model.id, alias)
        row = None if version is None else repository.live_version(session, model.id, version)
        if row is None:
            raise invalid_parameter(f"Registered model alias {alias} not found.")
        return row

    def get_version_by_alias(self, name: str, alias: str) -> dict[str, Any]:
        validate_model_name(name)
        validate_alias_name(alias)
        with self.db.read() as session:
            model = self._model(session, name)
            row = self._alias_target(session, model, alias)
            return self._version_json(session, model, row)
