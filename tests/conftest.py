"""Shared fixtures: real Tether / reference MLflow servers, PostgreSQL, an MLflow 2.x client.

Servers are expensive on 2 cores, so they are shared: one Tether server per backend per test
module, one reference `mlflow server` and one PostgreSQL cluster per session. Tests therefore
create their own uniquely named experiments (`support.unique_name()`), never assume an empty
server, and use `start_tether_server` when they need a private one or non-default flags.

    def test_create(tether_rest, backend_kind):       # runs twice: [sqlite] and [postgres]
        status, body = tether_rest.post("experiments/create", {"name": unique_name()})

To pin a test (or module) to one backend:
    @pytest.mark.parametrize("backend_kind", ["sqlite"], indirect=True)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from support import (
    BackendUriFactory,
    Mlflow2,
    MlflowRest,
    PostgresCluster,
    PostgresUnavailable,
    ReferenceServer,
    TetherServer,
    TetherServerStarter,
    ensure_mlflow2_venv,
)
from support.outbox import open_store
from support.postgres import SKIP_ENV, find_pg_bindir
from tether.db import migrate
from tether.db.engine import Database

# Property tests draw the same examples on every run by default, so a red CI is a regression,
# never a roll of the dice; TETHER_HYPOTHESIS_EXPLORE=1 draws new ones (and a failure found
# that way becomes a fixed regression test).
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
hypothesis_settings.register_profile("explore")
hypothesis_settings.load_profile(
    "explore" if os.environ.get("TETHER_HYPOTHESIS_EXPLORE") == "1" else "ci"
)

# The in-process mlflow client (3.x) some tests use: no telemetry calls, no minutes of retries.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]

# Fixtures whose use marks a test, so `-m "not postgres"` etc. select as expected.
_FIXTURE_MARKS = {
    "postgres_server": "postgres",
    "new_postgres_database": "postgres",
    "reference_server": "reference",
    "reference_auth_server": "reference",
    "reference_workspaces_server": "reference",
    "reference_rest": "reference",
    "mlflow2_python": "client2",
    "mlflow2": "client2",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for fixture, mark in _FIXTURE_MARKS.items():
            if fixture in names:
                item.add_marker(getattr(pytest.mark, mark))


# ---------------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster (trust auth on 127.0.0.1:`.port`) for the session.

    Missing binaries FAIL the tests that need it, unless TETHER_TEST_SKIP_POSTGRES=1.
    """
    try:
        find_pg_bindir()
    except PostgresUnavailable as exc:
        if os.environ.get(SKIP_ENV) == "1":
            pytest.skip(f"{SKIP_ENV}=1 and PostgreSQL is not installed")
        pytest.fail(str(exc), pytrace=False)
    cluster = PostgresCluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def new_postgres_database(postgres_server: PostgresCluster) -> Callable[[], str]:
    """Factory: `new_postgres_database()` -> URI of a fresh empty database."""
    return postgres_server.new_database


# ------------------------------------------------------------------------------ backend stores


