"""Running a trace search: the SQL part (`search`), then the content clauses over the
candidate traces' spans, then the page.

Pages are MLflow's: an offset in the ordered results, as a page token in MLflow's format.
Without content clauses the page is one query (OFFSET / LIMIT). With them, candidates are read
in order, a chunk at a time, and each is kept when one of its spans (matching the clauses on
the span index) also matches the content clauses; that costs a read of those spans from the
artifact store, so such searches are slower than the others (README, "Traces").
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from contextlib import aclosing
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Dialect

from tether.db.engine import Database
from tether.db.models import TraceInfo
from tether.db.raw import Compiled
from tether.errors import API_DOCS_HINT, invalid_parameter
from tether.search.experiment_ids import parse_experiment_id
from tether.search.page_token import create_page_token, parse_page_token
from tether.search.sql import dialect_name
from tether.threads import blocking
from tether.tracking import validation
from tether.tracking.traces import filters, repository, search
from tether.tracking.traces.reads import TraceReader
from tether.tracking.traces.search import ContentCheck

MAX_RESULTS_PER_PAGE = 500  # what the endpoints accept (MLflow's handlers)
_MAX_RESULTS = 50_000  # the store's own bound
_CANDIDATE_CHUNK = 200


def check_page_size(max_results: int) -> None:
    """MLflow's handler check: at most 500 traces a page."""
    if max_results > MAX_RESULTS_PER_PAGE:
        raise invalid_parameter(
            validation.invalid_value("max_results", max_results, " Hint: Value was of type 'int'.")
            + API_DOCS_HINT
        )


def _check_max_results(max_results: int) -> None:
    if max_results < 1:
        raise invalid_parameter(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be "
            "a positive integer"
        )
    if max_results > _MAX_RESULTS:
        raise invalid_parameter(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be at "
            f"most {_MAX_RESULTS}"
        )


def experiment_scope(locations: Sequence[str]) -> list[int]:
    invalid = [loc for loc in locations if "." in loc]
    if invalid:
        shown = ", ".join(invalid)
        if len(shown) > 20:
            shown = shown[:20] + "..."
        raise invalid_parameter(
            f"Locations must be a list of experiment IDs. Found invalid experiment IDs: {shown}."
        )
    return [parse_experiment_id(loc) for loc in locations]


def _statement(
    experiment_ids: Sequence[int],
    clauses: list[filters.Clause],
    order: Any,
    dialect: str,
    columns: Any = TraceInfo.request_id,
) -> tuple[Any, ContentCheck | None]:
    built = search.build(clauses, dialect, list(experiment_ids))
    stmt = (
        sa.select(columns)
        .where(TraceInfo.experiment_id.in_(list(experiment_ids)), *built.conditions)
        .order_by(*search.order_by(order))
    )
    return stmt, built.content


_OFFSET, _LIMIT = "_tether_offset", "_tether_limit"


# Keyed by the request's own strings (a filter's parse and SQL depend on nothing else), so a
# repeated search (the Traces tab's, a client paging) skips parsing, building and
# SQLAlchemy's execution path: ~0.25 ms of a 100-trace page's ~2.3 ms in process. The SQL is
# what is cached, never an answer: every request runs it. Errors are not cached (raised anew).
@functools.lru_cache(maxsize=256)
def _compiled_page(
    dialect: Dialect, experiment_ids: tuple[int, ...], filter_string: str, order_by: tuple[str, ...]
) -> Compiled | None:
    """The page statement of a search the SQL decides alone, with its offset and limit as
    parameters; None when it has content clauses or needs SQLAlchemy's type processing."""
    order = filters.parse_order_by(list(order_by))
    clauses = filters.parse_filter(filter_string)
    stmt, content = _statement(experiment_ids, clauses, order, dialect.name, TraceInfo.__table__)
    if content is not None:
        return None
    compiled = Compiled(
        stmt.offset(sa.bindparam(_OFFSET, 0, type_=sa.Integer)).limit(
            sa.bindparam(_LIMIT, 0, type_=sa.Integer)
        ),
        dialect,
    )
    return compiled if compiled.usable else None


