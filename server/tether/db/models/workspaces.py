"""MLflow 3.17's workspaces: the table of workspaces, and the name everything lives in while
workspaces are off.

Experiments and registered models carry their workspace's name (a plain column, as in
MLflow's schema); runs, logged models, model versions, tags and aliases belong to the
workspace of their experiment or registered model. Names are unique per workspace.
"""

from __future__ import annotations

from sqlalchemy import String, Text
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
