"""Registered models: create, read, describe, rename, tag, delete and search them.

A model has a surrogate id, so a rename is one update of its row (plus its versions'
last_updated_time, which MLflow bumps too); its versions follow because they reference the id.
"""

from __future__ import annotations

from typing import NoReturn

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tether.clock import now_ms
from tether.db import outbox
from tether.db.engine import Database
from tether.db.models import RegisteredModel
from tether.db.outbox.records import (
    RegisteredModelCreate,
    RegisteredModelDelete,
    RegisteredModelDeleteTag,
    RegisteredModelRename,
    RegisteredModelSetTag,
    RegisteredModelUpdate,
)
from tether.db.visibility import EVERYTHING, Visibility
from tether.errors import already_exists
from tether.registry import repository, schemas, search
from tether.registry.service.lookup import load_model, model_json, models_json
from tether.registry.service.outbox_records import model_key
from tether.registry.validation import (
    IS_PROMPT_TAG_KEY,
    Tags,
    tag_map,
    validate_model_name,
    validate_new_model_name,
    validate_registered_model_tag,
    validate_tag_name,
)


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


def _raise_exists(session: Session, existing: RegisteredModel, new_is_prompt: bool) -> NoReturn:
    tags = repository.model_tags(session, [existing.id])[existing.id]
    # MLflow's `has_prompt_tag`: the key's presence, whatever its value (unlike `is_prompt_tags`).
    existing_is_prompt = any(key == IS_PROMPT_TAG_KEY for key, _ in tags)
    raise already_exists(_already_exists_message(existing.name, existing_is_prompt, new_is_prompt))


class RegisteredModelOperations:
    db: Database

    def create_model(self, name: str, tags: Tags, description: str) -> schemas.RegisteredModel:
        validate_model_name(name)
        for key, value in tags:
            validate_registered_model_tag(key or "", value or "")
        tags_by_key = tag_map(tags)
        new_is_prompt = IS_PROMPT_TAG_KEY in tags_by_key
        try:
            with self.db.write() as session:
                existing = repository.model_by_name(session, name)
                if existing is not None:
                    _raise_exists(session, existing, new_is_prompt)
                now = now_ms()
                row = repository.insert_model(session, name=name, description=description, now=now)
                repository.upsert_model_tags(session, row.id, tags_by_key)
                outbox.append(
                    session,
                    RegisteredModelCreate(
                        model_key(row), name=name, description=description, tags=tags_by_key
                    ),
                )
                return model_json(session, row)
        except IntegrityError:
            # Another request created the same name between our check and our insert.
            with self.db.read() as session:
                existing = repository.model_by_name(session, name)
                if existing is not None:
                    _raise_exists(session, existing, new_is_prompt)
            raise already_exists(f"Registered Model (name={name}) already exists.") from None

    def get_model(self, name: str) -> schemas.RegisteredModel:
        with self.db.read() as session:
            return model_json(session, load_model(session, name))

    def update_model(self, name: str, description: str) -> schemas.RegisteredModel:
        with self.db.write() as session:
            row = load_model(session, name, for_update=True)
            row.description = description
            row.last_updated_time = now_ms()
            outbox.append(
                session,
                RegisteredModelUpdate(model_key(row), name=row.name, description=description),
            )
            session.flush()
            return model_json(session, row)

    def rename_model(self, name: str, new_name: str) -> schemas.RegisteredModel:
        validate_new_model_name(new_name)
        try:
            with self.db.write() as session:
                row = load_model(session, name, for_update=True)
                other = repository.model_by_name(session, new_name)
                if other is not None and other.id != row.id:
                    raise already_exists(f"Registered Model (name={new_name}) already exists.")
                now = now_ms()
                row.name = new_name
                row.last_updated_time = now
                repository.touch_versions(session, row.id, now)
                outbox.append(
                    session, RegisteredModelRename(model_key(row), name=new_name, old_name=name)
                )
                session.flush()
                return model_json(session, row)
        except IntegrityError:
            raise already_exists(f"Registered Model (name={new_name}) already exists.") from None

    def delete_model(self, name: str) -> None:
        with self.db.write() as session:
            row = load_model(session, name, for_update=True)
            repository.delete_model(session, row.id)
            outbox.append(session, RegisteredModelDelete(model_key(row), name=row.name))

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        validate_model_name(name)
        validate_registered_model_tag(key, value)
        with self.db.write() as session:
            row = load_model(session, name, for_update=True)
            repository.upsert_model_tags(session, row.id, {key: value})
            outbox.append(
                session, RegisteredModelSetTag(model_key(row), name=row.name, key=key, value=value)
            )

    def delete_model_tag(self, name: str, key: str) -> None:
        validate_model_name(name)
        validate_tag_name(key)
        with self.db.write() as session:
            row = load_model(session, name, for_update=True)
            # MLflow answers success when the tag is not there: nothing to sync then.
            if repository.delete_model_tag(session, row.id, key) == 0:
                return
            outbox.append(session, RegisteredModelDeleteTag(model_key(row), name=row.name, key=key))

    def search_models(
        self,
        *,
        filter_string: str,
        max_results: int,
        order_by: list[str],
        page_token: str | None,
        readable: Visibility = EVERYTHING,
    ) -> tuple[list[schemas.RegisteredModel], str | None]:
        with self.db.read() as session:
            ids, token = search.search_model_ids(
                session,
                readable=readable,
                filter_string=filter_string,
                max_results=max_results,
                order_by=order_by,
                page_token=page_token,
            )
            rows = repository.models_by_id(session, ids)
            return models_json(session, [rows[i] for i in ids if i in rows]), token
