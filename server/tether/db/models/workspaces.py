"""MLflow 3.17's workspaces: the name everything lives in while workspaces are off."""

from __future__ import annotations

# MLflow's `DEFAULT_WORKSPACE_NAME`: every entity is in it while `--enable-workspaces` is off,
# and it can be neither created nor deleted over the workspace API.
DEFAULT_WORKSPACE = "default"
