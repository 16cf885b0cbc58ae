"""Test infrastructure: real servers on loopback ports, PostgreSQL, Azurite, the MLflow clients,
and every helper more than one test folder uses (tests/README.md).

Fixtures wrapping these live in tests/conftest.py. Import with `from support import ...` (the
names below) or `from support.<module> import ...`; inside this package imports are relative,
so bench/ can use it as `tests.support`.
"""

from __future__ import annotations

import uuid

from .mlflow2 import Mlflow2, ensure_mlflow2_venv, run_mlflow2
from .net import free_port, wait_for_http
from .postgres import PostgresCluster, PostgresUnavailable
from .rest import MlflowRest, RestResponse
from .servers import (
    BackendUriFactory,
    ReferenceServer,
    ServerProcess,
    TetherServer,
    TetherServerStarter,
)


def unique_name(prefix: str = "exp") -> str:
    """A name no other test (or earlier run against a reused server) has used."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


__all__ = [
    "BackendUriFactory",
    "Mlflow2",
    "MlflowRest",
    "PostgresCluster",
    "PostgresUnavailable",
    "ReferenceServer",
    "RestResponse",
    "ServerProcess",
    "TetherServer",
    "TetherServerStarter",
    "ensure_mlflow2_venv",
    "free_port",
    "run_mlflow2",
    "unique_name",
    "wait_for_http",
]
