"""Reading span data back, streamed: `traces/get`, `traces/batchGet` and `get-trace-artifact`.

The index says, in the order MLflow answers (root first, then by start time), where each span
of a trace is; `SpanStore.lines` fetches them with bounded memory and the answer is written
span by span, so no trace is ever held whole. A trace whose spans were uploaded by the client
as `traces.json` (MLflow's artifact mode: no `mlflow.trace.spansLocation` tag) is served from
that file, also streamed.

As in MLflow, a trace with fewer spans stored than its `mlflow.trace.sizeStats` metadata
announces is not complete: `traces/get` refuses it unless `allow_partial`, `batchGet` leaves
it out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass

import orjson

from tether.db.engine import Database
from tether.errors import MlflowError, not_found
from tether.search.experiment_ids import parse_experiment_id
from tether.storage.base import ArtifactBackend
from tether.storage.locations import resolve
from tether.threads import blocking
from tether.tracking.traces import analytics, codec, repository, serialize
from tether.tracking.traces.service import (
    ARTIFACT_LOCATION_TAG,
    SPANS_LOCATION_TAG,
    TRACKING_STORE,
)
from tether.tracking.traces.spans import SpanRef, SpanStore

TRACE_DATA_FILE = "traces.json"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TraceSpans:
    """A trace's info (already serialized) and where its spans are."""

    trace_id: str
    info: bytes
    spans_path: str | None
    refs: list[SpanRef]
    in_tracking_store: bool
    complete: bool
    artifact_location: str | None


class TraceReader:
    def __init__(self, db: Database, backend: ArtifactBackend, store: SpanStore) -> None:
        self.db = db
        self.backend = backend
        self.store = store

    def _locate(
        self, trace_ids: Sequence[str], experiment_ids: Sequence[int] | None = None
    ) -> list[TraceSpans]:
        with self.db.read() as session:
            reads = repository.load(session, trace_ids, experiment_ids)
            out = []
            for read in reads:
                trace_id = read.row.request_id
                in_store = read.tags.get(SPANS_LOCATION_TAG) == TRACKING_STORE
                refs = repository.span_refs(session, trace_id) if in_store else []
                info = serialize.trace_info(read.row, read.tags, read.metadata, read.assessments)
                out.append(
                    TraceSpans(
                        trace_id=trace_id,
                        info=orjson.dumps(info),
                        spans_path=read.row.spans_path,
                        refs=refs,
                        in_tracking_store=in_store,
                        complete=_complete(read.metadata, len(refs)),
                        artifact_location=read.tags.get(ARTIFACT_LOCATION_TAG),
                    )
                )
        return out

    async def get_trace(self, trace_id: str, allow_partial: bool) -> AsyncIterator[bytes]:
        """The `GetTrace` answer's body, in pieces. Checks happen before the first piece."""
        found = await blocking(self._locate, [trace_id])
        if not found:
            raise not_found(f"Trace with ID {trace_id} is not found.")
        trace = found[0]
        if not trace.in_tracking_store:
            raise MlflowError(
                f"Trace data of trace {trace_id} is not stored in the tracking store: its spans "
                f"are in {TRACE_DATA_FILE} in its artifact location (read them with "
                "get-trace-artifact).",
                "INVALID_STATE",
            )
        if not allow_partial and not trace.complete:
            raise not_found(
                f"Trace with ID {trace_id} is not fully exported yet, please try again later."
            )
        return self._trace_body(trace, prefix=b'{"trace":', suffix=b"}")

    async def _trace_body(
        self, trace: TraceSpans, *, prefix: bytes = b"", suffix: bytes = b""
    ) -> AsyncIterator[bytes]:
        yield prefix + b'{"trace_info":' + trace.info + b',"spans":['
        first = True
        async for line in self._lines(trace):
            span = codec.otlp_json(orjson.loads(line))
            yield (b"" if first else b",") + orjson.dumps(span)
            first = False
        yield b"]}" + suffix

    def _lines(self, trace: TraceSpans) -> AsyncIterator[bytes]:
        return self.store.lines(trace.spans_path or "", trace.refs)

    async def batch_get(
        self, trace_ids: Sequence[str], experiment_ids: Sequence[str]
    ) -> AsyncIterator[bytes]:
        scope = [parse_experiment_id(e) for e in experiment_ids] if experiment_ids else None
        found = await blocking(self._locate, trace_ids, scope)
        for trace in found:
            if not trace.in_tracking_store:
                raise MlflowError(
                    f"Trace data of trace {trace.trace_id} is not stored in the tracking store: "
                    f"its spans are in {TRACE_DATA_FILE} in its artifact location.",
                    "INVALID_STATE",
                )
        complete = [t for t in found if t.complete and t.refs]
        return self._batch_body(complete)

    async def _batch_body(self, traces: list[TraceSpans]) -> AsyncIterator[bytes]:
        if not traces:
            yield b"{}"
            return
        yield b'{"traces":['
        for index, trace in enumerate(traces):
            async for piece in self._trace_body(trace, prefix=b"," if index else b""):
                yield piece
        yield b"]}"

    async def trace_data(self, trace_id: str) -> tuple[int | None, AsyncIterator[bytes]]:
        """(size if known, body) of the trace's `traces.json`: `{"spans": [...]}`."""
        found = await blocking(self._locate, [trace_id])
        if not found:
            raise not_found(f"Trace with ID '{trace_id}' not found.")
        trace = found[0]
        if trace.in_tracking_store:
            return None, self._data_body(trace)
        if not trace.artifact_location:
            raise not_found(f"Trace data not found for trace '{trace_id}'")
        path = resolve(self.backend, trace.artifact_location, TRACE_DATA_FILE)
        size, chunks = await self.backend.open_read(path)
        return size, chunks

    async def _data_body(self, trace: TraceSpans) -> AsyncIterator[bytes]:
        yield b'{"spans":['
        first = True
        async for line in self._lines(trace):
            yield line if first else b"," + line
            first = False
        yield b"]}"

    async def attachment(self, trace_id: str, path: str) -> tuple[int, AsyncIterator[bytes]]:
        found = await blocking(self._locate, [trace_id])
        if not found:
            raise not_found(f"Trace with ID '{trace_id}' not found.")
        location = found[0].artifact_location
        if not location:
            raise not_found(f"Attachment '{path}' not found for trace '{trace_id}'")
        return await self.backend.open_read(resolve(self.backend, location, f"attachments/{path}"))

    async def matching_spans(
        self, spans_path: str | None, refs: list[SpanRef]
    ) -> AsyncGenerator[str, None]:
        """The content lines of `refs` as text (for `trace.text` and span attribute filters)."""
        async with aclosing(self.store.lines(spans_path or "", refs)) as lines:
            async for line in lines:
                yield line.decode("utf-8", errors="replace")

    async def delete_files(self, span_dirs: Sequence[str], artifact_uris: Sequence[str]) -> None:
        """Delete deleted traces' files (after their rows went): best effort, logged."""
        paths = list(span_dirs)
        for uri in artifact_uris:
            try:
                paths.append(resolve(self.backend, uri))
            except MlflowError:
                continue  # outside this server's store: not ours to delete
        for path in paths:
            try:
                await self.backend.delete(path)
            except Exception:
                log.warning(
                    "could not delete the files of a deleted trace at %s", path, exc_info=True
                )


def _complete(metadata: dict[str, str | None], stored: int) -> bool:
    stats = metadata.get(analytics.SIZE_STATS_KEY)
    if not stats:
        return True
    try:
        expected = int(json.loads(stats).get("num_spans", 0))
    except (ValueError, TypeError, AttributeError):
        return True
    return stored >= expected
