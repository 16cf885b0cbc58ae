"""The MLflow workspace of a sync entity, looked up when discovery first sees it.

Experiments and registered models carry their workspace; runs (and their files) and logged
models belong to their experiment's, model versions to their registered model's. The answer
is recorded on the entity (`sync_entities.workspace`) and kept: an entity is delivered to
the Azure ML workspace its MLflow workspace is bound to, and an entity later moved to
`default` (a workspace deleted with SET_DEFAULT) stays with the Azure workspace it started in.

An entity whose row is gone before discovery saw it (a registered model created and deleted
within a poll) has no workspace to look up: while the store has only `default` that is
`default`, otherwise `UNKNOWN` (kept local, shown as such), never another team's target.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from tether.db.models import Experiment, LoggedModel, RegisteredModel, Run, Workspace
from tether.db.models.workspaces import DEFAULT_WORKSPACE

UNKNOWN = ""  # no workspace is named so: never bound


def workspaces_of(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(sync type, entity id) -> workspace name, for every key given."""
    by_type: dict[str, set[str]] = {}
    for entity_type, entity_id in keys:
        by_type.setdefault(entity_type, set()).add(entity_id)
    found: dict[tuple[str, str], str] = {}
    experiments = _ints(by_type.get("experiment", ()))
    if experiments:
        rows = session.execute(
            select(Experiment.experiment_id, Experiment.workspace).where(
                Experiment.experiment_id.in_(experiments)
            )
        )
        found.update({("experiment", str(i)): w for i, w in rows})
    runs = by_type.get("run", set()) | by_type.get("run_artifacts", set())
    if runs:
        run_ws = {
            i: w
            for i, w in session.execute(
                select(Run.run_uuid, Experiment.workspace)
                .join(Experiment, Experiment.experiment_id == Run.experiment_id)
                .where(Run.run_uuid.in_(runs))
            )
        }
        for sync_type in ("run", "run_artifacts"):
            for run_id in by_type.get(sync_type, ()):
                if run_id in run_ws:
                    found[(sync_type, run_id)] = run_ws[run_id]
    models = by_type.get("logged_model", set())
    if models:
        model_rows = session.execute(
            select(LoggedModel.model_id, Experiment.workspace)
            .join(Experiment, Experiment.experiment_id == LoggedModel.experiment_id)
            .where(LoggedModel.model_id.in_(models))
        )
        found.update({("logged_model", i): w for i, w in model_rows})
    versions = by_type.get("model_version", set())
    registered = by_type.get("registered_model", set()) | {v.split("/")[0] for v in versions}
    ids = _ints(registered)
    if ids:
        model_ws = {
            str(i): w
            for i, w in session.execute(
                select(RegisteredModel.id, RegisteredModel.workspace).where(
                    RegisteredModel.id.in_(ids)
                )
            )
        }
        for model_id in by_type.get("registered_model", ()):
            if model_id in model_ws:
                found[("registered_model", model_id)] = model_ws[model_id]
        for version in versions:
            owner = model_ws.get(version.split("/")[0])
            if owner is not None:
                found[("model_version", version)] = owner
    missing = [(t, i) for t, ids_ in by_type.items() for i in ids_ if (t, i) not in found]
    if missing:
        fallback = DEFAULT_WORKSPACE if _only_default(session) else UNKNOWN
        found.update(dict.fromkeys(missing, fallback))
    return found


def _ints(values: Iterable[str]) -> list[int]:
    return [int(v) for v in values if v.isdigit()]


def _only_default(session: Session) -> bool:
    names = session.scalars(select(Workspace.name).limit(2)).all()
    return all(name == DEFAULT_WORKSPACE for name in names)
