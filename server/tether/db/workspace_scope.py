"""The workspace the current request works in (MLflow 3.17's `X-MLFLOW-WORKSPACE`).

Set once per request by the workspace middleware (`tether.workspaces.middleware`) and read by
the repositories that scope what they see: experiments and registered models by their own
`workspace` column, everything else through its experiment or registered model. `active()` is
None while workspaces are off (`--enable-workspaces` not given): then nothing is scoped and
everything is in `default`. The value follows the request into the store threads
(`tether.threads.blocking` copies the context).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tether.db.models import Experiment
from tether.db.models.workspaces import DEFAULT_WORKSPACE

_active: ContextVar[str | None] = ContextVar("tether_workspace", default=None)


def active() -> str | None:
    """The request's workspace while workspaces are on, else None."""
    return _active.get()


def current() -> str:
    """The workspace new entities go into and lookups are scoped to ("default" when off)."""
    return _active.get() or DEFAULT_WORKSPACE


@contextmanager
def entered(workspace: str | None) -> Iterator[None]:
    """Work in `workspace` (None: workspaces off) until the block ends."""
    token = _active.set(workspace)
    try:
        yield
    finally:
        _active.reset(token)


def holds_experiment(session: Session, experiment_id: int | None) -> bool:
    """Whether the experiment (of a run or logged model found by id) is in the request's
    workspace; always true with workspaces off."""
    workspace = active()
    if workspace is None:
        return True
    found = session.scalar(
        sa.select(Experiment.workspace).where(Experiment.experiment_id == experiment_id)
    )
    return found == workspace
