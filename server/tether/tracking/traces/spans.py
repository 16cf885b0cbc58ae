"""Span content: segments written once, read back in any order with bounded memory.

Spans received over OTLP are kept as segments: one stored span dict per line (`codec`), sorted
root first then by start time. One OTLP request's spans of one trace that fit in
`inline_bytes` become one *inline* segment (name prefixed `db-`), a row of
`trace_span_segments` inserted by the same transaction that indexes the spans: no file, no
extra fsync, as durable as the commit that acknowledges the request (measured: the staged,
fsynced, renamed file and the directory fsync were ~14 ms of a ~17 ms trace). Larger batches
go to Tether's artifact store (local or Azure Blob), under the trace's own directory next to
the `artifacts/` directory MLflow's clients write `traces.json` and attachments to:

    <experiment location>/traces/<trace id>/spans/<segment>.jsonl

cut into segments of about `segment_bytes` (never appended to: Azure block blobs and local
files are both written whole, atomically).
The database indexes every span (`trace_spans`: its segment and line), so a read asks for the
spans in the order MLflow answers them and this module fetches their lines: segments (files or
rows) are loaded whole (they are small) into a cache bounded by `cache_bytes`, and a segment
leaves the cache as soon as its last requested line is handed out. A trace of any size is read
with memory bounded by the cache, never loaded whole; the index rows of one trace (~100 bytes
per span) are the only per-span state held.

A segment file is written before the transaction that indexes it commits, so an index row
never points to a missing segment; a segment whose transaction failed is deleted again (an
inline one goes with the rolled-back transaction), and deleting a trace removes its whole
directory and its rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter, OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select

from tether.clock import now_ms
from tether.db.engine import Database
from tether.db.models import TraceSpanSegment
from tether.storage.base import ArtifactBackend
from tether.threads import blocking

SEGMENT_SUFFIX = ".jsonl"
INLINE_PREFIX = "db-"


@dataclass(frozen=True)
class Placement:
    """Where one span's line went."""

    segment: str
    line: int


@dataclass(frozen=True)
class InlineSegment:
    """A segment kept in the database: the writer inserts it with the index rows."""

    name: str
    data: bytes


@dataclass
class Written:
    """Where one batch's lines went: files already in the artifact store (`files`, to discard
    if the indexing transaction fails) and segments the transaction must insert (`inline`)."""

    placements: list[Placement]
    files: list[str]
    inline: list[InlineSegment]


@dataclass(frozen=True)
class SpanRef:
    """An index row, as a read asks for it."""

    segment: str
    line: int
    size: int


def segment_path(spans_path: str, segment: str) -> str:
    return f"{spans_path}/{segment}{SEGMENT_SUFFIX}"


def _new_segment_name() -> str:
    # Sortable by creation (listing a directory shows them in arrival order), unique.
    return f"{now_ms():013d}-{uuid.uuid4().hex[:16]}"


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


