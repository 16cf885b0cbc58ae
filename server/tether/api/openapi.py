"""The OpenAPI document of Tether's HTTP API, with real request and response schemas.

FastAPI never sees the request messages (the router parses them) nor the answers' shapes (it
encodes them itself), so FastAPI's generated document knows only paths and path parameters.
This module completes it from what each route recorded (`tether.api.routing.RouteDoc`, read
from the endpoint's signature): on GET the request model's fields become query parameters
(list fields as repeated keys, as MLflow's GET handlers read them), on other methods the model
is the JSON body; the return type (a TypedDict) documents the 200 answer, MLflow's error body
every other status. Every TypedDict is closed (`additionalProperties: false`): an answer has
exactly the declared keys, those MLflow may leave out marked `NotRequired`. Only /api/2.0/...
is documented (the /ajax-api copies are the same endpoints).

`tether openapi --output openapi/openapi.json` regenerates the committed copy (the CLI builds
an app on default settings and hands it to `build`); tests/api/test_openapi.py fails when it
is stale.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import fastapi.routing
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import core_schema

from tether.api.responses import JsonResponse
from tether.api.routing import RouteDoc, route_doc
from tether.errors import ErrorResponse

_REF = "#/components/schemas/{model}"
_BINARY = {"type": "string", "format": "binary"}
_ERRORS = {
    "400": "Invalid request (`INVALID_PARAMETER_VALUE`, `BAD_REQUEST`, ...).",
    "404": "Not found (`RESOURCE_DOES_NOT_EXIST`, `ENDPOINT_NOT_FOUND`).",
}
_TOO_LARGE = "Request body over `TETHER_MAX_REQUEST_BYTES` (`INVALID_PARAMETER_VALUE`)."
_DEFAULT_ERROR = "Any other error, as MLflow's error body."
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def build(app: FastAPI) -> dict[str, Any]:
    """The complete OpenAPI document of `app`."""
    spec = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    operations = _documented_operations(app)
    refs, components = _schemas(operations)
    for path, methods in spec.get("paths", {}).items():
        for method, operation in methods.items():
            doc, json_route = operations.get((path, method), (None, False))
            if doc is None:
                _undocumented(operation, json_route)
            else:
                _complete(operation, method, doc, json_route, refs)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION:  # validation errors are MLflow's 400s, never 422s
        schemas.pop(name, None)
    schemas.update(components)
    return spec


def install(app: FastAPI) -> None:
    """Serve the complete document at /openapi.json (and /docs), built on first request."""

    def complete_openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = complete_openapi  # type: ignore[method-assign]


def render(spec: dict[str, Any]) -> str:
    """Stable text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------- internals


def _documented_operations(
    app: FastAPI,
) -> dict[tuple[str, str], tuple[RouteDoc | None, bool]]:
    """(path, method) -> (its RouteDoc if any, whether it answers JSON) for every route."""
    found: dict[tuple[str, str], tuple[RouteDoc | None, bool]] = {}
    for route in _api_routes(app):
        if not route.include_in_schema:
            continue
        doc = route_doc(route.endpoint)
        response_class = getattr(route.response_class, "value", route.response_class)
        json_route = isinstance(response_class, type) and issubclass(response_class, JsonResponse)
        for method in route.methods:
            found[(route.path_format, method.lower())] = (doc, json_route)
    return found


def _api_routes(app: FastAPI) -> Iterator[Any]:
    """Every APIRoute of the app, as seen at its final path (routers included or not)."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if contexts is None:  # FastAPI before lazily included routers: the routes are copied
        yield from (r for r in app.routes if isinstance(r, APIRoute))
        return
    for context in contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context


Refs = dict[tuple[Any, JsonSchemaMode], dict[str, Any]]


class _ClosedTypedDicts(GenerateJsonSchema):
    """A TypedDict's keys are all its answer has (unless its own config says otherwise)."""

    def typed_dict_schema(self, schema: core_schema.TypedDictSchema) -> JsonSchemaValue:
        generated = super().typed_dict_schema(schema)
        if "extra_fields_behavior" not in schema.get("config", {}):
            generated.setdefault("additionalProperties", False)
        return generated


