"""Read an endpoint's request message out of the HTTP request, the way `mlflow server` reads it.

GET requests carry their fields in the query string (repeated fields as repeated keys), and
so do messages marked `in_query` (their body is not read here); other methods carry a JSON
body, which POST/PUT must label application/json (MLflow's guard
against cross-site form posts). The fields are then parsed by the message's model
(`tether.wire.RequestModel.parse`): every refusal, malformed bodies included, is MLflow's
INVALID_PARAMETER_VALUE with MLflow's wording, never FastAPI's 422 or a 500. Bodies are
decoded with bounded work and strict UTF-8 (`tether.api.jsonbody`); URLs are strict UTF-8
before they get here (`tether.api.urls`).
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request

from tether.api.jsonbody import decode_body
from tether.errors import invalid_parameter
from tether.wire import RequestModel, is_list

_JSON_METHODS = ("POST", "PUT")
_JSON_CONTENT_TYPES = ("application/json",)

M = TypeVar("M", bound=RequestModel)


async def read_body(request: Request, model: type[M]) -> M:
    """The request's message, parsed by `model`."""
    return model.parse(await read_request_data(request, model))


async def read_request_data(request: Request, model: type[RequestModel]) -> dict[str, Any]:
    if model.in_query or (request.method == "GET" and request.query_params):
        return _query_data(request, model)
    if request.method in _JSON_METHODS:
        _check_content_type(request.headers.get("content-type"))
    body = await request.body()
    model.check_size(len(body))
    return await _json_body(body)


def _query_data(request: Request, model: type[RequestModel]) -> dict[str, Any]:
    """Every query parameter (aliases such as run_uuid included); list fields repeat keys."""
    data: dict[str, Any] = {}
    for name in request.query_params:
        field = model.model_fields.get(name)
        if field is not None and is_list(field.annotation):
            data[name] = request.query_params.getlist(name)
        else:
            data[name] = request.query_params[name]
    return data


def _check_content_type(content_type: str | None) -> None:
    """MLflow refuses non-JSON POST bodies (its guard against cross-site form posts)."""
    if content_type is None:
        raise invalid_parameter("Bad Request. Content-Type header is missing.")
    if content_type.split(";")[0].strip().lower() not in _JSON_CONTENT_TYPES:
        raise invalid_parameter(
            f"Bad Request. Content-Type must be one of {list(_JSON_CONTENT_TYPES)}."
        )


async def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    parsed = await decode_body(body)  # bounded, strict UTF-8, off the loop when large
    if not isinstance(parsed, dict):
        raise invalid_parameter(
            f"Malformed request body: expected a JSON object, got {type(parsed).__name__}."
        )
    return parsed