class TraceSearch:
    def __init__(self, db: Database, reader: TraceReader) -> None:
        self.db = db
        self.reader = reader

    async def search(
        self,
        experiment_ids: Sequence[int],
        filter_string: str,
        max_results: int,
        order_by: Sequence[str],
        page_token: str | None,
    ) -> tuple[list[repository.TraceRead], str | None]:
        _check_max_results(max_results)
        compiled = _compiled_page(
            self.db.engine.dialect, tuple(experiment_ids), filter_string, tuple(order_by)
        )
        if compiled is not None:
            offset = parse_page_token(page_token)
            reads = await blocking(self._compiled_page, compiled, offset, max_results)
            token = create_page_token(offset + max_results) if len(reads) == max_results else None
            return reads, token
        order = filters.parse_order_by(list(order_by))
        clauses = filters.parse_filter(filter_string)
        offset = parse_page_token(page_token)
        reads, content = await blocking(
            self._page, experiment_ids, clauses, order, offset, max_results
        )
        if content is not None:
            ids = await self._filter_content(
                experiment_ids, clauses, order, offset, max_results, content
            )
            reads = await blocking(self._load, ids)
        token = create_page_token(offset + max_results) if len(reads) == max_results else None
        return reads, token

    def _compiled_page(
        self, compiled: Compiled, offset: int, max_results: int
    ) -> list[repository.TraceRead]:
        """The page of a search whose statement is compiled (`_compiled_page`), then its
        children, in one read transaction."""
        with self.db.read() as session:
            found = compiled.all(session, {_OFFSET: offset, _LIMIT: max_results})
            rows = {r.request_id: r for r in map(repository.InfoRow._make, found)}
            return repository.with_children(session, list(rows.values()))

    def _page(
        self,
        experiment_ids: Sequence[int],
        clauses: list[filters.Clause],
        order: list[filters.OrderClause],
        offset: int,
        max_results: int,
    ) -> tuple[list[repository.TraceRead], ContentCheck | None]:
        """The page, when the SQL decides it alone: its rows are read by the ordered query
        itself (no second lookup by id), then their children."""
        with self.db.read() as session:
            stmt, content = _statement(
                experiment_ids, clauses, order, dialect_name(session), TraceInfo.__table__
            )
            if content is not None:
                return [], content
            rows = {
                r.request_id: r
                for r in repository.info_rows(session, stmt.offset(offset).limit(max_results))
            }
            return repository.with_children(session, list(rows.values())), None

    async def _filter_content(
        self,
        experiment_ids: Sequence[int],
        clauses: list[filters.Clause],
        order: list[filters.OrderClause],
        offset: int,
        max_results: int,
        content: ContentCheck,
    ) -> list[str]:
        skipped, start = 0, 0
        kept: list[str] = []
        while len(kept) < max_results:
            chunk = await blocking(
                self._chunk, experiment_ids, clauses, order, start, _CANDIDATE_CHUNK
            )
            for trace_id, spans_path, refs in chunk:
                if not await self._any_span_matches(spans_path, refs, content):
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                kept.append(trace_id)
                if len(kept) == max_results:
                    break
            if len(chunk) < _CANDIDATE_CHUNK:
                break
            start += _CANDIDATE_CHUNK
        return kept

    def _chunk(
        self,
        experiment_ids: Sequence[int],
        clauses: list[filters.Clause],
        order: list[filters.OrderClause],
        start: int,
        size: int,
    ) -> list[tuple[str, str | None, list[Any]]]:
        with self.db.read() as session:
            stmt, content = _statement(experiment_ids, clauses, order, dialect_name(session))
            assert content is not None
            ids = list(session.scalars(stmt.offset(start).limit(size)))
            paths = dict(
                session.execute(
                    sa.select(TraceInfo.request_id, TraceInfo.spans_path).where(
                        TraceInfo.request_id.in_(ids)
                    )
                ).all()
            )
            return [
                (t, paths.get(t), repository.span_refs(session, t, content.conditions)) for t in ids
            ]

    async def _any_span_matches(
        self, spans_path: str | None, refs: list[Any], content: ContentCheck
    ) -> bool:
        async with aclosing(self.reader.matching_spans(spans_path, refs)) as texts:
            async for text in texts:
                if content.matches(text):
                    return True
        return False

    def _load(self, ids: list[str]) -> list[repository.TraceRead]:
        with self.db.read() as session:
            return repository.load(session, ids)
