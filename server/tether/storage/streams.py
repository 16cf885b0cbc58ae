"""Async byte-stream helpers shared by the backends."""

from __future__ import annotations

from collections.abc import AsyncIterator


async def rechunk(chunks: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """Regroup a byte stream into blocks of exactly `size` bytes (the last may be shorter,
    and an empty stream yields nothing). Holds at most one block's worth of input (as views,
    uncopied) plus the block being handed out."""
    parts: list[memoryview] = []
    filled = 0
    async for chunk in chunks:
        view = memoryview(chunk)
        while view:
            take = min(size - filled, len(view))
            parts.append(view[:take])
            filled += take
            view = view[take:]
            if filled == size:
                block = b"".join(parts)
                parts.clear()
                filled = 0
                yield block
    if parts:
        yield b"".join(parts)


async def gather(
    chunks: AsyncIterator[bytes], size: int, max_parts: int
) -> AsyncIterator[tuple[list[bytes], int]]:
    """Group a byte stream into lists of chunks holding at least `size` bytes (or
    `max_parts` chunks; the last group may be smaller), with their total length. Chunks are
    passed on as they came, never copied or split; empty chunks are dropped."""
    parts: list[bytes] = []
    filled = 0
    async for chunk in chunks:
        if not chunk:
            continue
        parts.append(chunk)
        filled += len(chunk)
        if filled >= size or len(parts) >= max_parts:
            yield parts, filled
            parts, filled = [], 0
    if parts:
        yield parts, filled
