"""Resolvers of the UI's GraphQL operations, on Tether's services.

The services answer in MLflow's REST JSON (snake_case, defaults left out); `mlflow server`
resolves its schema on protobuf messages, where an absent field reads as its default. So a
field resolves to its value, else to the proto default of its GraphQL type (`""`, `"0"`,
`0.0`, `false`, `[]`, an empty object, an enum's first value -- or, for the enums whose
proto default is an `_UNSPECIFIED` 0, MLflow's error); `apiError` alone is null (MLflow
never fills it: failures are GraphQL errors). Store work runs off the event loop
(`tether.threads.blocking`).

MLflow quirks kept: `mlflowGetMetricHistoryBulkInterval` takes `max_results`, `start_step`
and `end_step` from the HTTP request's query string, never from its input (its handler
reads Flask's `request.args`), so through GraphQL a chart gets up to 2500 points per run;
a metric's NaN value reads as null on runs (MlflowMetricExtension) and is an error on the
bulk history, whose type has no such rule.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLType,
)

from tether.api.deps import ServiceRegistry
from tether.db import workspace_scope
from tether.db.visibility import EVERYTHING, Visibility
from tether.errors import invalid_parameter
from tether.registry.service import RegistryService
from tether.threads import blocking
from tether.tracking.experiments.service import ExperimentService
from tether.tracking.metrics.service import MAX_RESULTS_PER_RUN, MetricService
from tether.tracking.runs.service import RunService

# Proto defaults of the requests (service.proto, model_registry.proto).
SEARCH_RUNS_MAX_RESULTS = 1000
SEARCH_VERSIONS_MAX_RESULTS = 200_000
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


@dataclass
class Context:
    """What one /graphql request's resolvers share."""

    services: ServiceRegistry
    query_params: Mapping[str, str]
    # What the caller may read: as in MLflow's auth app, a field naming something else
    # resolves to null, and searches return only readable experiments and models.
    visible: Visibility = EVERYTHING
    experiments: dict[str, Any] = field(default_factory=dict)  # id -> answer, per request


def snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def _default(gql_type: GraphQLType) -> Any:
    if isinstance(gql_type, GraphQLNonNull):
        gql_type = gql_type.of_type
    if isinstance(gql_type, GraphQLList):
        return []
    if isinstance(gql_type, GraphQLObjectType):
        return {}
    if isinstance(gql_type, GraphQLEnumType):
        first = next(iter(gql_type.values))
        if first.endswith("_UNSPECIFIED"):
            # The proto default is 0, which MLflow's schema (its values count from 1) cannot
            # represent: mlflow server reports exactly this error and answers null.
            raise GraphQLError(f"Enum '{gql_type.name}' cannot represent value: 0")
        return gql_type.values[first].value
    if isinstance(gql_type, GraphQLScalarType):
        return {"String": "", "LongString": 0, "Float": 0.0, "Int": 0, "Boolean": False}.get(
            gql_type.name
        )
    return None


def resolve_field(source: Any, info: GraphQLResolveInfo, **_: Any) -> Any:
    """Every field without its own resolver: the snake_case key of a dict, else its default."""
    if info.field_name == "apiError":
        return None
    value = source.get(snake(info.field_name)) if isinstance(source, Mapping) else None
    if value is None:
        return _default(info.return_type)
    if isinstance(value, str) and value in _NON_FINITE and _is_float(info.return_type):
        return _NON_FINITE[value]
    return value


def _is_float(gql_type: GraphQLType) -> bool:
    if isinstance(gql_type, GraphQLNonNull):
        gql_type = gql_type.of_type
    return isinstance(gql_type, GraphQLScalarType) and gql_type.name == "Float"


def _input(args: dict[str, Any]) -> dict[str, Any]:
    given = args.get("input")
    return given if isinstance(given, dict) else {}


def _context(info: GraphQLResolveInfo) -> Context:
    context: Context = info.context
    return context


# Query / Mutation -------------------------------------------------------------------------


async def get_experiment(_: Any, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any] | None:
    experiment_id = _input(args).get("experimentId") or ""
    context = _context(info)
    if not context.visible.can_read_experiment(experiment_id):
        return None
    return {"experiment": await _experiment(context, experiment_id)}


