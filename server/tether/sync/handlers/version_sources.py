"""A model version's source in Azure terms: `runs:/<Azure run>/<path>`.

- `models:/<id>` (or any version of a logged model): the model's files re-homed into its
  source run (`logged_models`), once that is done;
- `runs:/<local run>/<path>`: the same path of the Azure run, once the run's files are there;
- a location inside a run's artifacts (e.g. `mlflow-artifacts:/<exp>/<run>/artifacts/model`):
  likewise;
- anything else cannot be registered in Azure ML (only run artifacts can): reported skipped.

Azure's side: docs/azureml-protocol.md §6.
"""

from __future__ import annotations

from tether.db.outbox.records import ModelVersionCreate
from tether.storage import paths
from tether.sync import state
from tether.sync.handlers.base import Blocked, Context
from tether.sync.state import Key


def azure_source(ctx: Context, record: ModelVersionCreate) -> str | None:
    source = record.source
    if record.model_id:
        return _logged_model(ctx, Key("logged_model", record.model_id))
    if source.startswith("runs:/"):
        run_id, _, path = source[len("runs:/") :].partition("/")
        return _in_run(ctx, run_id, path)
    location = ctx.files.resolve(record.storage_location or source)
    if location is not None:
        kind, run_id = paths.sync_entity(location)
        parts = paths.owner_relative(location).split("/")
        if kind == "run" and len(parts) > 3:
            return _in_run(ctx, run_id, "/".join(parts[3:]))
    ctx.report(
        "skipped",
        "source",
        f"source {source!r} is not in a run's artifacts: Azure ML registers models from "
        "run artifacts only",
    )
    return None


def _logged_model(ctx: Context, key: Key) -> str | None:
    """Its re-homed files; None (reported) when the model was synced without any."""
    with ctx.db.read() as session:
        entity = state.get(session, key)
    if entity is not None and not entity.azure_id and entity.status == state.SYNCED:
        ctx.report(
            "skipped",
            "source",
            f"logged model {key.entity_id} has no files in Azure ML (not READY, or no source "
            "run to re-home them into)",
        )
        return None
    return ctx.require(key)


def _in_run(ctx: Context, run_id: str, path: str) -> str:
    azure_run = ctx.require(Key("run", run_id))
    files = Key("run_artifacts", run_id)
    with ctx.db.read() as session:
        entity = state.get(session, files)
    if entity is not None and entity.status == state.DEAD:
        raise Blocked(files, entity.last_error or "dead")
    if entity is not None and entity.status != state.SYNCED:
        ctx.wait_for(files, entity)
    return f"runs:/{azure_run}/{path}".rstrip("/")
