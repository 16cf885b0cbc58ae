"""A request names only resources of its own workspace: the experiments, runs, logged models
and traces a route's access rule targets (`tether.api.access`) are checked against the request's
workspace before the endpoint runs, and one in another workspace is answered exactly as one
that does not exist (MLflow's workspace-aware store filters it out of its lookup).

Names (experiment names, registered model names) need no check: their lookups are scoped in
the repositories. Searches are scoped in their SQL (`tether.db.visibility`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from fastapi import Request

from tether.api.access import Rule
from tether.db import workspace_scope
from tether.db.engine import Database
from tether.db.models import Experiment, LoggedModel, Run, TraceInfo
from tether.errors import MlflowError, not_found
from tether.threads import blocking
from tether.tracking.logged_models.service import model_not_found
from tether.tracking.traces.service import trace_not_found

_Lookup = Callable[[Sequence[str]], sa.Select[Any, str]]


def _experiments(ids: Sequence[str]) -> sa.Select[Any, str]:
    numbers = [int(i) for i in ids if i.isdecimal() and len(i) < 19]
    return sa.select(Experiment.experiment_id, Experiment.workspace).where(
        Experiment.experiment_id.in_(numbers)
    )


def _runs(ids: Sequence[str]) -> sa.Select[Any, str]:
    return (
        sa.select(Run.run_uuid, Experiment.workspace)
        .join(Experiment, Experiment.experiment_id == Run.experiment_id)
        .where(Run.run_uuid.in_(ids))
    )


def _logged_models(ids: Sequence[str]) -> sa.Select[Any, str]:
    return (
        sa.select(LoggedModel.model_id, Experiment.workspace)
        .join(Experiment, Experiment.experiment_id == LoggedModel.experiment_id)
        .where(LoggedModel.model_id.in_(ids))
    )


def _traces(ids: Sequence[str]) -> sa.Select[Any, str]:
    return (
        sa.select(TraceInfo.request_id, Experiment.workspace)
        .join(Experiment, Experiment.experiment_id == TraceInfo.experiment_id)
        .where(TraceInfo.request_id.in_(ids))
    )


_CHECKS: dict[str, tuple[_Lookup, Callable[[str], MlflowError]]] = {
    "experiment": (_experiments, lambda i: not_found(f"No Experiment with id={i} exists")),
    "run": (_runs, lambda i: not_found(f"Run with id={i} not found")),
    "logged_model": (_logged_models, model_not_found),
    "trace": (_traces, trace_not_found),
}


class WorkspaceGuard:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def check(self, request: Request, rule: Rule | None, message: Any) -> None:
        workspace = workspace_scope.active()
        if workspace is None or rule is None:
            return
        named = [
            (target.kind, target.ids(message, request.path_params))
            for target in rule.targets
            if target.kind in _CHECKS
        ]
        named = [(kind, ids) for kind, ids in named if ids]
        if named:
            await blocking(self._check, workspace, named)

    def _check(self, workspace: str, named: list[tuple[str, list[str]]]) -> None:
        with self.db.read() as session:
            for kind, ids in named:
                lookup, missing = _CHECKS[kind]
                for found_id, found_in in session.execute(lookup(ids)):
                    if found_in != workspace:
                        raise missing(str(found_id))