async def get_run(_: Any, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any] | None:
    given = _input(args)
    run_id = given.get("runId") or given.get("runUuid") or ""
    context = _context(info)
    runs = context.services.get(RunService)
    run = await blocking(runs.get, run_id)
    if not context.visible.can_read_experiment(run["info"]["experiment_id"]):
        return None
    return {"run": run}


async def search_runs(_: Any, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
    given = _input(args)
    max_results = given.get("maxResults")
    context = _context(info)
    runs = context.services.get(RunService)
    found, token = await blocking(
        runs.search,
        readable=context.visible,
        experiment_ids=[e or "" for e in given.get("experimentIds") or []],
        filter_string=given.get("filter") or "",
        run_view_type=given.get("runViewType") or "ACTIVE_ONLY",
        max_results=SEARCH_RUNS_MAX_RESULTS if max_results is None else max_results,
        order_by=[o or "" for o in given.get("orderBy") or []],
        page_token=given.get("pageToken") or None,
    )
    return {"runs": found, "next_page_token": token}


async def metric_history_bulk_interval(
    _: Any, info: GraphQLResolveInfo, **args: Any
) -> dict[str, Any] | None:
    given = _input(args)
    context = _context(info)
    query = context.query_params  # not the input: see the module docstring
    metrics = context.services.get(MetricService)
    run_ids = [r or "" for r in given.get("runIds") or []]
    if context.visible.experiments is not None or workspace_scope.active() is not None:
        runs = context.services.get(RunService)  # refuses another workspace's runs
        for run_id in run_ids:
            run = await blocking(runs.get, run_id)
            if not context.visible.can_read_experiment(run["info"]["experiment_id"]):
                return None
    points = await blocking(
        metrics.bulk_interval,
        run_ids,
        given.get("metricKey") or "",
        _int_param(query, "max_results", MAX_RESULTS_PER_RUN),
        _int_param(query, "start_step", None),
        _int_param(query, "end_step", None),
    )
    return {"metrics": points}


async def search_model_versions(_: Any, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
    given = _input(args)
    max_results = given.get("maxResults")
    context = _context(info)
    registry = context.services.get(RegistryService)
    found, token = await blocking(
        registry.search_versions,
        readable=context.visible,
        filter_string=given.get("filter") or "",
        max_results=SEARCH_VERSIONS_MAX_RESULTS if max_results is None else max_results,
        order_by=[o or "" for o in given.get("orderBy") or []],
        page_token=given.get("pageToken") or None,
    )
    return {"model_versions": found, "next_page_token": token}


def echo(_: Any, __: GraphQLResolveInfo, inputString: str | None = None) -> dict[str, Any]:
    return {"output": inputString}


def unresolved(_: Any, __: GraphQLResolveInfo, **___: Any) -> None:
    """`testMutation`: mlflow server's resolver for it is never found (it is named
    `resolve_test_mutation` for a field graphene looks up as `resolve_testMutation`), so it
    always answers null."""
    return None


# MlflowRunExtension / MlflowMetricExtension -----------------------------------------------


async def run_experiment(run: dict[str, Any], info: GraphQLResolveInfo) -> Any:
    experiment_id = (run.get("info") or {}).get("experiment_id") or ""
    return await _experiment(_context(info), experiment_id)


async def run_model_versions(run: dict[str, Any], info: GraphQLResolveInfo) -> list[Any]:
    run_id = (run.get("info") or {}).get("run_id") or ""
    context = _context(info)
    registry = context.services.get(RegistryService)
    found, _ = await blocking(
        registry.search_versions,
        readable=context.visible,
        filter_string=f"run_id='{run_id}'",
        max_results=SEARCH_VERSIONS_MAX_RESULTS,
        order_by=[],
        page_token=None,
    )
    return found


def metric_value(metric: dict[str, Any], _: GraphQLResolveInfo) -> float | None:
    value = metric.get("value", 0.0)
    if isinstance(value, str):
        value = _NON_FINITE.get(value, math.nan)
    return None if math.isnan(value) else value


async def _experiment(context: Context, experiment_id: str) -> Any:
    """One lookup per experiment and request: a page of runs shares its experiment."""
    if experiment_id not in context.experiments:
        experiments = context.services.get(ExperimentService)
        context.experiments[experiment_id] = await blocking(experiments.get, experiment_id)
    return context.experiments[experiment_id]


def _int_param(query: Mapping[str, str], name: str, default: int | None) -> int | None:
    value = query.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise invalid_parameter(f"invalid literal for int() with base 10: {value!r}") from None
