"""The web UI: the stock MLflow UI at `/`, its `/graphql`, and Tether's sync page.

- `files`: where the UI's build comes from (pinned to the MLflow version Tether implements)
  and `tether ui install`; `static`: `/` and `/static-files/` as `mlflow server` serves them.
- `graphql`: `/graphql`, MLflow's schema for the operations the UI sends, on the services.
- `sync_page`: `/tether/`, what reached Azure ML, retry buttons, links into the studio.
- `security`: mlflow server's Host allow-list, CORS rules and security headers;
  `prefix`: `--static-prefix`.
- `unconfigured`: the UI's calls to `mlflow server` features Tether does not have (assistant,
  AI gateway, UI telemetry, MCP registry), answered as MLflow does when they are not set up
  (its router is one of the app's, `tether.app.ROUTERS`).
This package sits with `ops` below the composition root: it reads the tracking and registry
services (through `app.state.services`) and the sync state, and nothing imports it but
`tether.app` and `tether.cli`.
"""

from __future__ import annotations

from fastapi import FastAPI

from tether.config import Settings
from tether.ui import files, prefix, security, static
from tether.ui.graphql import endpoint as graphql_endpoint
from tether.ui.sync_page import endpoints as sync_page


def install(app: FastAPI, settings: Settings) -> None:
    """Routes now; middlewares too, so call it after the app's own middlewares (these wrap
    them: the prefix comes off before anything routes or checks a path)."""
    app.state.ui_files = files.locate(settings)
    app.include_router(static.router)
    app.include_router(graphql_endpoint.router)
    app.include_router(sync_page.router)
    security.install(app, settings)
    if settings.static_prefix:
        app.add_middleware(prefix.StaticPrefix, prefix=settings.static_prefix)
