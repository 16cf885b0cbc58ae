"""JSON responses serialized with orjson, and the empty answer."""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi.responses import Response
from typing_extensions import TypedDict


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class FlaskJsonResponse(JsonResponse):
    """JSON as `mlflow server` writes the plain dicts some of its Flask routes answer (not
    protobuf messages): Python's `json`, so a NaN is the bare token `NaN`, as Python clients
    read it (JavaScript's JSON.parse does not). Slower than orjson: for rarely used routes."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode()


class Empty(TypedDict):
    """`{}`: the request succeeded and MLflow's response message has no fields."""
