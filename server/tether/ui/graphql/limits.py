"""`mlflow server`'s guard against expensive GraphQL documents, checked before validation.

One HTTP request may not smuggle a batch of operations in: at most 10 root fields (an
aliased field counts once per alias) and at most 10 aliases in any one selection set
(`TETHER_GRAPHQL_MAX_ROOT_FIELDS`, `TETHER_GRAPHQL_MAX_ALIASES`); and any document is at
most 10 levels deep with at most 1000 field selections. Fields reached through fragment
spreads and inline fragments count where they are spread (a named fragment once per
selection set; a fragment that spreads itself ends at the depth limit).
"""

from __future__ import annotations

from collections import deque

from graphql.language import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

MAX_DEPTH = 10
MAX_SELECTIONS = 1000


class QueryTooLarge(Exception):
    """The document breaks a limit; the message is what the client is told."""


def _fields_of(
    selection_set: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
) -> tuple[list[FieldNode], int]:
    """The fields one selection set selects (fragments flattened in) and its alias count."""
    fields: list[FieldNode] = []
    aliases = 0
    seen: set[str] = set()
    pending = deque(selection_set.selections)
    while pending:
        node = pending.popleft()
        if isinstance(node, FieldNode):
            fields.append(node)
            aliases += node.alias is not None
        elif isinstance(node, InlineFragmentNode):
            pending.extend(node.selection_set.selections)
        elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
            seen.add(node.name.value)
            fragment = fragments.get(node.name.value)
            if fragment is not None:
                pending.extend(fragment.selection_set.selections)
    return fields, aliases


def check(document: DocumentNode, max_root_fields: int, max_aliases: int) -> None:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    root_fields = most_aliases = selections = 0
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        stack: list[tuple[SelectionSetNode, int]] = [(definition.selection_set, 1)]
        while stack:
            selection_set, depth = stack.pop()
            if depth > MAX_DEPTH:
                raise QueryTooLarge(f"Query exceeds maximum depth of {MAX_DEPTH}")
            fields, aliases = _fields_of(selection_set, fragments)
            for field in fields:
                if depth == 1:
                    root_fields += 1
                if field.selection_set is not None:
                    stack.append((field.selection_set, depth + 1))
                selections += 1
                if selections > MAX_SELECTIONS:
                    raise QueryTooLarge(
                        f"Query exceeds maximum total selections of {MAX_SELECTIONS}"
                    )
            most_aliases = max(most_aliases, aliases)
    if root_fields > max_root_fields:
        raise _too_many("root fields", max_root_fields, root_fields, "MAX_ROOT_FIELDS")
    if most_aliases > max_aliases:
        raise _too_many("aliases", max_aliases, most_aliases, "MAX_ALIASES")


def _too_many(what: str, limit: int, got: int, variable: str) -> QueryTooLarge:
    return QueryTooLarge(
        f"GraphQL queries should have at most {limit} {what}, got {got} {what}. "
        f"To increase the limit, set the TETHER_GRAPHQL_{variable} environment variable."
    )
