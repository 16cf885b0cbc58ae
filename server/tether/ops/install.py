"""Wire request ids, access logs and (with `--expose-prometheus`) metrics into the app."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from tether.config import Settings
from tether.db.engine import Database
from tether.observability import logs
from tether.observability.middleware import RequestObserver, RequestRecorder


def install(app: FastAPI, settings: Settings, db: Database) -> None:
    """Call last in `create_app`: the middleware added last wraps all the others, so its
    request id is set while they log too."""
    logging.captureWarnings(True)  # Python warnings become log lines, in the chosen format
    logs.lean_records()  # in every worker process: uvicorn configures their logging itself
    recorder: RequestRecorder | None = None
    if settings.expose_prometheus:
        from tether.ops import metrics  # imports prometheus-client: only when asked

        recorder = metrics.enable(app, settings, db)
    app.add_middleware(RequestObserver, recorder=recorder, access_log=settings.access_log)
