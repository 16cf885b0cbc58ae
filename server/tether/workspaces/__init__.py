"""MLflow 3.17's workspaces (`--enable-workspaces`): the workspace API at
/api/3.0/mlflow/workspaces (`endpoints`, `service`), the X-MLFLOW-WORKSPACE header that picks
a request's workspace (`middleware`), and the check that a request only names resources of
its own workspace (`guard`). What a workspace scopes is in `tether.db.workspace_scope`.

Phase 1 of issue 17: every workspace is kept locally. Per-workspace Azure ML bindings do not
exist yet, so the sync worker (which would deliver every workspace into the one Azure ML
workspace, merging same-named experiments and models) is refused together with workspaces.
"""

from __future__ import annotations

WORKSPACES_WITHOUT_SYNC = (
    "--enable-workspaces cannot be combined with --azureml-workspace yet: each workspace "
    "needs its own Azure ML binding (issue 17, phase 2), and one shared Azure ML workspace "
    "would merge the workspaces' same-named experiments and models."
)
