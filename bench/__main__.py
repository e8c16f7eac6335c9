"""`python -m bench [--quick] [--output PATH]`: runs P1…P5, prints one table, writes RESULTS.md.

Rows run one after another on one machine: P1 (throughput, with its profile), P2 and P4 on one
embedded stack, P3 on SQLite and PostgreSQL, then P5 on a dev server of its own. A row that fails is
reported as such (exit status 1); the others still run.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bench import DEFAULT_OUTPUT, Row, machine, report
from bench import p1_throughput as p1
from bench import p2_sign_latency as p2
from bench import p3_dashboard as p3
from bench import p4_home_page as p4
from bench import p5_worker_memory as p5
from bench.embedded import EmbeddedStack
from bench.stack import DevServer, dev_server

ROWS = ("P1", "P2", "P3", "P4", "P5")
# `make bench` must finish within 15 minutes, `--quick` within 2: the whole run aims at these.
FULL_BUDGET = 14 * 60.0
QUICK_BUDGET = 100.0
P5_SETUP_SECONDS = 75.0  # rows, worker start, samples, shutdown
MIN_P5_SECONDS = 20.0
QUICK_OUTPUT = Path(tempfile.gettempdir()) / "portico-bench-quick-RESULTS.md"


@dataclass(frozen=True)
class Sizes:
    p1: p1.P1Size
    p2: p2.P2Size
    p3: p3.P3Size
    p4: p4.P4Size
    p5: p5.P5Size


FULL = Sizes(
    p1.P1Size(engagements=12, bare_engagements=16, concurrency=6, repetitions=3),
    p2.P2Size(engagements=3, signatures=20),
    p3.P3Size(rows=100_000, requests=224),
    p4.P4Size(seconds=8, repetitions=3),
    p5.P5Size(engagements=10_000, seconds=300),
)
QUICK = Sizes(
    p1.P1Size(engagements=3, bare_engagements=4, concurrency=3, repetitions=1),
    p2.P2Size(engagements=1, signatures=4),
    p3.P3Size(rows=10_000, requests=28),
    p4.P4Size(seconds=2, repetitions=1),
    p5.P5Size(engagements=200, seconds=60),
)


class Run:
    def __init__(self, sizes: Sizes, wanted: set[str], root: Path, budget: float) -> None:
        self.deadline = time.monotonic() + budget
        self.sizes = sizes
        self.wanted = wanted
        self.root = root
        self.rows: list[Row] = []
        self.failed = False
        self.profile = p1.P1Result(Row("P1", "", "", "", "", "", None))

    async def attempt(self, keys: list[str], what: str, body: Callable[[], Awaitable[None]]) -> None:
        try:
            await body()
        except Exception as error:
            self.failed = True
            traceback.print_exc()
            for key in keys:
                self.rows.append(Row(key, what, "error", "—", "—", "—", None, [f"failed: {error!r}"]))

    async def embedded_rows(self, server: DevServer) -> None:
        if "P1" in self.wanted:
            await self.attempt(["P1"], "engagements/s through the API", lambda: self._p1(server))
        if {"P2", "P4"} & self.wanted:
            await self.attempt(
                sorted({"P2", "P4"} & self.wanted), "sign latency / home page", lambda: self._p2_p4(server)
            )
        if "P3" in self.wanted:
            await self.attempt(["P3"], "preparer dashboard", lambda: self._p3(server))

    async def _p1(self, server: DevServer) -> None:
        self.profile = await p1.run(server, self.root, self.sizes.p1, with_profile=True)
        self.rows.append(self.profile.row)

    async def _p2_p4(self, server: DevServer) -> None:
        stack = EmbeddedStack(server, self.root, "p2-p4")
        try:
            await stack.start()
            signed = await p2.run(stack, self.sizes.p2)
            if "P2" in self.wanted:
                self.rows.append(signed.row)
            if "P4" in self.wanted:
                self.rows.append(await p4.run(stack, signed.taxpayer_cookie, self.sizes.p4, self.root))
        finally:
            await stack.stop()

    async def _p3(self, server: DevServer) -> None:
        self.rows.extend(await p3.run(server, self.root, self.sizes.p3))

    async def p5_row(self, server: DevServer) -> None:
        # P5 comes last and gets what is left of the budget (a busy machine slows the rows before it).
        left = self.deadline - time.monotonic() - P5_SETUP_SECONDS
        size = p5.P5Size(self.sizes.p5.engagements, max(MIN_P5_SECONDS, min(self.sizes.p5.seconds, left)))

        async def body() -> None:
            self.rows.append(await p5.run(server, self.root, size))

        await self.attempt(["P5"], "worker memory", body)


async def measure(sizes: Sizes, wanted: set[str], root: Path, budget: float) -> tuple[Run, str]:
    run = Run(sizes, wanted, root, budget)
    async with dev_server(root / "embedded") as server:
        temporal_version = server.version()
        await run.embedded_rows(server)
    if "P5" in wanted:
        async with dev_server(root / "fast", embedded=False) as server:
            await run.p5_row(server)
    run.rows.sort(key=lambda row: ROWS.index(row.key))
    return run, temporal_version


def _load_notes(before: float, after: float) -> list[str]:
    cores = os.cpu_count() or 1
    if max(before, after) <= cores / 2:
        return []
    return [
        f"The machine was busy with other work (1-minute load {before:.1f} at the start, {after:.1f} at the "
        f"end, on {cores} cores): the same-run ratios hold up better than the absolute figures."
    ]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, same code paths (CI smoke test)")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"results file (default {DEFAULT_OUTPUT}; with --quick {QUICK_OUTPUT}, so a smoke run never "
        "replaces the benchmark's results)",
    )
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated subset, e.g. P2,P4")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, profiles)")
    args = parser.parse_args()
    wanted = {key.strip().upper() for key in args.rows.split(",")} & set(ROWS)
    logging.basicConfig(level=logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="portico-bench-"))
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    budget = QUICK_BUDGET if args.quick else FULL_BUDGET
    run, temporal_version = asyncio.run(measure(QUICK if args.quick else FULL, wanted, root, budget))
    load_after = os.getloadavg()[0]
    result = report.Report(
        mode="quick" if args.quick else "full",
        rows=run.rows,
        machine=machine.describe(temporal_version, p3.postgres_version()),
        wall_seconds=time.monotonic() - started,
        costs=run.profile.costs,
        profile_note=run.profile.profile_note,
        extra_notes=_load_notes(load_before, load_after),
    )
    result.machine.append(("load average (1 min), start / end", f"{load_before:.1f} / {load_after:.1f}"))
    output = args.output or (QUICK_OUTPUT if args.quick else DEFAULT_OUTPUT)
    report.write(result, output)
    print(report.console(result))
    print(f"\nWritten to {output}")
    if args.keep or run.failed:
        print(f"Logs and profiles: {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if run.failed else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The Temporal SDK's runtime threads can abort the interpreter while it finalises; all is written by now.
    os._exit(code)
