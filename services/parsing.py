"""CPU-heavy checks of what people send, off the event loop and with a time limit.

- The PDF object walk (`upload_checks.pdf_problem`, `pdfsign.check_pdf_for_sending`) and the signature
  PNG's re-encoding run in a small pool of worker *processes* (`in_process`). They are pure Python: in a
  thread they would still hold the interpreter lock most of the time, and every other request of the
  process (health checks included) would crawl while one hostile file is walked. Past the time limit the
  parse is stopped by ending its process (a parse running beside it in the same pool is answered "try
  again"; the pool starts afresh).
- An import CSV's checks read the database as well: they run in a worker thread (`in_thread`), with the
  same time limit on the wait.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ParamSpec, TypeVar

import anyio
from anyio import to_thread

from services import Refusal, ServiceError

P = ParamSpec("P")
T = TypeVar("T")

TIME_LIMIT = 20.0
"""Seconds a single file's checks may take: a real return's PDF takes well under one."""
PROCESSES = 2
"""Worker processes for parsing, per API process."""

_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def too_slow(what: str) -> ServiceError:
    return ServiceError(
        Refusal.INVALID,
        f"{what} took too long to check. Re-export or print it to a new PDF (or image) and try again.",
    )


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # forkserver: a clean process to fork from, not this one with its threads (Temporal, the pool).
            context = multiprocessing.get_context("forkserver")
            _pool = ProcessPoolExecutor(PROCESSES, mp_context=context, max_tasks_per_child=200)
        return _pool


def _discard(pool: ProcessPoolExecutor) -> None:
    """Stops a runaway parse: its processes end, and the next parse gets a new pool."""
    global _pool
    with _pool_lock:
        if _pool is pool:
            _pool = None
    processes: dict[int, Any] = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def _run(check: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, Any]:
    """In the worker process: a `ServiceError` comes back as data (it does not pickle by itself)."""
    try:
        return "ok", check(*args)
    except ServiceError as exc:
        return "refused", (exc.kind, exc.message, exc.field)


async def in_process(what: str, check: Callable[..., T], *args: Any) -> T:
    """`check(*args)` (a module-level function of bytes and plain values) in a worker process; a refusal
    naming `what` when it takes longer than `TIME_LIMIT`. What `check` raises reaches the caller."""
    pool = _executor()
    try:
        future = asyncio.get_running_loop().run_in_executor(pool, _run, check, args)
        outcome, value = await asyncio.wait_for(future, TIME_LIMIT)
    except TimeoutError as exc:
        _discard(pool)
        raise too_slow(what) from exc
    except BrokenProcessPool as exc:  # a neighbour's runaway parse ended the pool under this one
        _discard(pool)
        raise ServiceError(Refusal.UNAVAILABLE, f"{what} could not be checked just now. Try again.") from exc
    if outcome == "refused":
        kind, message, field = value
        raise ServiceError(kind, message, field)
    result: T = value
    return result


async def in_thread(what: str, check: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`check(*args, **kwargs)` in a worker thread (it may use the database); a refusal naming `what`
    past `TIME_LIMIT` (the thread can't be stopped: it finishes on its own, its answer dropped)."""
    try:
        with anyio.fail_after(TIME_LIMIT):
            return await to_thread.run_sync(functools.partial(check, *args, **kwargs), abandon_on_cancel=True)
    except TimeoutError as exc:
        raise too_slow(what) from exc
