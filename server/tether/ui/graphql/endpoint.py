"""`GET|POST /graphql`, answered as `mlflow server` answers it.

The request is one JSON object `{"query", "variables", "operationName"}`: the body of a POST
(labelled application/json, as MLflow requires) or of a GET; a GET may instead carry them in
the query string. The answer is 200 `{"data": ..., "errors": [message, ...] | null}` -- the
errors are plain strings, MLflow's shape, not GraphQL's objects -- for documents that break
the batching limits (`limits`), fail validation, or whose resolvers fail (`data` then holds
null for that field: e.g. an unknown run).

Where `mlflow server` answers 500 (no body, a body that is not one JSON object -- a batch
array included --, no query, a syntax error), Tether answers 400 with MLflow's error body
(INVALID_PARAMETER_VALUE): bad input is never a server error here. An unexpected failure
inside a resolver is logged with its traceback and reported as an internal error, without
its details.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import APIRouter, Request
from graphql import ExecutionResult, GraphQLError, execute, parse, validate

from tether.api.access import SIGNED_IN, guard, visible
from tether.api.jsonbody import decode_body
from tether.api.responses import JsonResponse
from tether.errors import MlflowError, invalid_parameter
from tether.ui.graphql import limits, resolvers
from tether.ui.graphql.schema import schema

log = logging.getLogger("tether.graphql")

router = APIRouter(include_in_schema=False)

# Signed in; the resolvers show only what the caller may read (null fields, filtered searches).
GRAPHQL_ACCESS = SIGNED_IN.listing("experiment", "registered_model")


@router.api_route("/graphql", methods=["GET", "POST"], dependencies=[guard(GRAPHQL_ACCESS)])
async def graphql_endpoint(request: Request) -> JsonResponse:
    payload = await _payload(request)
    query = payload.get("query")
    variables = payload.get("variables")
    operation_name = payload.get("operationName")
    if not isinstance(query, str) or not query.strip():
        raise invalid_parameter("A GraphQL request needs a 'query' string.")
    if variables is not None and not isinstance(variables, dict):
        raise invalid_parameter("'variables' must be a JSON object.")
    if operation_name is not None and not isinstance(operation_name, str):
        raise invalid_parameter("'operationName' must be a string.")
    try:
        document = parse(query)
    except GraphQLError as exc:
        raise invalid_parameter(exc.message) from None
    settings = request.app.state.settings
    try:
        limits.check(document, settings.graphql_max_root_fields, settings.graphql_max_aliases)
    except limits.QueryTooLarge as exc:
        return _answer(None, [str(exc)])
    invalid = validate(schema(), document)
    if invalid:
        return _answer(None, [error.message for error in invalid])
    context = resolvers.Context(request.app.state.services, request.query_params, visible(request))
    result = execute(
        schema(),
        document,
        context_value=context,
        variable_values=variables,
        operation_name=operation_name,
        field_resolver=resolvers.resolve_field,
    )
    if not isinstance(result, ExecutionResult):
        result = await result
    return _answer(result.data, [_message(e) for e in result.errors or ()])


def _answer(data: dict[str, Any] | None, errors: list[str]) -> JsonResponse:
    return JsonResponse({"data": data, "errors": errors or None})


def _message(error: GraphQLError) -> str:
    cause = error.original_error
    if cause is None or isinstance(cause, MlflowError | GraphQLError):
        return error.message
    log.error("GraphQL resolver failed at %s", error.path, exc_info=cause)
    return "Internal error (logged by the server)"


async def _payload(request: Request) -> dict[str, Any]:
    if request.method == "POST":
        content_type = request.headers.get("content-type")
        if content_type is None:
            raise invalid_parameter("Bad Request. Content-Type header is missing.")
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise invalid_parameter(
                "Bad Request. Content-Type must be one of ['application/json']."
            )
    body = await request.body()
    if not body.strip() and request.method == "GET":
        params = request.query_params
        return {
            "query": params.get("query"),
            "variables": _json_param(params.get("variables")),
            "operationName": params.get("operationName"),
        }
    payload = await decode_body(body)  # bounded and strict, as every API body (api.jsonbody)
    if not isinstance(payload, dict):
        raise invalid_parameter(
            "A GraphQL request is one JSON object; batches (arrays) are not supported."
        )
    return payload


def _json_param(value: str | None) -> Any:
    if value is None or not value.strip():
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise invalid_parameter(f"Malformed 'variables' JSON: {exc}") from None
