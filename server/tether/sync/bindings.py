"""Which Azure ML workspace each MLflow workspace syncs into (`tether workspaces bind`).

`default` is bound by the server's own `--azureml-workspace` / `--azureml-endpoint` (never a
row of `workspace_bindings`); any other workspace by a row. A workspace without an active
binding is kept in Tether only ("local-only"): its outbox rows are discovered and wait,
pending, never an error, until it is bound.

Invariants:
- The sync state of an entity (cursor, Azure id, metric high-water mark) is keyed by the
  entity, not by the binding: rebinding to the same Azure workspace (a new endpoint, another
  credential) or binding again after an unbind re-sends nothing.
- A binding's `target` is its Azure workspace's identity (subscription/resource group/name).
  Binding a workspace that already delivered something to a *different* Azure workspace is
  refused unless forced; forced, the workspace's sync state starts over (everything is
  delivered to the new target; the old one keeps what it has). Tether never deletes anything
  in Azure ML.
- Unbinding keeps the row (bound = false, with its target) and every local datum; its
  artifacts destination stays in effect (tether.sync.destinations).
- No secret is stored: `credential` names environment variables the server reads
  (`credentials.named_credential`).
- Deleting a bound workspace keeps its row, retiring, until its work is delivered
  (tether.sync.retiring): it stays an active target, shown as `deleted (draining)`.
- The sync runtime re-reads the table every few seconds (`active_targets`), so a bind takes
  effect on every running server (replicas share the table) without a restart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from tether.clock import now_ms
from tether.config import Settings
from tether.db.models import SyncEntity, SyncReport, Workspace, WorkspaceBinding
from tether.db.models.workspaces import DEFAULT_WORKSPACE
from tether.errors import MlflowError, invalid_parameter, not_found
from tether.sync import destinations, status
from tether.sync.azureml.credentials import TokenProvider, named_credential
from tether.sync.azureml.workspace import parse_workspace_setting
from tether.sync.schemas import WorkspaceBindingInfo, WorkspaceSync

# A forced rebind's entities wait this long before any lane may claim them: every runtime
# (each replica re-reads the bindings every 2 s) has stopped the old target's worker by then,
# so none of them is delivered to the old Azure workspace after the reset.
RESTART_GRACE_MS = 10_000
_CREDENTIAL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class Target:
    """An MLflow workspace's Azure ML workspace, as the sync worker connects to it."""

    workspace: str  # the MLflow workspace
    azureml_workspace: str  # tracking URI or ARM id
    endpoint: str | None = None
    credential: str | None = None  # None: the server's own identity

    @property
    def identity(self) -> str:
        return target_identity(self.azureml_workspace)


def token_provider(target: Target) -> TokenProvider:
    """Tokens for `target`: its named credential, else the server's own identity (a
    credential missing from the environment raises PermanentError, naming the variables)."""
    if target.credential:
        return TokenProvider(named_credential(target.credential))
    return TokenProvider()


def target_identity(setting: str) -> str:
    """`<subscription>/<resource group>/<workspace>`, lower case (Azure ids are case-blind)."""
    ref = parse_workspace_setting(setting)
    return f"{ref.subscription}/{ref.resource_group}/{ref.name}".lower()


def server_target(settings: Settings) -> Target | None:
    """`default`'s binding: the server's own flags (None: `default` is local-only)."""
    if not settings.azureml_workspace:
        return None
    return Target(DEFAULT_WORKSPACE, settings.azureml_workspace, settings.azureml_endpoint)


def active_targets(session: Session, settings: Settings) -> dict[str, Target]:
    """Every bound workspace's target, `default`'s from the server's flags."""
    targets = {
        row.workspace: _target(row)
        for row in session.scalars(select(WorkspaceBinding).where(WorkspaceBinding.bound))
        if row.workspace != DEFAULT_WORKSPACE
    }
    own = server_target(settings)
    if own is not None:
        targets[DEFAULT_WORKSPACE] = own
    return targets


