"""JSON responses serialized with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


EMPTY = JsonResponse({})
