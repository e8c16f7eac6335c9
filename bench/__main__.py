"""`python -m bench [--quick] [--output PATH]`: runs P0…P5, prints one table, writes RESULTS.md.

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
from bench import p0_serving as p0
from bench import p1_throughput as p1
from bench import p2_sign_latency as p2
from bench import p2b_engines as p2b
from bench import p3_dashboard as p3
from bench import p4_home_page as p4
from bench import p4b_dashboard_page as p4b
from bench import p5_worker_memory as p5
from bench import p6_first_run as p6
from bench import p7_capacity as p7
from bench.embedded import EmbeddedStack
from bench.stack import DevServer, dev_server

ROWS = ("P0", "P1", "P2", "P2b", "P3", "P4", "P4b", "P5", "P6", "P7")
# The rows before P5 aim at 15 minutes for `make bench` (P5 and P6 then take their own time), `--quick`
# at 2 minutes in all.
FULL_BUDGET = 14 * 60.0
QUICK_BUDGET = 100.0
QUICK_OUTPUT = Path(tempfile.gettempdir()) / "portico-bench-quick-RESULTS.md"


@dataclass(frozen=True)
class Sizes:
    p0: p0.P0Size
    p1: p1.P1Size
    p2: p2.P2Size
    p2b: p2b.P2bSize
    p3: p3.P3Size
    p4: p4.P4Size
    p4b: p4b.P4bSize
    p5: p5.P5Size
    p6: p6.P6Size
    p7: p7.P7Size


FULL = Sizes(
    p0.P0Size(seconds=8, repetitions=3),
    p1.P1Size(engagements=12, bare_engagements=16, concurrency=6, repetitions=3),
    p2.P2Size(engagements=3, signatures=20),
    p2b.P2bSize(iterations=30, warmup=5, rounds=3),
    p3.P3Size(rows=100_000, requests=224),
    p4.P4Size(seconds=8, repetitions=3),
    p4b.P4bSize(seconds=8, repetitions=3),
    p5.P5Size(engagements=10_000, seconds=1800),
    p6.P6Size(measure=True, timeout=600),
    p7.P7Size(engagements=3, write_doc=True),
)
QUICK = Sizes(
    p0.P0Size(seconds=2, repetitions=1),
    p1.P1Size(engagements=3, bare_engagements=4, concurrency=3, repetitions=1),
    p2.P2Size(engagements=1, signatures=4),
    p2b.P2bSize(iterations=5, warmup=2, rounds=1),
    p3.P3Size(rows=10_000, requests=28),
    p4.P4Size(seconds=2, repetitions=1),
    p4b.P4bSize(seconds=2, repetitions=1),
    p5.P5Size(engagements=100, seconds=60),
    p6.P6Size(measure=False, timeout=0),
    p7.P7Size(engagements=1, write_doc=False),
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
        if {"P0", "P2", "P4"} & self.wanted:
            await self.attempt(
                sorted({"P0", "P2", "P4"} & self.wanted),
                "sign latency / serving",
                lambda: self._p2_p4(server),
            )
        if {"P3", "P4b"} & self.wanted:
            await self.attempt(
                sorted({"P3", "P4b"} & self.wanted), "preparer dashboard", lambda: self._p3(server)
            )
        if "P7" in self.wanted:  # on the file-backed dev server, whose persistence it measures
            await self.attempt(["P7"], "capacity model", lambda: self._p7(server))

    async def _p7(self, server: DevServer) -> None:
        self.rows.append(await p7.run(server, self.root, self.sizes.p7))

    async def _p1(self, server: DevServer) -> None:
        self.profile = await p1.run(server, self.root, self.sizes.p1, with_profile=True)
        self.rows.append(self.profile.row)

    async def _p2_p4(self, server: DevServer) -> None:
        stack = EmbeddedStack(server, self.root, "p2-p4")
        try:
            await stack.start()
            if "P2" in self.wanted:
                self.rows.append((await p2.run(stack, self.sizes.p2)).row)
            if {"P0", "P4"} & self.wanted:
                await self._p0_p4(stack)
        finally:
            await stack.stop()

    async def _p0_p4(self, stack: EmbeddedStack) -> None:
        # P4's target is a share of P0's rate in the same run, on the same served processes.
        async with p0.served(stack) as api_url:
            base = await p0.run(stack, api_url, self.sizes.p0, self.root)
            if "P0" in self.wanted:
                self.rows.append(base.row)
            if "P4" in self.wanted:  # its own attempt: P0's row stands if the landing page fails

                async def landing_page() -> None:
                    self.rows.append(
                        await p4.run(stack, api_url, self.sizes.p4, self.root, base.portico_rate)
                    )

                await self.attempt(["P4"], "client landing page", landing_page)

    async def _p3(self, server: DevServer) -> None:
        rows = await p3.run(server, self.root, self.sizes.p3, self.sizes.p4b)
        self.rows.extend(row for row in rows if row.key in self.wanted)

    async def p6_row(self) -> None:
        self.rows.append(await p6.run(self.root, self.sizes.p6))

    async def p2b_row(self) -> None:
        self.rows.append(await p2b.run(self.root, self.sizes.p2b))

    async def p5_row(self, server: DevServer) -> None:
        # P5 is measured, not projected: it has a time box of its own beyond the budget (each invited
        # engagement costs ~130 ms of worker and dev-server CPU, so 10,000 take ~11 min on 2 idle cores; a
        # quick run's 100 fit its 60 s even on a loaded machine).
        size = self.sizes.p5

        async def body() -> None:
            self.rows.append(await p5.run(server, self.root, size))

        await self.attempt(["P5"], "worker memory", body)


async def measure(sizes: Sizes, wanted: set[str], root: Path, budget: float) -> tuple[Run, str]:
    run = Run(sizes, wanted, root, budget)
    if "P2b" in wanted:  # first: in-process and Node only, on a machine with no server running yet
        await run.attempt(["P2b"], "signing engines", run.p2b_row)
    async with dev_server(root / "embedded") as server:
        temporal_version = server.version()
        await run.embedded_rows(server)
    if "P5" in wanted:
        async with dev_server(root / "fast", embedded=False) as server:
            await run.p5_row(server)
    if "P6" in wanted:  # last: it installs and starts a whole Portico of its own
        await run.attempt(["P6"], "make run from a fresh clone", run.p6_row)
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
    asked = {key.strip().upper() for key in args.rows.split(",")}
    wanted = {row for row in ROWS if row.upper() in asked}  # `p4b` or `P4B` asks for row P4b
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
