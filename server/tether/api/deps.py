"""Typed dependencies: the services the app was built with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from tether.tracking.experiments.service import ExperimentService
from tether.tracking.metrics.service import MetricService
from tether.tracking.runs.service import RunService


@dataclass(frozen=True)
class Services:
    experiments: ExperimentService
    runs: RunService
    metrics: MetricService


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _experiments(request: Request) -> ExperimentService:
    return _services(request).experiments


def _runs(request: Request) -> RunService:
    return _services(request).runs


def _metrics(request: Request) -> MetricService:
    return _services(request).metrics


Experiments = Annotated[ExperimentService, Depends(_experiments)]
Runs = Annotated[RunService, Depends(_runs)]
Metrics = Annotated[MetricService, Depends(_metrics)]
