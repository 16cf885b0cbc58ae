"""Fixtures for the search tests: our schema on a fresh SQLite file or PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from search.searchdb import DB_KINDS, make_engine


@pytest.fixture(scope="module", params=DB_KINDS)
def db_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture(scope="module")
def engine(
    db_kind: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """Our schema, created with `Base.metadata.create_all`, on the module's backend."""
    factory = request.getfixturevalue("new_postgres_database") if db_kind == "postgres" else None
    eng = make_engine(db_kind, tmp_path_factory.mktemp("search"), factory)
    try:
        yield eng
    finally:
        eng.dispose()
