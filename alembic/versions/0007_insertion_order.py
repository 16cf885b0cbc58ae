"""insertion order of params, tags and latest metrics: an `id` per row

MLflow lists a run's params, tags and metrics, and the tags of an experiment, a registered
model and a model version, in the order they were first written (its rows' order); Tether
listed them by key. Each of these six tables gets an auto-incrementing `id` as its primary
key (the rowid on SQLite, a sequence on PostgreSQL), and the former primary key (owner, key)
becomes a unique constraint, which the upserts' ON CONFLICT clauses name. Existing rows are
numbered in the order Tether showed them so far: by owner, then key.

SQLite cannot change a primary key in place, so each table is rebuilt (copied once, in one
transaction with the rest). PostgreSQL adds the column, numbers the rows and swaps the
constraints in place.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 16:00:00.000000
"""

from __future__ import annotations

from typing import Any, NamedTuple

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


# (column, type, the column it references) of an owner; (column, type, nullable, server
# default) of the columns after the key. Columns are built anew for each table made.
_Owner = tuple[tuple[str, Any, str], ...]
_Values = tuple[tuple[str, Any, bool, str | None], ...]


class _Table(NamedTuple):  # not a dataclass: Alembic loads revisions outside sys.modules
    name: str
    owner: _Owner  # what the row belongs to: a run, an experiment, a model, a version
    values: _Values
    indexes: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def unique(self) -> str:
        return f"uq_{self.name}_key"

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The former primary key: the owner's columns and the key."""
        return (*(c for c, _, _ in self.owner), "key")

    @property
    def key(self) -> str:
        return ", ".join(self.key_columns)

    def columns(self) -> list[sa.Column[Any]]:
        """Every column but `id`: the owner's, the key, the values."""
        return [
            *(sa.Column(name, kind, nullable=False) for name, kind, _ in self.owner),
            sa.Column("key", sa.String(length=250), nullable=False),
            *(
                sa.Column(name, kind, nullable=nullable, server_default=default)
                for name, kind, nullable, default in self.values
            ),
        ]

    def references(self) -> sa.ForeignKeyConstraint:
        return sa.ForeignKeyConstraint(
            [c for c, _, _ in self.owner], [r for _, _, r in self.owner], ondelete="CASCADE"
        )


_RUN: _Owner = (("run_uuid", sa.String(length=32), "runs.run_uuid"),)
_TAG_VALUE: _Values = (("value", sa.Text(), True, None),)
_TABLES = (
    _Table(
        "experiment_tags",
        (("experiment_id", sa.Integer(), "experiments.experiment_id"),),
        _TAG_VALUE,
    ),
    _Table("params", _RUN, (("value", sa.String(length=8000), False, None),)),
    _Table("tags", _RUN, (("value", sa.String(length=8000), True, None),)),
    _Table(
        "latest_metrics",
        _RUN,
        (
            ("value", sa.Double(), False, None),
            ("timestamp", sa.BigInteger(), False, None),
            ("step", sa.BigInteger(), False, None),
            ("is_nan", sa.Boolean(), False, None),
            ("points_version", sa.BigInteger(), False, "0"),
        ),
        indexes=(("ix_latest_metrics_key_value", ("key", "value")),),
    ),
    _Table(
        "registered_model_tags",
        (("registered_model_id", sa.Integer(), "registered_models.id"),),
        _TAG_VALUE,
    ),
    _Table(
        "model_version_tags",
        (
            ("registered_model_id", sa.Integer(), "model_versions.registered_model_id"),
            ("version", sa.Integer(), "model_versions.version"),
        ),
        _TAG_VALUE,
    ),
)


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    for table in _TABLES:
        if _is_sqlite():
            _rebuild_sqlite(table, with_id=True)
        else:
            _add_id_postgres(table)


def downgrade() -> None:
    for table in _TABLES:
        if _is_sqlite():
            _rebuild_sqlite(table, with_id=False)
        else:
            _drop_id_postgres(table)


def _rebuild_sqlite(table: _Table, *, with_id: bool) -> None:
    """Create the table anew beside the old one, copy the rows (numbered by owner and key
    when `with_id`), drop the old one and take its name. Nothing references these tables,
    so dropping one checks no foreign key."""
    new = f"{table.name}_rebuilt"
    columns = table.columns()
    if with_id:
        op.create_table(
            new,
            sa.Column("id", _ID, autoincrement=True, nullable=False),
            *columns,
            table.references(),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint(*table.key_columns, name=table.unique),
        )
    else:
        keys = sa.PrimaryKeyConstraint(*table.key_columns)
        op.create_table(new, *columns, table.references(), keys)
    listed = ", ".join(f'"{c.name}"' for c in columns)
    if with_id:
        op.execute(
            f"INSERT INTO {new} (id, {listed}) SELECT row_number() OVER (ORDER BY {table.key}),"
            f" {listed} FROM {table.name}"
        )
    else:
        op.execute(f"INSERT INTO {new} ({listed}) SELECT {listed} FROM {table.name}")
    for index, _ in table.indexes:
        op.drop_index(index, table_name=table.name)
    op.drop_table(table.name)
    op.rename_table(new, table.name)
    for index, indexed in table.indexes:
        op.create_index(index, table.name, list(indexed))


def _add_id_postgres(table: _Table) -> None:
    """What a BIGSERIAL primary key is: a sequence owned by the column, its default."""
    name, sequence = table.name, f"{table.name}_id_seq"
    matches = " AND ".join(f"{name}.{c} = numbered.{c}" for c in table.key_columns)
    op.add_column(name, sa.Column("id", sa.BigInteger(), nullable=True))
    op.execute(
        f"UPDATE {name} SET id = numbered.n FROM (SELECT {table.key},"
        f" row_number() OVER (ORDER BY {table.key}) AS n FROM {name}) AS numbered"
        f" WHERE {matches}"
    )
    op.execute(f"CREATE SEQUENCE {sequence} OWNED BY {name}.id")
    op.execute(f"SELECT setval('{sequence}', COALESCE(MAX(id), 0) + 1, false) FROM {name}")
    op.execute(
        f"ALTER TABLE {name} ALTER COLUMN id SET DEFAULT nextval('{sequence}'),"
        f" ALTER COLUMN id SET NOT NULL, DROP CONSTRAINT {name}_pkey,"
        f" ADD CONSTRAINT {name}_pkey PRIMARY KEY (id),"
        f" ADD CONSTRAINT {table.unique} UNIQUE ({table.key})"
    )


def _drop_id_postgres(table: _Table) -> None:
    name = table.name
    op.execute(
        f"ALTER TABLE {name} DROP CONSTRAINT {table.unique}, DROP CONSTRAINT {name}_pkey,"
        f" ADD CONSTRAINT {name}_pkey PRIMARY KEY ({table.key})"
    )
    op.drop_column(name, "id")  # its sequence goes with it
