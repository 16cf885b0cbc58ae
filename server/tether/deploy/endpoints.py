"""`/api/2.0/tether/deployments/*`: what the `tether` MLflow deployments plugin calls."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from tether.api.deps import provider
from tether.api.routing import Router
from tether.deploy import schemas
from tether.deploy.service import DeployService
from tether.threads import blocking

Deploy = Annotated[DeployService, Depends(provider(DeployService))]
api = Router("deployments")
PREFIX = "/api/2.0/tether/deployments"


@api.post(f"{PREFIX}/create")
async def create_deployment(
    body: schemas.CreateDeployment, service: Deploy
) -> schemas.DeploymentResponse:
    found = await service.create(body.name, body.model_uri, dict(body.config), body.endpoint)
    return {"deployment": found}


@api.get(f"{PREFIX}/get")
async def get_deployment(
    body: schemas.DeploymentName, service: Deploy
) -> schemas.DeploymentResponse:
    return {"deployment": await blocking(service.get, body.name)}


@api.get(f"{PREFIX}/list")
async def list_deployments(
    body: schemas.ListDeployments, service: Deploy
) -> schemas.DeploymentList:
    return {"deployments": await blocking(service.list, body.endpoint)}


@api.post(f"{PREFIX}/delete")
async def delete_deployment(
    body: schemas.DeploymentName, service: Deploy
) -> schemas.DeploymentResponse:
    return {"deployment": await blocking(service.delete, body.name)}


@api.post(f"{PREFIX}/update-endpoint")
async def update_endpoint(
    body: schemas.UpdateEndpoint, service: Deploy
) -> schemas.DeploymentResponse:
    return {"deployment": await blocking(service.update_traffic, body.endpoint, body.traffic)}


@api.post(f"{PREFIX}/predict")
async def predict(body: schemas.Predict, service: Deploy) -> schemas.Predictions:
    return {"predictions": await blocking(service.predict, body.name, body.inputs)}