class SpanStore:
    def __init__(
        self,
        backend: ArtifactBackend,
        db: Database,
        *,
        segment_bytes: int = 256 * 1024,
        cache_bytes: int = 8 * 1024 * 1024,
        inline_bytes: int = 64 * 1024,
    ) -> None:
        self.backend = backend
        self.db = db
        self.segment_bytes = segment_bytes
        self.cache_bytes = cache_bytes
        self.inline_bytes = inline_bytes

    def fits_inline(self, lines: Sequence[bytes]) -> bool:
        """Whether `write` keeps these lines in the database (no file, no `spans_path`)."""
        return sum(len(line) + 1 for line in lines) <= self.inline_bytes

    def inline(self, lines: Sequence[bytes]) -> Written:
        """`lines` as one inline segment, which the caller's transaction inserts."""
        name = INLINE_PREFIX + _new_segment_name()
        data = b"\n".join(lines) + b"\n"
        return Written(
            [Placement(name, i) for i in range(len(lines))], [], [InlineSegment(name, data)]
        )

    async def write(self, spans_path: str, lines: Sequence[bytes]) -> Written:
        """Store `lines` (in their order) as new segments; where each one went. A batch that
        fits in `inline_bytes` is only prepared: the caller's transaction inserts it."""
        if self.fits_inline(lines):
            return self.inline(lines)
        placements = await self._write_files(spans_path, lines)
        return Written(placements, list(dict.fromkeys(p.segment for p in placements)), [])

    async def _write_files(self, spans_path: str, lines: Sequence[bytes]) -> list[Placement]:
        placements: list[Placement] = []
        written: list[str] = []
        try:
            for batch in self._batches(lines):
                name = _new_segment_name()
                await self.backend.write(
                    segment_path(spans_path, name), _one_chunk(b"\n".join(batch) + b"\n")
                )
                written.append(name)
                placements.extend(Placement(name, i) for i in range(len(batch)))
        except BaseException:
            await self.discard(spans_path, written)
            raise
        return placements

    def _batches(self, lines: Sequence[bytes]) -> Iterable[list[bytes]]:
        batch: list[bytes] = []
        size = 0
        for line in lines:
            if batch and size + len(line) + 1 > self.segment_bytes:
                yield batch
                batch, size = [], 0
            batch.append(line)
            size += len(line) + 1
        if batch:
            yield batch

    async def discard(self, spans_path: str, segments: Iterable[str]) -> None:
        """Delete segment files no index row refers to (their transaction failed)."""
        for name in segments:
            if name.startswith(INLINE_PREFIX):
                continue  # went with the transaction
            # Best effort: the trace's directory goes when the trace does.
            with contextlib.suppress(Exception):
                await self.backend.delete(segment_path(spans_path, name))

    async def lines(self, spans_path: str, refs: Sequence[SpanRef]) -> AsyncGenerator[bytes, None]:
        """The lines `refs` point to, in the order of `refs`."""
        remaining = Counter(ref.segment for ref in refs)
        cache: OrderedDict[str, list[bytes | None]] = OrderedDict()
        cached = 0
        for ref in refs:
            lines = cache.get(ref.segment)
            if lines is None:
                lines = await self._load(spans_path, ref.segment)
                cache[ref.segment] = lines
                cached += sum(len(x) for x in lines if x is not None)
            else:
                cache.move_to_end(ref.segment)
            line = lines[ref.line] if ref.line < len(lines) else None
            if line is None:
                raise LookupError(f"span line {ref.line} of segment {ref.segment} is missing")
            lines[ref.line] = None
            cached -= len(line)
            remaining[ref.segment] -= 1
            if remaining[ref.segment] == 0:
                dropped = cache.pop(ref.segment)
                cached -= sum(len(x) for x in dropped if x is not None)
            while cached > self.cache_bytes and len(cache) > 1:
                _, evicted = cache.popitem(last=False)  # read again if asked for again
                cached -= sum(len(x) for x in evicted if x is not None)
            yield line
            await asyncio.sleep(0)  # a long read never holds the event loop

    async def _load(self, spans_path: str, segment: str) -> list[bytes | None]:
        if segment.startswith(INLINE_PREFIX):
            data = await blocking(self._read_inline, segment)
            if data is None:
                raise LookupError(f"span segment {segment} is missing")
            return list(data.rstrip(b"\n").split(b"\n"))
        _, chunks = await self.backend.open_read(segment_path(spans_path, segment))
        data = b"".join([chunk async for chunk in chunks])
        return list(data.rstrip(b"\n").split(b"\n"))

    def _read_inline(self, segment: str) -> bytes | None:
        with self.db.read() as session:
            return session.scalar(
                select(TraceSpanSegment.data).where(TraceSpanSegment.segment == segment)
            )

    async def delete_tree(self, path: str) -> None:
        await self.backend.delete(path)