@pytest.fixture(scope="session")
def make_backend_uri(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> BackendUriFactory:
    """Factory: `make_backend_uri("sqlite" | "postgres")` -> a fresh, empty backend-store URI."""

    def make(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'tether.db'}"
        if kind == "postgres":
            cluster: PostgresCluster = request.getfixturevalue("postgres_server")
            return cluster.new_database()
        raise ValueError(f"unknown backend kind {kind!r}")

    return make


@pytest.fixture(scope="module", params=BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    """Either "sqlite" or "postgres": every test depending on it runs once per backend."""
    kind: str = request.param
    if kind == "postgres":
        request.getfixturevalue("postgres_server")  # fail/skip here, with the clear message
    return kind


@pytest.fixture
def backend_uri(backend_kind: str, make_backend_uri: BackendUriFactory) -> str:
    """A fresh, empty backend-store URI for the current backend (parametrized both ways)."""
    return make_backend_uri(backend_kind)


@pytest.fixture
def db(backend_uri: str) -> Iterator[Database]:
    """A fresh store of the current backend, migrated; no server."""
    database = Database(backend_uri)
    migrate.upgrade(database)
    yield database
    database.dispose()


# ------------------------------------------------------------------------------------ Tether


@pytest.fixture(scope="module")
def tether_server(backend_kind: str, make_backend_uri: BackendUriFactory) -> Iterator[TetherServer]:
    """`tether serve` on a fresh store of the current backend, shared by the test module.

    `.url`, `.port`, `.backend_uri`, `.artifacts_destination`, `.rest()`, `.log_text()`.
    """
    server = TetherServer(make_backend_uri(backend_kind))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tether_rest(tether_server: TetherServer) -> Iterator[MlflowRest]:
    with tether_server.rest() as rest:
        yield rest


@pytest.fixture
def tether_store(tether_server: TetherServer) -> Iterator[Database]:
    """The module server's own store, to check what a request wrote (support/outbox.py)."""
    with open_store(tether_server.backend_uri) as db:
        yield db


@pytest.fixture
def start_tether_server(
    backend_kind: str, make_backend_uri: BackendUriFactory
) -> Iterator[TetherServerStarter]:
    """Factory for private servers with custom flags, stopped when the test ends.

    `start_tether_server(extra_args=["--workers", "2"])` uses a fresh store of the current
    backend; pass `backend_uri=` to reuse one (e.g. to restart a server on the same data).
    """
    started: list[TetherServer] = []

    def start(
        backend_uri: str | None = None,
        *,
        extra_args: list[str] | tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        artifacts_destination: str | None = None,
    ) -> TetherServer:
        server = TetherServer(
            backend_uri or make_backend_uri(backend_kind),
            extra_args=extra_args,
            env=env,
            artifacts_destination=artifacts_destination,
        )
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(started):
            server.stop()


# ---------------------------------------------------------------------- reference MLflow 3.x


@pytest.fixture(scope="session")
def reference_server() -> Iterator[ReferenceServer]:
    """The installed `mlflow server` (3.x) on its own SQLite store, for differential tests."""
    server = ReferenceServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def reference_rest(reference_server: ReferenceServer) -> Iterator[MlflowRest]:
    with reference_server.rest() as rest:
        yield rest


# ------------------------------------------------------------------------------ Azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[Any]:
    """Azurite's blob service (npm `azurite`, installed into <repo>/.cache/azurite on first
    use) on a free loopback port: `.connection_string`, `.new_container()`, `.wasbs(c, prefix)`,
    `.env()` (the AZURE_STORAGE_CONNECTION_STRING a server needs)."""
    from support.azurite import Azurite

    server = Azurite()
    try:
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------ in-process MLflow 3.x client


@pytest.fixture
def clean_mlflow_client() -> Iterator[None]:
    """The in-process MLflow client's global state reset before and after the test (use with
    `pytestmark = pytest.mark.usefixtures("clean_mlflow_client")`; see support/mlflow3.py)."""
    from support.mlflow3 import reset_client_state  # imports mlflow: only when used

    reset_client_state()
    yield
    reset_client_state()


# ------------------------------------------------------------------------ MLflow 2.x client


@pytest.fixture(scope="session")
def mlflow2_python() -> Path:
    """Python of a cached venv (<repo>/.cache/mlflow2-venv) with mlflow-skinny 2.22."""
    return ensure_mlflow2_venv()


@pytest.fixture(scope="session")
def mlflow2(mlflow2_python: Path) -> Mlflow2:
    """`mlflow2.run(tracking_uri, snippet)` -> the snippet's `result`, JSON round-tripped."""
    return Mlflow2(mlflow2_python)


# --------------------------------------------------- server logs in the report of a failure

_LOG_MARKS = pytest.StashKey[dict[int, int]]()


def _log_sources(item: pytest.Item) -> list[tuple[str, Any]]:
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    sources = []
    seen: set[int] = set()
    for name, value in funcargs.items():
        if hasattr(value, "log_size") and hasattr(value, "log_text") and id(value) not in seen:
            seen.add(id(value))
            sources.append((name, value))
    return sources


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    item.stash[_LOG_MARKS] = {id(v): v.log_size() for _, v in _log_sources(item)}
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if call.when != "call" or not report.failed:
        return
    marks = item.stash.get(_LOG_MARKS, {})
    for name, source in _log_sources(item):
        text = source.log_text(marks.get(id(source), 0))
        if len(text) > 20_000:
            text = "[...]\n" + text[-20_000:]
        report.sections.append((f"{name} log during the test", text or "<empty>"))


# ------------------------------------------ Azure ML stand-ins (tests/standin, see README.md)

from typing import TYPE_CHECKING  # noqa: E402  (kept inside this block on purpose)

if TYPE_CHECKING:  # the stand-ins' modules are imported lazily: collection stays cheap
    from standin.identity import ManagedIdentityEndpoint
    from standin.workspace import AzuremlWorkspace


def _session_azurite(request: pytest.FixtureRequest) -> tuple[str, tuple[str, str]]:
    """(blob endpoint, (account, key)) of the session's `azurite` fixture, started on demand."""
    from support.azurite import ACCOUNT, ACCOUNT_KEY

    azurite = request.getfixturevalue("azurite")
    return azurite.blob_endpoint, (ACCOUNT, ACCOUNT_KEY)


@pytest.fixture(scope="session")
def azureml_identity() -> Iterator[ManagedIdentityEndpoint]:
    """Managed-identity endpoint (App Service protocol, what ManagedIdentityCredential uses)
    issuing 120 s tokens the stand-in workspace accepts.

    `.env` (IDENTITY_ENDPOINT, IDENTITY_HEADER) for a Tether server; `.mint(lifetime=...)`
    makes a token without a request (negative lifetime: already expired);
    `.configure(lifetime=, fail_next=, fail_status=)`; `.requests()`. Reset after each test.
    """
    from standin.identity import ManagedIdentityEndpoint

    endpoint = ManagedIdentityEndpoint(lifetime=120.0)
    try:
        yield endpoint
    finally:
        endpoint.stop()


@pytest.fixture(scope="session")
def azureml_workspace(
    request: pytest.FixtureRequest, azureml_identity: ManagedIdentityEndpoint
) -> Iterator[AzuremlWorkspace]:
    """A stand-in Azure ML workspace: real `mlflow server` behind an Azure-shaped HTTPS front,
    artifacts in Azurite (the `azurite` fixture's, or its own), Azure's quirks switched on.

    `.tracking_uri` (azureml://...), `.https_base`, `.http_base`, `.arm_endpoint`, `.arm_id`,
    `.scope`, `.env` (SSL_CERT_FILE for a client process), `.ca_file`, `.client(token)`,
    `.mlflow_api()`, `.history_api()`, `.mlflow_url` (inner MLflow, no auth, no quirks),
    `.artifacts` (read uploaded blobs back), `.faults(...)`, `.requests(since=)`, `.mark()`,
    `.quirks(**changes)`, `.artifact_index(run_id)`. Faults and quirks reset after each test.
    """
    from standin.workspace import AzuremlWorkspace

    workspace = AzuremlWorkspace(azureml_identity, shared_blob=lambda: _session_azurite(request))
    try:
        yield workspace
    finally:
        workspace.stop()


@pytest.fixture(autouse=True)
def _azureml_standin_reset(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used them: clear fault plans, restore quirks and token lifetime."""
    yield
    funcargs: dict[str, Any] = getattr(request.node, "funcargs", {})
    for name in ("azureml_workspace", "azureml_identity"):
        standin = funcargs.get(name)
        if standin is not None and standin.alive():
            standin.reset()
