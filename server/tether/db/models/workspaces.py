"""MLflow 3.17's workspaces: the table of workspaces, and the name everything lives in while
workspaces are off.

Experiments and registered models carry their workspace's name (a plain column, as in
MLflow's schema); runs, logged models, model versions, tags and aliases belong to the
workspace of their experiment or registered model. Names are unique per workspace.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tether.db.models.base import Base

# MLflow's `DEFAULT_WORKSPACE_NAME`: every entity is in it while `--enable-workspaces` is off,
# and it can be neither created nor deleted over the workspace API.
DEFAULT_WORKSPACE = "default"
DEFAULT_WORKSPACE_DESCRIPTION = "Default workspace for legacy resources"  # MLflow's wording
WORKSPACE_NAME_LENGTH = 63


class Workspace(Base):
    __tablename__ = "workspaces"

    name: Mapped[str] = mapped_column(String(WORKSPACE_NAME_LENGTH), primary_key=True)
    description: Mapped[str | None] = mapped_column(Text)
    default_artifact_root: Mapped[str | None] = mapped_column(Text)


class WorkspaceBinding(Base):
    """A workspace's Azure ML workspace (`tether workspaces bind`; `default`'s is the server's
    `--azureml-workspace` and never a row here).

    `target` is the Azure workspace's identity (`subscription/resource group/name`, lower
    case): what was delivered to. Unbinding keeps the row with `bound` false, so binding again
    to a different Azure workspace is noticed (refused unless forced: see tether.sync.bindings).
    `credential` names a credential the server takes from its environment
    (`TETHER_AZURE_CREDENTIAL_<NAME>_*`); no secret is ever stored here.

    `artifacts_destination` (with `credential`) is where the workspace's files are written
    (tether.storage.routed); it stays in effect after an unbind. `artifacts_previous` is a
    JSON list, newest first, of the destinations (`{"uri", "credential"}`) a rebind replaced
    while they may still hold files: reads fall back to them until `tether workspaces
    move-artifacts` has moved their files and cleared it.

    Deleting a bound workspace keeps its row, retiring (`deleted_at` set, `deleted_outbox_id`
    the last outbox row then), so its worker delivers what is still pending (the deletion
    records CASCADE appends among it); the sync runtime removes the row once that is drained
    (tether.sync.retiring). Hence `workspace` is no foreign key: a retiring row outlives its
    workspace. While it retires the name cannot be created again (tether.workspaces.service).
    """

    __tablename__ = "workspace_bindings"

    workspace: Mapped[str] = mapped_column(
        String(WORKSPACE_NAME_LENGTH),
        primary_key=True,
    )
    azureml_workspace: Mapped[str] = mapped_column(Text)
    target: Mapped[str] = mapped_column(String(300))
    azureml_endpoint: Mapped[str | None] = mapped_column(Text)
    artifacts_destination: Mapped[str | None] = mapped_column(Text)
    credential: Mapped[str | None] = mapped_column(String(64))
    artifacts_previous: Mapped[str | None] = mapped_column(Text)
    bound: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    deleted_at: Mapped[int | None] = mapped_column(BigInteger)
    deleted_outbox_id: Mapped[int | None] = mapped_column(BigInteger)
