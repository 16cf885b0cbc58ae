"""JSON responses serialized with orjson, and the empty answer."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response
from typing_extensions import TypedDict


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class Empty(TypedDict):
    """`{}`: the request succeeded and MLflow's response message has no fields."""
