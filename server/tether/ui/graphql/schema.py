"""The executable schema: `schema.graphql` with the LongString scalar and the resolvers."""

from __future__ import annotations

import functools
from importlib.resources import files
from typing import Any

from graphql import (
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    IntValueNode,
    ValueNode,
    build_schema,
)

from tether.ui.graphql import resolvers


def _serialize_long(value: Any) -> str:
    return str(value)


def _parse_long(value: Any) -> int:
    return int(value)


def _parse_long_literal(node: ValueNode, _variables: Any = None) -> int | None:
    # As MLflow's LongString: an integer literal, anything else reads as null.
    return int(node.value) if isinstance(node, IntValueNode) else None


_ROOT_RESOLVERS = {
    ("Query", "mlflowGetExperiment"): resolvers.get_experiment,
    ("Query", "mlflowGetRun"): resolvers.get_run,
    ("Query", "mlflowSearchRuns"): resolvers.search_runs,
    ("Query", "mlflowGetMetricHistoryBulkInterval"): resolvers.metric_history_bulk_interval,
    ("Query", "mlflowSearchModelVersions"): resolvers.search_model_versions,
    ("Query", "test"): resolvers.echo,
    ("Mutation", "mlflowSearchRuns"): resolvers.search_runs,
    ("Mutation", "testMutation"): resolvers.unresolved,
    ("MlflowRunExtension", "experiment"): resolvers.run_experiment,
    ("MlflowRunExtension", "modelVersions"): resolvers.run_model_versions,
    ("MlflowMetricExtension", "value"): resolvers.metric_value,
}


@functools.cache
def schema() -> GraphQLSchema:
    """Built once per process (parsing the SDL takes ~20 ms)."""
    source = files("tether.ui.graphql").joinpath("schema.graphql").read_text(encoding="utf-8")
    built = build_schema(source)
    long_string = built.type_map["LongString"]
    assert isinstance(long_string, GraphQLScalarType)
    long_string.serialize = _serialize_long  # type: ignore[method-assign]
    long_string.parse_value = _parse_long  # type: ignore[method-assign]
    long_string.parse_literal = _parse_long_literal  # type: ignore[method-assign,assignment]
    for (type_name, field_name), resolve in _ROOT_RESOLVERS.items():
        owner = built.type_map[type_name]
        assert isinstance(owner, GraphQLObjectType)
        owner.fields[field_name].resolve = resolve
    return built
