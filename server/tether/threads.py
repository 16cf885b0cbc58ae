"""Run blocking store work off the event loop.

On a dedicated thread pool through asyncio's executor hand-off rather than Starlette's
`run_in_threadpool` (anyio's worker threads and capacity limiter): the same bounded pool of
threads, at a fraction of the event loop's time per call (bench/RESULTS.md). The caller's
context (the request id of its log lines) goes with the call, as with Starlette's.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# As many threads as Starlette's default limiter allows (anyio: 40 tokens).
MAX_THREADS = 40
_pool = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="tether-store")


async def blocking(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    call = functools.partial(func, *args, **kwargs)
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_pool, context.run, call)