def kinds(session: Session, settings: Settings) -> dict[str, tuple[str, str]]:
    """Bound workspace -> (`server` for `default`'s flags, else `bound`; target identity)."""
    return {
        name: ("server" if name == DEFAULT_WORKSPACE else "bound", target.identity)
        for name, target in active_targets(session, settings).items()
    }


def azure_target_for(session: Session, workspace: str, settings: Settings) -> Target | None:
    """The Azure ML workspace `workspace` is bound to (None: kept local). For the deploy
    runtime: a deployment of a workspace's model goes to that workspace's Azure ML."""
    if workspace == DEFAULT_WORKSPACE:
        return server_target(settings)
    row = session.get(WorkspaceBinding, workspace)
    return _target(row) if row is not None and row.bound else None


def _target(row: WorkspaceBinding) -> Target:
    return Target(
        row.workspace,
        row.azureml_workspace,
        row.azureml_endpoint,
        row.credential,
    )


def bindings(session: Session) -> dict[str, WorkspaceBinding]:
    return {row.workspace: row for row in session.scalars(select(WorkspaceBinding))}


def describe_all(session: Session, settings: Settings) -> list[WorkspaceBindingInfo]:
    """Every workspace (and any sync entities name) with its binding and sync state."""
    rows = bindings(session)
    states = status.by_workspace(session, kinds(session, settings))
    return [_describe(name, rows.get(name), settings, sync) for name, sync in states.items()]


def describe(session: Session, settings: Settings, workspace: str) -> WorkspaceBindingInfo:
    if workspace != DEFAULT_WORKSPACE and session.get(Workspace, workspace) is None:
        raise not_found(f"Workspace '{workspace}' not found")
    states = status.by_workspace(session, kinds(session, settings))
    sync = states[workspace]
    return _describe(workspace, session.get(WorkspaceBinding, workspace), settings, sync)


def _describe(
    name: str, row: WorkspaceBinding | None, settings: Settings, sync: WorkspaceSync
) -> WorkspaceBindingInfo:
    own = server_target(settings) if name == DEFAULT_WORKSPACE else None
    if own is not None:
        return {
            "name": name,
            "azureml_workspace": own.azureml_workspace,
            "target": own.identity,
            "azureml_endpoint": own.endpoint,
            "artifacts_destination": None,
            "artifacts_previous": [],
            "credential": None,
            "sync": sync,
        }
    bound = row is not None and row.bound
    return {
        "name": name,
        "azureml_workspace": row.azureml_workspace if row is not None and bound else None,
        "target": row.target if row is not None else None,
        "azureml_endpoint": row.azureml_endpoint if row is not None and bound else None,
        # In effect bound or not: unbinding never moves where the files are.
        "artifacts_destination": row.artifacts_destination if row is not None else None,
        "artifacts_previous": [d.uri for d in destinations.previous_of(row)] if row else [],
        "credential": row.credential if row is not None and bound else None,
        "sync": sync,
    }


