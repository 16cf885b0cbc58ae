"""Workspace operations as MLflow 3.17's handlers and SQL workspace store do them: name rules
(`WorkspaceNameValidator`), the reserved `default`, and the three delete modes.

Delete modes, over the workspace's experiments and registered models (runs, logged models,
model versions and the rest belong to those): RESTRICT refuses while any exist; SET_DEFAULT
moves them to `default` unless a name is taken there (all conflicts are listed); CASCADE
deletes them, with everything under them, in the same transaction. Ids never change.

CASCADE also tells the sync what went, in that transaction, as a deletion in Tether tells it
today: an `ExperimentDelete` (with its active runs) for each experiment not already deleted
(Azure ML keeps a deleted experiment, as for any experiment deleted in Tether) and a
`RegisteredModelDelete` for each registered model (Azure ML deletes it, as for any model
deleted in Tether). Rows already pending for them stay and are delivered first, as for any
deleted entity. Then, once committed, their artifacts are removed from the store
(`remove_artifacts`): each experiment's artifact location and the workspace's own prefix
(`workspaces/<name>/` under the artifact root), streamed by the backend, off the event loop.
A location outside the store (another bucket) is left alone.

A bound workspace's binding (`workspace_bindings`) outlives its deletion, in every mode: it is
kept, retiring (`deleted_at`, `deleted_outbox_id` = the last outbox row then), so the sync
keeps delivering that workspace's pending work, the deletion records among it, into its Azure
ML workspace; the sync runtime removes it once drained (tether.sync.retiring). An unbound
binding is simply removed with the workspace (nothing to drain). While a deleted workspace's
binding retires, creating a workspace of that name is refused (INVALID_STATE, naming the
pending work): the new workspace would otherwise be a different team's data tethered to the
old team's Azure ML workspace and credential without anyone binding it; once the old work is
delivered the name is free again, and binding it is an explicit act.
"""

from __future__ import annotations

import builtins
import logging
import os
import re
import urllib.parse

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tether.clock import now_ms
from tether.db import outbox
from tether.db.engine import Database
from tether.db.models import (
    Experiment,
    OutboxEntry,
    RegisteredModel,
    Run,
    SyncEntity,
    TraceInfo,
    Workspace,
    WorkspaceBinding,
)
from tether.db.models.workspaces import DEFAULT_WORKSPACE
from tether.db.outbox.records import ExperimentDelete, RegisteredModelDelete
from tether.errors import MlflowError, already_exists, invalid_parameter, not_found
from tether.storage import locations
from tether.storage.base import ArtifactBackend
from tether.workspaces.schemas import Workspace as WorkspaceJson

log = logging.getLogger("tether.workspaces")

_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_RESERVED = frozenset({"workspaces", "api", "ajax-api", "static-files"})
DELETE_MODES = ("SET_DEFAULT", "CASCADE", "RESTRICT")
# MLflow's order: registered models first (their versions follow them), then experiments.
_ROOTS: tuple[type[RegisteredModel] | type[Experiment], ...] = (RegisteredModel, Experiment)


def validate_name(name: str) -> None:
    """MLflow's `WorkspaceNameValidator.validate`, with its wording."""
    if not 2 <= len(name) <= 63:
        raise invalid_parameter(f"Workspace name '{name}' must be between 2 and 63 characters.")
    if not re.match(_PATTERN, name):
        raise invalid_parameter(
            f"Workspace name '{name}' must match the pattern {_PATTERN} "
            "(lowercase alphanumeric with optional internal hyphens)."
        )
    if name in _RESERVED:
        raise invalid_parameter(f"Workspace name '{name}' is reserved and cannot be used.")


def validate_named(name: str) -> None:
    """A workspace named in a path or header: `default` always passes."""
    if name != DEFAULT_WORKSPACE:
        validate_name(name)


