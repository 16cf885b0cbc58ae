"""JSON responses serialized with orjson, and the empty answer."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from fastapi.responses import Response
from typing_extensions import TypedDict


class JsonResponse(Response):
    """orjson-encoded JSON. A lone UTF-16 surrogate, which orjson (rightly) refuses to write,
    is written as U+FFFD: request bodies and URLs cannot carry one (`tether.api.jsonbody`,
    `tether.api.urls`), but a value decoded from something else can (a base64 page token
    quoted back in its error message), and answering must not fail on it."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:
            return orjson.dumps(_without_surrogates(content))


_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_surrogates(item) for item in value]
    return value


class FlaskJsonResponse(JsonResponse):
    """JSON as `mlflow server` writes the plain dicts some of its Flask routes answer (not
    protobuf messages): Python's `json`, so a NaN is the bare token `NaN`, as Python clients
    read it (JavaScript's JSON.parse does not). Slower than orjson: for rarely used routes."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode()


class Empty(TypedDict):
    """`{}`: the request succeeded and MLflow's response message has no fields."""