def _schemas(operations: dict[tuple[str, str], tuple[RouteDoc | None, bool]]) -> tuple[Refs, Any]:
    """One JSON schema per type (shared definitions deduplicated, names made unique)."""
    wanted: dict[tuple[Any, JsonSchemaMode], None] = {(ErrorResponse, "serialization"): None}
    for (_, method), (doc, _) in operations.items():
        if doc is None:
            continue
        if doc.request is not None and method != "get":
            wanted[(doc.request, "validation")] = None
        if doc.response is not None:
            wanted[(doc.response, "serialization")] = None
    refs, definitions = TypeAdapter.json_schemas(
        [(key, key[1], TypeAdapter(key[0])) for key in wanted],
        ref_template=_REF,
        schema_generator=_ClosedTypedDicts,
    )
    return {key: refs[(key, key[1])] for key in wanted}, definitions.get("$defs", {})


def _undocumented(operation: dict[str, Any], json_route: bool) -> None:
    """A route that recorded no RouteDoc: its JSON answers are documented as any JSON."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    if json_route:
        for answer in responses.values():
            if "application/json" in answer.get("content", {}):
                answer["content"]["application/json"]["schema"] = {}
        responses["default"] = {
            "description": "Other answers (not described in detail).",
            "content": {"application/json": {"schema": {}}},
        }


def _complete(
    operation: dict[str, Any],
    method: str,
    doc: RouteDoc,
    json_route: bool,
    refs: Refs,
) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    has_body = False
    if doc.request is not None and method == "get":
        query = _query_parameters(doc.request)
        names = {p["name"] for p in query}
        others = [p for p in operation.get("parameters", []) if p["name"] not in names]
        operation["parameters"] = others + query
    elif doc.request is not None:
        schema = refs[(doc.request, "validation")]
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
        has_body = True
    elif doc.binary_request:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/octet-stream": {"schema": _BINARY}},
        }
    ok = responses.setdefault("200", {"description": "Successful Response"})
    if doc.ok_status != 200:
        ok = responses[str(doc.ok_status)] = responses.pop("200")
        ok["description"] = HTTPStatus(doc.ok_status).phrase
    if doc.empty_response:
        ok.pop("content", None)
    elif doc.response is not None:
        ok["content"] = {"application/json": {"schema": refs[(doc.response, "serialization")]}}
    elif doc.binary_response:
        ok["content"] = {"application/octet-stream": {"schema": _BINARY}}
    elif json_route:
        ok["content"] = {"application/json": {"schema": {}}}
    error = {"application/json": {"schema": refs[(ErrorResponse, "serialization")]}}
    for status, description in _ERRORS.items():
        responses[status] = {"description": description, "content": copy.deepcopy(error)}
    if has_body:
        responses["413"] = {"description": _TOO_LARGE, "content": copy.deepcopy(error)}
    responses["default"] = {"description": _DEFAULT_ERROR, "content": copy.deepcopy(error)}
    for code in doc.text_on:
        responses[str(code)] = {
            "description": f"{HTTPStatus(code).phrase}, as a plain-text sentence.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
    for code in doc.same_body_on:
        responses[str(code)] = {
            "description": f"{HTTPStatus(code).phrase}, with the same body.",
            "content": copy.deepcopy(ok.get("content", {})),
        }


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """A GET request model's fields as query parameters (lists as repeated keys)."""
    schema = model.model_json_schema(ref_template=_REF)
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = _query_schema(prop)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if prop.get("type") == "array":
            parameter["style"] = "form"
            parameter["explode"] = True
        parameters.append(parameter)
    if "$defs" in schema:
        raise ValueError(f"{model.__name__}: a nested model cannot be read from a query string")
    return parameters


def _query_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """A property's schema as a query parameter's: a query string cannot say null."""
    prop = {k: v for k, v in prop.items() if k != "title"}
    if prop.get("default", "") is None:
        del prop["default"]
    options = prop.get("anyOf")
    if options is not None:
        options = [o for o in options if o.get("type") != "null"]
        del prop["anyOf"]
        if len(options) == 1:
            prop.update(options[0])
        else:
            prop["anyOf"] = options
    return prop
