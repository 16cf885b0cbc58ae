"""Typed dependencies: the services the app was built with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from tether.artifacts.service import ArtifactService
from tether.logged_models.service import LoggedModelService
from tether.registry.service import RegistryService
from tether.tracking.experiments.service import ExperimentService
from tether.tracking.metrics.service import MetricService
from tether.tracking.runs.service import RunService


@dataclass(frozen=True)
class Services:
    experiments: ExperimentService
    runs: RunService
    metrics: MetricService
    artifacts: ArtifactService
    registry: RegistryService
    logged_models: LoggedModelService


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _experiments(request: Request) -> ExperimentService:
    return _services(request).experiments


def _runs(request: Request) -> RunService:
    return _services(request).runs


def _metrics(request: Request) -> MetricService:
    return _services(request).metrics


def _artifacts(request: Request) -> ArtifactService:
    return _services(request).artifacts


def _registry(request: Request) -> RegistryService:
    return _services(request).registry


def _logged_models(request: Request) -> LoggedModelService:
    return _services(request).logged_models


Experiments = Annotated[ExperimentService, Depends(_experiments)]
Runs = Annotated[RunService, Depends(_runs)]
Metrics = Annotated[MetricService, Depends(_metrics)]
Artifacts = Annotated[ArtifactService, Depends(_artifacts)]
Registry = Annotated[RegistryService, Depends(_registry)]
LoggedModels = Annotated[LoggedModelService, Depends(_logged_models)]
