"""P0: GET /healthz through Portico's production serving stack, against a bare FastAPI app served alike.

Both are served by `portico.serving` (uvicorn, uvloop, httptools, no access log, one process per core as
the README tells production to run `portico api --workers N`): the ratio is what Portico's own layers
(its middleware: proxy headers, request id and metrics, body limit, CSRF, security headers) cost on the
cheapest route. The same Portico processes then serve P4.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bench import Row
from bench.embedded import EmbeddedStack
from bench.loadgen import Load, run_load
from bench.stack import api_url, free_port, start_api, wait_for_api
from bench.stats import median, ms

PATH = "/healthz"
CONNECTIONS = 50
TARGET = 0.8
START_TIMEOUT = 180  # each of the processes imports all of Portico: on a busy machine, a minute or more


def serving_workers() -> int:
    """One process per core, as production runs it."""
    return os.cpu_count() or 1


@dataclass(frozen=True)
class P0Size:
    seconds: float
    repetitions: int


@dataclass
class P0Result:
    row: Row
    portico_rate: float


@contextlib.asynccontextmanager
async def served(stack: EmbeddedStack, *, bare: bool = False) -> AsyncIterator[str]:
    """The stack's app (or the bare one) in `serving_workers()` processes on a port of its own."""
    settings = stack.settings.model_copy(update={"api_port": free_port()})
    name = f"{stack.name}-{'bare' if bare else 'served'}"
    proc = start_api(settings, stack.log_dir, name, workers=serving_workers(), bare=bare)
    try:
        await wait_for_api(proc, settings, timeout=START_TIMEOUT)
        yield api_url(settings)
    finally:
        await asyncio.to_thread(proc.stop)


async def run(stack: EmbeddedStack, portico_url: str, size: P0Size, work_dir: Path) -> P0Result:
    portico: list[Load] = []
    bare: list[Load] = []
    async with served(stack, bare=True) as bare_url:
        for _ in range(size.repetitions):  # interleaved, so drift hits both alike
            bare.append(await asyncio.to_thread(_load, bare_url, size, work_dir))
            portico.append(await asyncio.to_thread(_load, portico_url, size, work_dir))
    return _result(portico, bare, size)


def _load(base_url: str, size: P0Size, work_dir: Path) -> Load:
    return run_load(base_url + PATH, {}, CONNECTIONS, size.seconds, work_dir)


def _result(portico: list[Load], bare: list[Load], size: P0Size) -> P0Result:
    rate, base = median([x.rate for x in portico]), median([x.rate for x in bare])
    errors = sum(x.errors for x in portico + bare)
    row = Row(
        key="P0",
        what=f"GET {PATH} through Portico's serving stack, {CONNECTIONS} connections",
        measured=f"{rate:,.0f} req/s, p95 {ms(median([x.p95 for x in portico]))}",
        baseline=f"{base:,.0f} req/s, p95 {ms(median([x.p95 for x in bare]))} bare FastAPI app",
        ratio=f"{rate / base:.2f}x (req/s)",
        target=f"≥ {TARGET}x baseline",
        passed=rate / base >= TARGET and errors == 0,
        notes=[
            f"Both served by portico/serving.py as `portico api --workers {serving_workers()}` serves "
            f"(uvicorn, uvloop, httptools, no access log); {portico[0].tool}, {size.seconds:.0f} s per run, "
            f"median of {size.repetitions}, interleaved; {errors} errors.",
        ],
    )
    return P0Result(row, rate)
