"""Stages (None / Staging / Production / Archived) and aliases: moving and naming versions.

Aliases belong to the model, so their outbox records are the model's.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from tether.clock import now_ms
from tether.db import outbox
from tether.db.engine import Database
from tether.db.models import ModelVersion, RegisteredModel
from tether.db.outbox.records import (
    ModelVersionTransitionStage,
    RegisteredModelDeleteAlias,
    RegisteredModelSetAlias,
)
from tether.errors import invalid_parameter, not_found
from tether.registry import repository, schemas, serialize
from tether.registry.service.lookup import latest_keys, load_model, load_version, version_json
from tether.registry.service.outbox_records import model_key, version_key
from tether.registry.validation import (
    ACTIVE_STAGES,
    ALL_STAGES,
    LATEST_ALIAS,
    STAGE_ARCHIVED,
    canonical_stage,
    parse_version,
    validate_alias_name,
    validate_alias_not_reserved,
    validate_model_name,
)


def latest_in_stage(session: Session, model: RegisteredModel, stage: str | None) -> int:
    """The newest live version in `stage` (in any stage for None)."""
    wanted = {canonical_stage(stage)} if stage is not None else set(ALL_STAGES)
    versions = repository.live_versions(session, latest_keys(session, model))
    numbers = [v.version for v in versions.values() if v.current_stage in wanted]
    if not numbers:
        stage_text = "" if stage is None else f" and stage '{stage}'"
        # MLflow answers INTERNAL_ERROR (500) with this message.
        raise not_found(f"No versions of model with name '{model.name}'{stage_text} found")
    return max(numbers)


def alias_target(session: Session, model: RegisteredModel, alias: str) -> ModelVersion:
    """The version an alias names; `latest` (any case) is the newest live version."""
    validate_alias_name(alias)
    if alias.lower() == LATEST_ALIAS:
        keys = latest_keys(session, model)
        if not keys:
            raise not_found(f"Latest version not found for model {model.name}.")
        return repository.live_versions(session, [max(keys)])[max(keys)]
    version = repository.alias_version(session, model.id, alias)
    row = None if version is None else repository.live_version(session, model.id, version)
    if row is None:
        raise invalid_parameter(f"Registered model alias {alias} not found.")
    return row


class StageAndAliasOperations:
    db: Database

    def get_latest_versions(self, name: str, stages: list[str]) -> list[schemas.ModelVersion]:
        with self.db.read() as session:
            model = load_model(session, name)
            wanted = {canonical_stage(s) for s in stages} if stages else set(ALL_STAGES)
            keys = latest_keys(session, model)
            versions = repository.live_versions(session, keys)
            tags = repository.version_tags(session, keys)
            aliases = repository.aliases_by_version(session, model.id)
            return [
                serialize.model_version(versions[key], model.name, tags[key], aliases[key[1]])
                for key in keys
                if key in versions and versions[key].current_stage in wanted
            ]

    def transition_stage(
        self, name: str, version: str, stage: str, archive_existing_versions: bool
    ) -> schemas.ModelVersion:
        target = canonical_stage(stage)
        if archive_existing_versions and target not in ACTIVE_STAGES:
            # MLflow answers INTERNAL_ERROR (500) with this message.
            raise invalid_parameter(
                "Model version transition cannot archive existing model versions because "
                f"'{stage}' is not an Active stage. Valid stages are {list(ACTIVE_STAGES)}"
            )
        with self.db.write() as session:
            model, row = load_version(session, name, version, for_update=True)
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
                ModelVersionTransitionStage(
                    version_key(row),
                    name=model.name,
                    version=str(row.version),
                    stage=target,
                    archive_existing_versions=archive_existing_versions,
                    archived_versions=tuple(archived),
                ),
            )
            session.flush()
            return version_json(session, model, row)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        validate_model_name(name)
        validate_alias_name(alias)
        validate_alias_not_reserved(alias)
        parse_version(version)
        with self.db.write() as session:
            model, row = load_version(session, name, version, for_update=True)
            repository.upsert_alias(session, model.id, alias, row.version)
            outbox.append(
                session,
                RegisteredModelSetAlias(
                    model_key(model), name=model.name, alias=alias, version=str(row.version)
                ),
            )

    def delete_alias(self, name: str, alias: str) -> None:
        validate_model_name(name)
        validate_alias_name(alias)
        with self.db.write() as session:
            model = load_model(session, name, for_update=True)
            # MLflow answers success when the alias is not there: nothing to sync then.
            if repository.delete_alias(session, model.id, alias) == 0:
                return
            outbox.append(
                session, RegisteredModelDeleteAlias(model_key(model), name=model.name, alias=alias)
            )

    def get_version_by_alias(self, name: str, alias: str) -> schemas.ModelVersion:
        validate_model_name(name)
        validate_alias_name(alias)
        with self.db.read() as session:
            model = load_model(session, name)
            row = alias_target(session, model, alias)
            return version_json(session, model, row)