def _artifact_root(value: str | None) -> str | None:
    """MLflow's `_validate_workspace_default_artifact_root`: None (not given), "" (clear) or
    a URI / absolute path without fragment, params or a traversing query."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return ""
    parsed = urllib.parse.urlparse(value)
    if parsed.fragment or parsed.params:
        raise invalid_parameter("'default_artifact_root' URL can't include fragments or params.")
    if ".." in urllib.parse.unquote(parsed.query):
        raise invalid_parameter("Invalid query string")
    if value.startswith("runs:"):
        raise invalid_parameter(f"Artifact location cannot be a runs:/ URI. Given: '{value}'")
    if not parsed.scheme and not os.path.isabs(value):
        raise invalid_parameter(
            "Invalid value for 'default_artifact_root'. Expected a URI (for example "
            "'s3://bucket/prefix' or 'mlflow-artifacts:/prefix') or an absolute path, got "
            f"'{value}'."
        )
    return value


def serialize(row: Workspace) -> WorkspaceJson:
    body: WorkspaceJson = {"name": row.name}
    if row.description is not None:
        body["description"] = row.description
    if row.default_artifact_root:
        body["default_artifact_root"] = row.default_artifact_root
    return body


def _not_found(name: str) -> MlflowError:
    return not_found(f"Workspace '{name}' not found")


class WorkspaceService:
    """`backend` and `artifact_root` (the server's default artifact root): where a deleted
    workspace's artifacts are (CASCADE); without a backend they are left in place."""

    def __init__(
        self,
        db: Database,
        backend: ArtifactBackend | None = None,
        artifact_root: str | None = None,
    ) -> None:
        self.db = db
        self.backend = backend
        self.store_root = artifact_root

    def list(self) -> list[WorkspaceJson]:
        with self.db.read() as session:
            rows = session.scalars(sa.select(Workspace).order_by(Workspace.name))
            return [serialize(row) for row in rows]

    def get(self, name: str) -> WorkspaceJson:
        validate_named(name)
        with self.db.read() as session:
            return serialize(self._load(session, name))

    def exists(self, name: str) -> bool:
        with self.db.read() as session:
            return session.get(Workspace, name) is not None

    def artifact_root(self, name: str) -> str | None:
        """The workspace's own `default_artifact_root`, if it has one."""
        with self.db.read() as session:
            row = session.get(Workspace, name)
            return row.default_artifact_root if row is not None else None

    def create(
        self, name: str, description: str | None, artifact_root: str | None
    ) -> WorkspaceJson:
        if name == DEFAULT_WORKSPACE:
            raise invalid_parameter(
                f"The '{DEFAULT_WORKSPACE}' workspace is reserved and cannot be created"
            )
        validate_name(name)
        root = _artifact_root(artifact_root)
        taken = already_exists(f"Workspace '{name}' already exists.")
        try:
            with self.db.write() as session:
                if session.get(Workspace, name) is not None:
                    raise taken
                _refuse_while_retiring(session, name)
                row = Workspace(
                    name=name, description=description, default_artifact_root=root or None
                )
                session.add(row)
                session.flush()
                return serialize(row)
        except IntegrityError:  # created by another request between our check and insert
            raise taken from None

    def update(
        self, name: str, fields: set[str], description: str | None, artifact_root: str | None
    ) -> WorkspaceJson:
        validate_named(name)
        if not fields & {"description", "default_artifact_root"}:
            raise invalid_parameter("Workspace update must have at least one key")
        root = _artifact_root(artifact_root) if "default_artifact_root" in fields else None
        with self.db.write() as session:
            row = self._load(session, name)
            if "description" in fields and description is not None:
                row.description = description
            if root is not None:
                row.default_artifact_root = root or None
            session.flush()
            return serialize(row)

    def delete(self, name: str, mode: str) -> builtins.list[str]:
        """Delete the workspace; the store paths of the artifacts CASCADE left to remove
        (`remove_artifacts`, once this has returned: the deletion is committed)."""
        if name == DEFAULT_WORKSPACE:
            raise invalid_parameter(
                f"The '{DEFAULT_WORKSPACE}' workspace is reserved and cannot be deleted"
            )
        validate_name(name)
        if mode not in DELETE_MODES:
            raise invalid_parameter(
                f"Invalid deletion mode '{mode}'. Must be one of: {', '.join(DELETE_MODES)}"
            )
        leftover: builtins.list[str] = []
        with self.db.write() as session:
            row = self._load(session, name)
            if mode == "RESTRICT":
                _refuse_if_used(session, name)
            elif mode == "SET_DEFAULT":
                _check_default_conflicts(session, name)
                for model in _ROOTS:
                    session.execute(
                        sa.update(model)
                        .where(model.workspace == name)
                        .values(workspace=DEFAULT_WORKSPACE)
                    )
            else:
                leftover = self._artifact_paths(session, name)
                _tell_sync(session, name)
                _delete_contents(session, name)
            _retire_binding(session, name)
            session.delete(row)
        return leftover

    def _artifact_paths(self, session: Session, name: str) -> builtins.list[str]:
        """The store paths of the workspace's experiments' artifacts and its own prefix
        (deduplicated, outermost first: one under another needs no delete of its own)."""
        if self.backend is None:
            return []
        uris = list(
            session.scalars(
                sa.select(Experiment.artifact_location).where(Experiment.workspace == name)
            )
        )
        if self.store_root:
            uris.append(f"{self.store_root.rstrip('/')}/workspaces/{name}")
        found: builtins.list[str] = []
        for uri in uris:
            if not uri:
                continue
            try:
                path = locations.resolve(self.backend, uri)
            except MlflowError:  # outside the store, or unusable: nothing of ours there
                continue
            if path:
                found.append(path)
        kept: builtins.list[str] = []
        for path in sorted(set(found), key=lambda p: (p.count("/"), p)):
            if not any(path.startswith(parent + "/") for parent in kept):
                kept.append(path)
        return kept

    async def remove_artifacts(self, paths: builtins.list[str]) -> None:
        """Remove what `delete` named. A failure is logged with the paths left, never raised:
        the workspace is already gone."""
        if self.backend is None:
            return
        for path in paths:
            try:
                await self.backend.delete(path)
            except Exception:
                log.exception("could not remove the deleted workspace's artifacts at %r", path)

    @staticmethod
    def _load(session: Session, name: str) -> Workspace:
        row = session.get(Workspace, name)
        if row is None:
            raise _not_found(name)
        return row


def _retire_binding(session: Session, name: str) -> None:
    """A bound binding is kept, retiring, until its sync work is drained; an unbound one goes."""
    binding = session.get(WorkspaceBinding, name)
    if binding is None:
        return
    if not binding.bound:
        session.delete(binding)
        return
    session.flush()  # the deletion records appended above have their ids
    binding.deleted_at = now_ms()
    binding.deleted_outbox_id = int(session.scalar(sa.select(sa.func.max(OutboxEntry.id))) or 0)


def _refuse_while_retiring(session: Session, name: str) -> None:
    binding = session.get(WorkspaceBinding, name)
    if binding is None or binding.deleted_at is None:
        return
    pending = session.scalar(
        sa.select(sa.func.count())
        .select_from(SyncEntity)
        .where(SyncEntity.workspace == name, SyncEntity.status.in_(("pending", "failed")))
    )
    raise MlflowError(
        f"Cannot create workspace '{name}': a deleted workspace of that name is still "
        f"delivering its pending work ({pending} pending change(s)) to Azure ML workspace "
        f"{binding.target}. Create it again once `tether sync status` no longer lists it.",
        "INVALID_STATE",
    )


def _refuse_if_used(session: Session, name: str) -> None:
    for model in _ROOTS:
        count = session.scalar(
            sa.select(sa.func.count()).select_from(model).where(model.workspace == name)
        )
        if count:
            raise MlflowError(
                f"Cannot delete workspace '{name}': table '{model.__tablename__}' still "
                f"contains {count} resource(s). Remove or reassign them before deleting the "
                "workspace.",
                "INVALID_STATE",
            )


def _check_default_conflicts(session: Session, name: str) -> None:
    conflicts: list[str] = []
    for model in _ROOTS:
        in_default = sa.select(model.name).where(model.workspace == DEFAULT_WORKSPACE)
        taken = session.scalars(
            sa.select(model.name).where(model.workspace == name, model.name.in_(in_default))
        )
        conflicts.extend(f"  - {model.__tablename__}: {taken_name!r}" for taken_name in taken)
    if conflicts:
        details = "\n".join(conflicts)
        raise MlflowError(
            f"Cannot reassign resources from workspace '{name}' to '{DEFAULT_WORKSPACE}': the "
            f"following names already exist in the default workspace and would cause "
            f"conflicts:\n{details}\nRename or remove the conflicting resources before retrying.",
            "INVALID_STATE",
        )


def _tell_sync(session: Session, name: str) -> None:
    """The outbox rows a deletion in Tether appends, for everything CASCADE deletes."""
    experiments = session.execute(
        sa.select(Experiment.experiment_id).where(
            Experiment.workspace == name, Experiment.lifecycle_stage == "active"
        )
    ).scalars()
    for experiment_id in list(experiments):
        runs = session.scalars(
            sa.select(Run.run_uuid)
            .where(Run.experiment_id == experiment_id, Run.lifecycle_stage == "active")
            .order_by(Run.run_uuid)
        )
        outbox.append(session, ExperimentDelete(str(experiment_id), run_ids=tuple(runs)))
    models = session.execute(
        sa.select(RegisteredModel.id, RegisteredModel.name).where(RegisteredModel.workspace == name)
    )
    for model_id, model_name in list(models):
        outbox.append(session, RegisteredModelDelete(str(model_id), name=model_name))


def _delete_contents(session: Session, name: str) -> None:
    """The workspace's registered models and experiments, hard-deleted as MLflow does. Every
    table under them is ON DELETE CASCADE except runs and traces, deleted first."""
    experiments = sa.select(Experiment.experiment_id).where(Experiment.workspace == name)
    session.execute(sa.delete(RegisteredModel).where(RegisteredModel.workspace == name))
    session.execute(sa.delete(TraceInfo).where(TraceInfo.experiment_id.in_(experiments)))
    session.execute(sa.delete(Run).where(Run.experiment_id.in_(experiments)))
    session.execute(sa.delete(Experiment).where(Experiment.workspace == name))