def bind(
    session: Session,
    workspace: str,
    azureml_workspace: str,
    *,
    endpoint: str | None = None,
    artifacts_destination: str | None = None,
    credential: str | None = None,
    force: bool = False,
) -> tuple[WorkspaceBinding, bool]:
    """Bind (or rebind) `workspace`; returns the row and whether its sync state started over.

    Refuses `default` (bound by the server's flags), an unknown workspace, a setting that is
    neither a tracking URI nor an ARM id, and a different Azure workspace than the one the
    workspace already delivered to (unless `force`)."""
    if workspace == DEFAULT_WORKSPACE:
        raise invalid_parameter(
            "The default workspace is bound by the server's --azureml-workspace "
            "(and --azureml-endpoint); it cannot be bound here"
        )
    if session.get(Workspace, workspace) is None:
        raise not_found(f"Workspace '{workspace}' not found")
    identity = target_identity(azureml_workspace)  # INVALID_PARAMETER_VALUE if malformed
    if credential is not None and not _CREDENTIAL_NAME.match(credential):
        raise invalid_parameter(
            f"Invalid credential name {credential!r}: letters, digits and '_', starting with "
            "a letter (the server reads TETHER_AZURE_CREDENTIAL_<NAME>_* from its environment)"
        )
    if endpoint is not None and not endpoint.startswith("https://"):
        raise invalid_parameter(f"azureml_endpoint must be an https:// URL, got {endpoint!r}")
    now = now_ms()
    row = session.get(WorkspaceBinding, workspace)
    fresh = False
    if row is not None and row.target != identity and _delivered(session, workspace):
        if not force:
            raise MlflowError(
                f"Workspace '{workspace}' has delivered to Azure ML workspace {row.target}; "
                f"binding it to {identity} would leave that history behind. Bind with force "
                "to deliver everything again to the new workspace (the old one keeps what it "
                "has), or bind it to the same Azure ML workspace.",
                "INVALID_STATE",
            )
        restart(session, workspace, now)
        fresh = True
    if row is None:
        row = WorkspaceBinding(workspace=workspace)
        session.add(row)
    row.azureml_workspace = azureml_workspace.strip()
    row.target = identity
    row.azureml_endpoint = endpoint
    _set_destination(row, artifacts_destination, credential)
    row.credential = credential
    row.bound = True
    row.updated_at = now
    session.flush()
    return row, fresh


def _set_destination(row: WorkspaceBinding, uri: str | None, credential: str | None) -> None:
    """The new destination (None: the server store). The one it replaces, if it is another
    location, becomes the newest read fallback (tether.sync.destinations)."""
    old = destinations.current_of(row)
    previous = destinations.previous_of(row)
    if old is not None and old.uri != uri:
        previous = [old, *(d for d in previous if d.uri != old.uri)]
    destinations.store_previous(row, [d for d in previous if d.uri != uri])
    row.artifacts_destination = uri


def unbind(session: Session, workspace: str) -> WorkspaceBinding:
    """The workspace stays in Tether only; its data and sync state are kept."""
    if workspace == DEFAULT_WORKSPACE:
        raise invalid_parameter(
            "The default workspace is bound by the server's --azureml-workspace; start the "
            "server without it to keep `default` local"
        )
    row = session.get(WorkspaceBinding, workspace)
    if row is not None and row.deleted_at is not None:  # retiring: its workspace is gone
        raise not_found(f"Workspace '{workspace}' not found")
    if row is None or not row.bound:
        raise not_found(f"Workspace '{workspace}' is not bound to an Azure ML workspace")
    row.bound = False
    row.updated_at = now_ms()
    session.flush()
    return row


def _delivered(session: Session, workspace: str) -> bool:
    """Anything of the workspace in Azure ML (an entity with progress or an Azure id)?"""
    return bool(
        session.execute(
            select(
                exists().where(
                    SyncEntity.workspace == workspace,
                    (SyncEntity.cursor > 0) | SyncEntity.azure_id.is_not(None),
                )
            )
        ).scalar()
    )


def restart(session: Session, workspace: str, now: int) -> None:
    """Every entity of the workspace from its first outbox row again (a forced rebind to
    another Azure workspace); leases are dropped, so a lane still working one for the old
    target finds its lease gone and changes nothing, and none is due before every runtime has
    stopped the old target's worker (`RESTART_GRACE_MS`)."""
    session.execute(
        delete(SyncReport).where(
            exists().where(
                SyncEntity.entity_type == SyncReport.entity_type,
                SyncEntity.entity_id == SyncReport.entity_id,
                SyncEntity.workspace == workspace,
            )
        )
    )
    session.execute(
        update(SyncEntity)
        .where(SyncEntity.workspace == workspace)
        .values(
            cursor=0,
            metric_hwm=0,
            azure_id=None,
            state="{}",
            status="pending",
            attempts=0,
            last_error=None,
            waiting_on=None,
            next_attempt_at=now + RESTART_GRACE_MS,
            lease_owner=None,
            lease_expires_at=None,
            first_pending_at=now,
            updated_at=now,
        )
    )
