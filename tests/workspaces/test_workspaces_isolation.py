"""Two teams on one `tether serve --enable-workspaces`, each with the stock MLflow 3.17 client
after `mlflow.set_workspace(...)`, creating the same names: nothing leaks across, through any
list, search, get, alias, artifact, model or trace route, and each team's artifacts are stored under
`workspaces/<name>/` of the proxied root."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from support import MlflowRest, TetherServer
from support.mlflow3 import tracking_to

pytestmark = pytest.mark.usefixtures("clean_mlflow_client")

SAME = "shared"  # every name both teams use
GET_RUN = """query GetRun($data: MlflowGetRunInput!) {
  mlflowGetRun(input: $data) { run { data { params { key value } } } apiError { code } }
}"""
GET_EXPERIMENT = """query GetExperiment($input: MlflowGetExperimentInput!) {
  mlflowGetExperiment(input: $input) { experiment { name artifactLocation } apiError { code } }
}"""


@dataclass
class Team:
    workspace: str
    experiment_id: str = ""
    run_id: str = ""
    model_id: str = ""
    trace_id: str = ""


@pytest.fixture
def teams(tether_workspaces_server: TetherServer) -> Iterator[tuple[Team, Team]]:
    suffix = uuid.uuid4().hex[:8]
    pair = (Team(f"team-a-{suffix}"), Team(f"team-b-{suffix}"))
    with tracking_to(tether_workspaces_server.url):
        try:
            for team in pair:
                mlflow.set_workspace(None)
                mlflow.create_workspace(team.workspace, description=team.workspace)
                mlflow.set_workspace(team.workspace)
                _log(team)
            yield pair
        finally:
            mlflow.set_workspace(None)


def _log(team: Team) -> None:
    client = MlflowClient()
    team.experiment_id = mlflow.set_experiment(SAME).experiment_id
    with mlflow.start_run(run_name=SAME) as run:
        team.run_id = run.info.run_id
        mlflow.log_param("team", team.workspace)
        mlflow.log_metric("score", 1.0)
        mlflow.log_text(team.workspace, "who.txt")
    model = client.create_logged_model(team.experiment_id, name=SAME, source_run_id=team.run_id)
    team.model_id = model.model_id
    client.create_registered_model(SAME)
    version = client.create_model_version(
        SAME, source=f"runs:/{team.run_id}/who.txt", run_id=team.run_id
    )
    client.set_registered_model_alias(SAME, "champion", version.version)
    with mlflow.start_span(name=SAME) as span:
        span.set_inputs({"team": team.workspace})
    mlflow.flush_trace_async_logging()
    trace_id = mlflow.get_last_active_trace_id()
    assert trace_id is not None
    team.trace_id = trace_id


def _missing(call: Callable[..., object], *args: object) -> None:
    with pytest.raises(MlflowException) as raised:
        call(*args)
    assert raised.value.error_code == "RESOURCE_DOES_NOT_EXIST", raised.value


def test_nothing_leaks_across_workspaces(
    teams: tuple[Team, Team], tether_workspaces_server: TetherServer, tmp_path: Path
) -> None:
    for mine, other in (teams, teams[::-1]):
        mlflow.set_workspace(mine.workspace)
        client = MlflowClient()
        # Experiments and runs: only mine, by list, search and id.
        assert [e.experiment_id for e in client.search_experiments()] == [mine.experiment_id]
        assert client.get_experiment_by_name(SAME).experiment_id == mine.experiment_id
        runs = client.search_runs([mine.experiment_id, other.experiment_id])
        assert [r.info.run_id for r in runs] == [mine.run_id]
        assert client.get_run(mine.run_id).data.params == {"team": mine.workspace}
        _missing(client.get_run, other.run_id)
        _missing(client.get_experiment, other.experiment_id)
        _missing(client.log_metric, other.run_id, "intruder", 1.0)
        # Registered models, versions and aliases: mine.
        models = client.search_registered_models()
        assert [m.name for m in models] == [SAME]
        assert models[0].latest_versions[0].run_id == mine.run_id
        assert client.get_model_version_by_alias(SAME, "champion").run_id == mine.run_id
        versions = client.search_model_versions(f"name = '{SAME}'")
        assert [v.run_id for v in versions] == [mine.run_id]
        # Logged models: mine.
        found = client.search_logged_models([mine.experiment_id, other.experiment_id])
        assert [m.model_id for m in found] == [mine.model_id]
        _missing(client.get_logged_model, other.model_id)
        # Traces: mine.
        traces = client.search_traces(locations=[mine.experiment_id])
        assert [t.info.trace_id for t in traces] == [mine.trace_id]
        _missing(client.get_trace, other.trace_id)
        # Artifacts: mine, read back through the proxy.
        text = mlflow.artifacts.load_text(f"runs:/{mine.run_id}/who.txt")
        assert text == mine.workspace
        with pytest.raises(MlflowException):
            mlflow.artifacts.download_artifacts(
                f"runs:/{other.run_id}/who.txt", dst_path=str(tmp_path)
            )
        stored = Path(tether_workspaces_server.artifacts_destination) / "workspaces"
        assert (stored / mine.workspace / mine.experiment_id / mine.run_id).is_dir()
        # The UI's GraphQL: another workspace's run and experiment are not found.
        with MlflowRest(tether_workspaces_server.url).in_workspace(mine.workspace) as rest:
            for query, variables in (
                (GET_RUN, {"data": {"runId": other.run_id}}),
                (GET_EXPERIMENT, {"input": {"experimentId": other.experiment_id}}),
            ):
                answer = rest.post("/graphql", {"query": query, "variables": variables})
                assert answer.status == 200 and other.workspace not in answer.text, answer.text
            answer = rest.post(
                "/graphql", {"query": GET_RUN, "variables": {"data": {"runId": mine.run_id}}}
            )
            assert mine.workspace in answer.text, answer.text
    # The default workspace sees neither team's experiment.
    mlflow.set_workspace(None)
    names = [e.name for e in MlflowClient().search_experiments()]
    assert SAME not in names
