"""P4: the taxpayer's home page under 50 concurrent clients, against a trivial endpoint of the same server.

The load generator runs in its own process on loopback (wrk, or bench.loadgen without it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import Row
from bench.embedded import EmbeddedStack
from bench.loadgen import Load, run_load
from bench.stats import median, ms

HOME_PAGE = "/portal"
FALLBACK = "/api/taxpayer/me"
TRIVIAL = "/healthz"
CONNECTIONS = 50
RATE_TARGET = 1000.0
P95_LIMIT = 0.030


@dataclass(frozen=True)
class P4Size:
    seconds: float
    repetitions: int


async def pick_page(stack: EmbeddedStack, cookie: str) -> tuple[str, str]:
    """The portal home page if it answers this taxpayer with HTML, else the JSON it is built from."""
    async with httpx.AsyncClient(base_url=stack.base_url, headers={"cookie": cookie}) as http:
        home = await http.get(HOME_PAGE)
        if home.status_code == 200 and home.headers.get("content-type", "").startswith("text/html"):
            return HOME_PAGE, "the portal home page (HTML)"
        me = await http.get(FALLBACK)
        if me.status_code != 200:
            raise RuntimeError(f"{FALLBACK} answered {me.status_code}: {me.text[:200]}")
        why = f"{HOME_PAGE} answered {home.status_code}"
        return FALLBACK, f"{FALLBACK}, the JSON behind the home page ({why}: the page is not in yet)"


async def run(stack: EmbeddedStack, cookie: str, size: P4Size, work_dir: Path) -> Row:
    path, described = await pick_page(stack, cookie)
    headers = {"Cookie": cookie}
    page: list[Load] = []
    trivial: list[Load] = []
    for _ in range(size.repetitions):  # interleaved
        trivial.append(await asyncio.to_thread(_load, stack, TRIVIAL, headers, size, work_dir))
        page.append(await asyncio.to_thread(_load, stack, path, headers, size, work_dir))
    return _row(page, trivial, described, size)


def _load(stack: EmbeddedStack, path: str, headers: dict[str, str], size: P4Size, work_dir: Path) -> Load:
    return run_load(stack.base_url + path, headers, CONNECTIONS, size.seconds, work_dir)


def _row(page: list[Load], trivial: list[Load], described: str, size: P4Size) -> Row:
    rate, p95 = median([x.rate for x in page]), median([x.p95 for x in page])
    base_rate, base_p95 = median([x.rate for x in trivial]), median([x.p95 for x in trivial])
    errors = sum(x.errors for x in page)
    return Row(
        key="P4",
        what=f"taxpayer home page, {CONNECTIONS} concurrent clients",
        measured=f"{rate:,.0f} req/s, p95 {ms(p95)}",
        baseline=f"{base_rate:,.0f} req/s, p95 {ms(base_p95)} trivial endpoint",
        ratio=f"{rate / base_rate:.2f}x (req/s)",
        target=f"≥ {RATE_TARGET:,.0f} req/s, p95 < {P95_LIMIT * 1000:.0f} ms",
        passed=rate >= RATE_TARGET and p95 < P95_LIMIT and errors == 0,
        notes=[
            f"Measured {described}; baseline GET {TRIVIAL} on the same uvicorn process (one process, as "
            f"`portico api` runs). {page[0].tool}, {size.seconds:.0f} s per run, median of "
            f"{size.repetitions}, interleaved; {errors} errors. p50 {ms(median([x.p50 for x in page]))}.",
        ],
    )
