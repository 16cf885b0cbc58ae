"""Alembic environment: `tether db upgrade` hands us an open connection in `attributes`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from tether.db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    # Plain `alembic` CLI use (e.g. writing a new revision): a URL from -x url=... or the ini.
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if url is None:
        raise SystemExit("pass -x url=<database url>")
    with create_engine(url).connect() as conn:
        _run_on(conn)
        conn.commit()


def _run_on(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs batch mode for ALTER TABLE.
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
