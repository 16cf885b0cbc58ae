"""MLflow 3.17's workspaces (`--enable-workspaces`): the workspace API at
/api/3.0/mlflow/workspaces (`endpoints`, `service`), the X-MLFLOW-WORKSPACE header that picks
a request's workspace (`middleware`), and the check that a request only names resources of
its own workspace (`guard`). What a workspace scopes is in `tether.db.workspace_scope`.

Each workspace syncs into its own Azure ML workspace: `default` into the server's
`--azureml-workspace`, any other into the one it is bound to (`tether.sync.bindings`); an
unbound workspace is kept locally.
"""
