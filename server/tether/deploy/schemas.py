"""Request bodies and answers of `/api/2.0/tether/deployments/*` (the `tether` MLflow
deployments plugin's server side, mlflow_deployments.py)."""

from __future__ import annotations

from typing import Any, NotRequired

from typing_extensions import TypedDict

from tether.wire import RequestModel, Str


class CreateDeployment(RequestModel):
    name: Str
    model_uri: Str
    config: dict[str, Str] = {}
    endpoint: Str | None = None  # an endpoint Tether created; None: a new one called `name`


class UpdateDeployment(RequestModel):
    name: Str
    model_uri: Str | None = None  # None: the model served now (a new instance count only)
    config: dict[str, Str] = {}


class DeploymentName(RequestModel):
    name: Str


class ListDeployments(RequestModel):
    endpoint: Str | None = None


class UpdateEndpoint(RequestModel):
    endpoint: Str
    traffic: dict[str, int]


class Predict(RequestModel):
    name: Str
    inputs: Any  # `input_data` as Azure's MLflow scoring takes it (split orientation)


class UpdateTarget(TypedDict):
    model_uri: str
    instance_count: int


class DeploymentView(TypedDict):
    name: str
    workspace: str  # the MLflow workspace it was requested in ("default" without workspaces)
    endpoint: str
    model_uri: str
    model_name: str
    model_version: str
    state: str  # PENDING_SYNC | CREATING | READY | UPDATING | FAILED | DELETING | DELETED
    # model_uri, model_*, instance_*: what serves; during an update, `update` is the target
    instance_type: str
    instance_count: int
    owns_endpoint: bool
    flavor: str  # always python_function (`mlflow deployments create` prints it)
    created_at: int
    updated_at: int
    scoring_uri: NotRequired[str]
    error: NotRequired[str]
    logs: NotRequired[str]
    traffic: NotRequired[dict[str, int]]
    update: NotRequired[UpdateTarget]


class DeploymentResponse(TypedDict):
    deployment: DeploymentView


class DeploymentList(TypedDict):
    deployments: list[DeploymentView]


class Predictions(TypedDict):
    predictions: Any
