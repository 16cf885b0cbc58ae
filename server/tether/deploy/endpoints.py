"""`/api/2.0/tether/deployments/*`: what the `tether` MLflow deployments plugin calls."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from tether.api.access import (
    MANAGE,
    READ,
    SIGNED_IN,
    Visible,
    deployment,
    deployment_endpoint,
    registered_models,
)
from tether.api.deps import provider
from tether.api.routing import Router
from tether.deploy import schemas
from tether.deploy.service import MODEL_URI_RE, DeployService
from tether.threads import blocking

Deploy = Annotated[DeployService, Depends(provider(DeployService))]
api = Router("deployments")
PREFIX = "/api/2.0/tether/deployments"


def _model_name(body: schemas.CreateDeployment | schemas.UpdateDeployment, _: object) -> str | None:
    """The registered model a `model_uri` names, read as the service reads it (anything
    else: None, and the service refuses the URI; no model_uri: no model named)."""
    found = MODEL_URI_RE.match(body.model_uri or "")
    return found["name"] if found else None


# With authentication on (as the issue asks): deploying, changing and deleting need MANAGE
# on the registered model, reading and predicting READ; a listing shows what may be read.
# An update needs MANAGE on the model served now and on the one it is to serve.
_DEPLOYED_MODEL = registered_models(_model_name, "model_uri's model")


@api.post(f"{PREFIX}/create", access=MANAGE.on(_DEPLOYED_MODEL))
async def create_deployment(
    body: schemas.CreateDeployment, service: Deploy
) -> schemas.DeploymentResponse:
    found = await service.create(body.name, body.model_uri, dict(body.config), body.endpoint)
    return {"deployment": found}


@api.get(f"{PREFIX}/get", access=READ.on(deployment()))
async def get_deployment(
    body: schemas.DeploymentName, service: Deploy
) -> schemas.DeploymentResponse:
    return {"deployment": await blocking(service.get, body.name)}


@api.get(f"{PREFIX}/list", access=SIGNED_IN.listing("registered_model"))
async def list_deployments(
    body: schemas.ListDeployments, service: Deploy, readable: Visible
) -> schemas.DeploymentList:
    found = await blocking(service.list, body.endpoint, readable=readable)
    return {"deployments": found}


@api.post(f"{PREFIX}/delete", access=MANAGE.on(deployment()))
async def delete_deployment(
    body: schemas.DeploymentName, service: Deploy
) -> schemas.DeploymentResponse:
    return {"deployment": await blocking(service.delete, body.name)}


@api.post(f"{PREFIX}/update", access=MANAGE.on(deployment()).and_on(_DEPLOYED_MODEL))
async def update_deployment(
    body: schemas.UpdateDeployment, service: Deploy
) -> schemas.DeploymentResponse:
    found = await service.update(body.name, body.model_uri, dict(body.config))
    return {"deployment": found}


@api.post(f"{PREFIX}/update-endpoint", access=MANAGE.on(deployment_endpoint()))
async def update_endpoint(
    body: schemas.UpdateEndpoint, service: Deploy
) -> schemas.DeploymentResponse:
    return {"deployment": await blocking(service.update_traffic, body.endpoint, body.traffic)}


@api.post(f"{PREFIX}/predict", access=READ.on(deployment()))
async def predict(body: schemas.Predict, service: Deploy) -> schemas.Predictions:
    return {"predictions": await blocking(service.predict, body.name, body.inputs)}
