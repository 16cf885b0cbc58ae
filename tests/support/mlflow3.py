"""The installed MLflow 3.x client, in-process: its global state, and scenario plumbing.

The fluent API keeps the active run, experiment and logged model in module globals and the
tracking / registry URIs in globals and environment variables. A test that uses it starts and
ends from a clean client (`reset_client_state()`, or the `clean_mlflow_client` fixture in
tests/conftest.py); otherwise the next test silently logs into the previous test's server.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Hashable, Iterator
from typing import Any, TypeVar

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import fluent

T = TypeVar("T")

_ENV = ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID", "MLFLOW_REGISTRY_URI")


def reset_client_state() -> None:
    """End active runs; forget the active experiment, model and the tracking/registry URIs."""
    with contextlib.suppress(Exception):
        while mlflow.active_run() is not None:
            mlflow.end_run()
    fluent._active_run_stack.set([])
    fluent._last_active_run_id.set(None)
    fluent._last_logged_model_id.set(None)
    fluent._active_experiment_id = None
    with contextlib.suppress(Exception):
        mlflow.clear_active_model()
    for var in _ENV:
        os.environ.pop(var, None)
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # also unsets MLFLOW_TRACKING_URI
    mlflow.set_registry_uri(None)  # type: ignore[arg-type]


@contextlib.contextmanager
def tracking_to(url: str) -> Iterator[None]:
    """The fluent API pointed at `url` from a clean state, and cleaned again afterwards."""
    reset_client_state()
    mlflow.set_tracking_uri(url)
    try:
        yield
    finally:
        reset_client_state()


def capture(fn: Callable[[], Any], normalize: Callable[[Any], Any] | None = None) -> Any:
    """{"ok": normalize(value)} (None without `normalize`) or {"error": the MLflow error code}."""
    try:
        value = fn()
    except MlflowException as exc:
        return {"error": exc.error_code}
    return {"ok": normalize(value) if normalize else None}


_ONCE: dict[Hashable, Any] = {}


def once_per_session(key: Hashable, compute: Callable[[], T]) -> T:
    """`compute()` the first time `key` (e.g. a scenario function) is asked for, the cached
    value after: a scenario's result on the session-wide reference server, compared with every
    Tether backend."""
    if key not in _ONCE:
        _ONCE[key] = compute()
    value: T = _ONCE[key]
    return value
