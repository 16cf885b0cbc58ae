"""Which resources a caller may read, as a condition a search adds to its SQL.

The permission store (`tether.auth`) folds the caller's grants and the default permission
into one `Readable` per resource type: either "everything except these ids" or "only these
ids". A search adds `readable.clause(column)` to its WHERE, so paging stays exact (a page is
never short because rows were dropped after the query) and nothing here knows about users.
`None` in a `Visibility` means "everything" (an admin, or authentication off).

With workspaces on, the clauses also keep the search inside the request's workspace
(`workspace_scope`), so every search is scoped in the same place, whoever the caller is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from tether.db import workspace_scope
from tether.db.models import Experiment, RegisteredModel


@dataclass(frozen=True)
class Readable:
    """Readable ids of one resource type: all but `exceptions` when `by_default`, else only
    `exceptions`."""

    by_default: bool
    exceptions: frozenset[str]

    def allows(self, resource_id: str) -> bool:
        return self.by_default != (str(resource_id) in self.exceptions)

    def clause(
        self, column: Any, convert: Callable[[str], Any] | None = None
    ) -> ColumnElement[bool] | None:
        """The WHERE condition on `column` (None: no condition needed). `convert` maps an id
        to the column's type; ids it refuses (ValueError) cannot match any row."""
        values = []
        for resource_id in sorted(self.exceptions):
            try:
                values.append(convert(resource_id) if convert else resource_id)
            except ValueError:
                continue
        if self.by_default:
            return column.not_in(values) if values else None
        return column.in_(values) if values else sa.false()


@dataclass(frozen=True)
class Visibility:
    experiments: Readable | None = None
    registered_models: Readable | None = None
    workspaces: frozenset[str] | None = None  # the workspaces the caller may list

    def experiment_clause(self, column: Any) -> ColumnElement[bool] | None:
        """Readable experiments (by id in `column`), of the request's workspace only."""
        readable = None if self.experiments is None else self.experiments.clause(column, int)
        workspace = workspace_scope.active()
        if workspace is None:
            return readable
        in_workspace = column.in_(
            sa.select(Experiment.experiment_id).where(Experiment.workspace == workspace)
        )
        return in_workspace if readable is None else sa.and_(readable, in_workspace)

    def registered_model_clause(self, column: Any) -> ColumnElement[bool] | None:
        """Readable registered models (by name in `column`, a query over registered_models),
        of the request's workspace only."""
        readable = None if self.registered_models is None else self.registered_models.clause(column)
        workspace = workspace_scope.active()
        if workspace is None:
            return readable
        in_workspace = RegisteredModel.workspace == workspace
        return in_workspace if readable is None else sa.and_(readable, in_workspace)

    def can_read_experiment(self, experiment_id: str) -> bool:
        return self.experiments is None or self.experiments.allows(experiment_id)

    def can_read_registered_model(self, name: str) -> bool:
        return self.registered_models is None or self.registered_models.allows(name)

    def can_list_workspace(self, name: str) -> bool:
        return self.workspaces is None or name in self.workspaces


EVERYTHING = Visibility()


def conditions(clause: ColumnElement[bool] | None) -> list[ColumnElement[bool]]:
    """`clause` as a list to splat into a WHERE (empty when there is no condition)."""
    return [] if clause is None else [clause]
