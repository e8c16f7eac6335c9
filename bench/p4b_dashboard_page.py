"""P4b: the preparer's dashboard page (HTML: counts, table, pager) at 100,000 engagements, 20 concurrent
preparers, on SQLite and PostgreSQL.

Runs on P3's database once it holds all its rows (signers with shared last names over three tax years, so
the Returning badge has earlier returns to find), served as production serves it (`portico api --workers
N`, bench/p0_serving.py). wrk walks P3's stage and page variants in turn, 20 connections with one
preparer's session.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from bench import Row, journey
from bench.loadgen import Load, run_load
from bench.p0_serving import serving_workers
from bench.stack import api_url, free_port, start_api, wait_for_api
from bench.stats import median, ms
from core.config import Settings

CONNECTIONS = 20
P95_LIMIT = 0.050
START_TIMEOUT = 180  # each of the processes imports all of Portico: on a busy machine, a minute or more


@dataclass(frozen=True)
class P4bSize:
    seconds: float
    repetitions: int


async def run(settings: Settings, root: Path, kind: str, rows: int, size: P4bSize, paths: list[str]) -> Row:
    settings = settings.model_copy(update={"api_port": free_port()})
    api = start_api(settings, root / "logs", name=f"p4b-{kind.lower()}", workers=serving_workers())
    try:
        await wait_for_api(api, settings, timeout=START_TIMEOUT)
        base = api_url(settings)
        async with journey.browser(base) as http:
            await journey.login_preparer(http)
            cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
            for path in paths:  # every variant answers the page (a warm-up pass, as P3's)
                page = await http.get(path)
                if page.status_code != 200 or "<table" not in page.text:
                    raise RuntimeError(f"{path} answered {page.status_code}: {page.text[:300]}")
        headers = {"Cookie": cookie}
        loads: list[Load] = []
        for _ in range(size.repetitions):
            loads.append(
                await asyncio.to_thread(
                    run_load, base + paths[0], headers, CONNECTIONS, size.seconds, root, paths
                )
            )
    finally:
        await asyncio.to_thread(api.stop)
    return _row(kind, rows, loads, size, len(paths))


def _row(kind: str, rows: int, loads: list[Load], size: P4bSize, variants: int) -> Row:
    p95 = median([x.p95 for x in loads])
    errors = sum(x.errors for x in loads)
    return Row(
        key="P4b",
        what=f"preparer dashboard page (HTML), {rows:,} engagements, {CONNECTIONS} concurrent preparers, "
        f"{kind}",
        measured=f"p95 {ms(p95)}, {median([x.rate for x in loads]):,.0f} req/s",
        baseline="—",
        ratio="—",
        target=f"p95 < {P95_LIMIT * 1000:.0f} ms",
        passed=p95 < P95_LIMIT and errors == 0,
        notes=[
            f"{kind}: GET /preparer?stage=…&page=… ({variants} variants in turn, 25 rows a page), "
            f"{serving_workers()} API processes; {loads[0].tool}, {size.seconds:.0f} s per run, median of "
            f"{size.repetitions}; {errors} errors; p50 {ms(median([x.p50 for x in loads]))}.",
        ],
    )


def failed(kind: str, error: Exception) -> Row:
    """The row of a run that broke (the traceback is printed): P3's row on the same data still stands."""
    return skipped(kind, f"failed: {error!r}")


def skipped(kind: str, why: str) -> Row:
    return Row(
        "P4b",
        f"preparer dashboard page, {kind}",
        "—",
        "—",
        "—",
        f"p95 < {P95_LIMIT * 1000:.0f} ms",
        None,
        [f"{kind}: not measured: {why}."],
    )
