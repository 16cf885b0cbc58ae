"""Registered models: create (an existing name is success), description,
tags within Azure's limits. Not supported by Azure ML, and reported: rename (models are
immutable there: the workspace keeps the first name), delete (a registered model cannot be
deleted; its versions are), aliases.

`state`: {"name": the Azure name, "tags": tag keys present in Azure}; the Azure id is the name.

Azure's side: docs/azureml-protocol.md §6.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import assert_never

from tether.db.outbox.records import (
    RegisteredModelCreate,
    RegisteredModelDelete,
    RegisteredModelDeleteAlias,
    RegisteredModelDeleteTag,
    RegisteredModelRecord,
    RegisteredModelRename,
    RegisteredModelSetAlias,
    RegisteredModelSetTag,
    RegisteredModelUpdate,
)
from tether.sync.azureml.errors import PermanentError
from tether.sync.azureml.mlflow_api import Unsupported
from tether.sync.handlers.base import Context, Row
from tether.sync.limits import TAGS_PER_MODEL, TagBudget, azure_model_name, description


def apply(ctx: Context, row: Row[RegisteredModelRecord]) -> None:
    record = row.record
    if isinstance(record, RegisteredModelCreate):
        _create(ctx, record.name, record.description, record.tags)
        return
    name = ctx.work.azure_id
    if name is None:
        raise PermanentError(f"registered model has no Azure name (no create before {record.op!r})")
    match record:
        case RegisteredModelUpdate():
            text = description(record.description or "", ctx.reports)
            ctx.api.update_registered_model(name, text or "")
        case RegisteredModelSetTag():
            _set_tags(ctx, name, {record.key: record.value})
        case RegisteredModelDeleteTag():
            _delete_tag(ctx, name, record.key)
        case RegisteredModelRename():
            ctx.report(
                "skipped",
                "rename",
                f"renamed locally to {record.name!r}; Azure ML cannot rename registered "
                f"models, the workspace keeps {name!r}",
            )
        case RegisteredModelDelete():
            ctx.report(
                "skipped", "delete", "Azure ML cannot delete a registered model (only its versions)"
            )
        case RegisteredModelSetAlias() | RegisteredModelDeleteAlias():
            ctx.report(
                "skipped", f"alias:{record.alias}", "Azure ML has no registered-model aliases"
            )
        case _:
            assert_never(record)


def _budget(ctx: Context) -> TagBudget:
    return TagBudget(set(ctx.work.state.get("tags", [])), TAGS_PER_MODEL)


def _create(ctx: Context, name: str, text: str | None, tags: Mapping[str, str]) -> None:
    azure_name = azure_model_name(name)
    ctx.api.create_registered_model(azure_name, description(text, ctx.reports))
    if azure_name != name:
        ctx.report("mapped", "name", f"named {azure_name!r} in Azure ML (its name charset)")
    ctx.work.azure_id = azure_name
    ctx.work.state = {"name": azure_name, "tags": []}
    _set_tags(ctx, azure_name, tags)


def _set_tags(ctx: Context, name: str, tags: Mapping[str, str]) -> None:
    budget = _budget(ctx)
    for key, value in budget.admit(tags, ctx.reports).items():
        ctx.api.set_registered_model_tag(name, key, value)
    ctx.work.state["tags"] = sorted(budget.sent)


def _delete_tag(ctx: Context, name: str, key: str) -> None:
    budget = _budget(ctx)
    if key not in budget.sent:
        return
    try:
        ctx.api.delete_registered_model_tag(name, key)
    except Unsupported:
        ctx.report("skipped", f"delete_tag:{key}", "the workspace cannot delete model tags")
    except PermanentError as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
    budget.sent.discard(key)
    ctx.work.state["tags"] = sorted(budget.sent)
