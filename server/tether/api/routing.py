"""Register each endpoint under both prefixes the MLflow client and UI use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from tether.api.responses import JsonResponse

PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")


class MlflowRouter:
    def __init__(self, tag: str) -> None:
        self.router = APIRouter(tags=[tag], default_response_class=JsonResponse)

    def route(self, path: str, methods: list[str]) -> Callable[[Callable[..., Any]], Any]:
        def decorator(func: Callable[..., Any]) -> Any:
            for index, prefix in enumerate(PREFIXES):
                self.router.add_api_route(
                    prefix + path,
                    func,
                    methods=methods,
                    include_in_schema=index == 0,
                    name=func.__name__ if index == 0 else f"{func.__name__}_ajax",
                )
            return func

        return decorator
