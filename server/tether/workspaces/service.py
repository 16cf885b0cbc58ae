"""Workspace operations as MLflow 3.17's handlers and SQL workspace store do them: name rules
(`WorkspaceNameValidator`), the reserved `default`, and the three delete modes.

Delete modes, over the workspace's experiments and registered models (runs, logged models,
model versions and the rest belong to those): RESTRICT refuses while any exist; SET_DEFAULT
moves them to `default` unless a name is taken there (all conflicts are listed); CASCADE
deletes them, with everything under them, in the same transaction. Ids never change.
"""

from __future__ import annotations

import os
import re
import urllib.parse

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tether.db.engine import Database
from tether.db.models import Experiment, RegisteredModel, Run, TraceInfo, Workspace
from tether.db.models.workspaces import DEFAULT_WORKSPACE
from tether.errors import MlflowError, already_exists, invalid_parameter, not_found
from tether.workspaces.schemas import Workspace as WorkspaceJson

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
    def __init__(self, db: Database) -> None:
        self.db = db

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

    def delete(self, name: str, mode: str) -> None:
        if name == DEFAULT_WORKSPACE:
            raise invalid_parameter(
                f"The '{DEFAULT_WORKSPACE}' workspace is reserved and cannot be deleted"
            )
        validate_name(name)
        if mode not in DELETE_MODES:
            raise invalid_parameter(
                f"Invalid deletion mode '{mode}'. Must be one of: {', '.join(DELETE_MODES)}"
            )
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
                _delete_contents(session, name)
            session.delete(row)

    @staticmethod
    def _load(session: Session, name: str) -> Workspace:
        row = session.get(Workspace, name)
        if row is None:
            raise _not_found(name)
        return row


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


def _delete_contents(session: Session, name: str) -> None:
    """The workspace's registered models and experiments, hard-deleted as MLflow does. Every
    table under them is ON DELETE CASCADE except runs and traces, deleted first."""
    experiments = sa.select(Experiment.experiment_id).where(Experiment.workspace == name)
    session.execute(sa.delete(RegisteredModel).where(RegisteredModel.workspace == name))
    session.execute(sa.delete(TraceInfo).where(TraceInfo.experiment_id.in_(experiments)))
    session.execute(sa.delete(Run).where(Run.experiment_id.in_(experiments)))
    session.execute(sa.delete(Experiment).where(Experiment.workspace == name))
