"""Smoke tests for the test infrastructure itself (fixtures in conftest.py, helpers in support/)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import psycopg
import pytest

from support import Mlflow2, MlflowRest, ReferenceServer, TetherServer, free_port, unique_name


def test_free_port_is_unique_and_bindable() -> None:
    ports = {free_port() for _ in range(20)}
    assert len(ports) == 20
    assert all(1024 <= p <= 65535 for p in ports)


def test_postgres_database_answers_select_1(new_postgres_database: Callable[[], str]) -> None:
    first, second = new_postgres_database(), new_postgres_database()
    assert first != second
    assert first.startswith("postgresql://") and "@127.0.0.1:" in first
    with psycopg.connect(first) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        # A fresh database: no tables of ours yet.
        (count,) = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone() or (None,)
        assert count == 0


def test_backend_uri_is_fresh(backend_kind: str, backend_uri: str) -> None:
    if backend_kind == "sqlite":
        assert backend_uri.startswith("sqlite:////") and backend_uri.endswith(".db")
    else:
        assert backend_uri.startswith("postgresql://")
        with psycopg.connect(backend_uri) as conn:
            assert conn.execute("SELECT current_database()").fetchone() is not None


def test_reference_server_default_experiment(
    reference_server: ReferenceServer, reference_rest: MlflowRest
) -> None:
    assert httpx.get(f"{reference_server.url}/health").text == "OK"
    status, body = reference_rest.get("experiments/get", {"experiment_id": "0"})
    assert status == 200, body
    assert body["experiment"]["experiment_id"] == "0"
    assert body["experiment"]["name"] == "Default"
    missing = reference_rest.get("experiments/get", {"experiment_id": "987654321"})
    assert missing.status == 404
    assert missing.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_mlflow2_client_is_2x(mlflow2: Mlflow2) -> None:
    assert mlflow2.version.startswith("2.")


def test_mlflow2_client_round_trip_against_reference(
    mlflow2: Mlflow2, reference_server: ReferenceServer
) -> None:
    name = unique_name("m2")
    result = mlflow2.run(
        reference_server.url,
        f"""
        exp_id = client.create_experiment({name!r})
        run = client.create_run(exp_id)
        client.log_metric(run.info.run_id, "loss", 0.5, step=3)
        client.set_terminated(run.info.run_id)
        got = client.get_run(run.info.run_id)
        result = {{"version": mlflow.__version__, "metrics": got.data.metrics,
                   "status": got.info.status}}
        """,
    )
    assert result["version"].startswith("2.")
    assert result["metrics"] == {"loss": 0.5}
    assert result["status"] == "FINISHED"


def test_tether_server_health(tether_server: TetherServer) -> None:
    response = httpx.get(f"{tether_server.url}/health")
    assert response.status_code == 200
    assert response.text.strip().strip('"') == "OK"


@pytest.mark.parametrize("prefix", ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"])
def test_tether_serves_default_experiment(tether_server: TetherServer, prefix: str) -> None:
    with tether_server.rest(prefix) as rest:
        status, body = rest.get("experiments/get", {"experiment_id": "0"})
    assert status == 200, body
    assert body["experiment"]["name"] == "Default"
