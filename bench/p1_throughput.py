"""P1: full engagements per second through the HTTP API, against a bare workflow on the same dev server."""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench import Row, profile
from bench.bare import StepCounts, run_bare
from bench.embedded import EmbeddedStack
from bench.stack import DevServer, Proc, make_settings, start_worker, start_workers
from bench.stats import median

TARGET = 0.5


@dataclass(frozen=True)
class P1Size:
    engagements: int
    """Per timed repetition of the real journey."""
    bare_engagements: int
    concurrency: int
    repetitions: int


@dataclass
class P1Result:
    row: Row
    costs: list[profile.Cost] = field(default_factory=list)
    profile_note: str = ""


async def run(server: DevServer, root: Path, size: P1Size, *, with_profile: bool) -> P1Result:
    one = EmbeddedStack(server, root, "p1-1worker", workers=1)
    two = EmbeddedStack(server, root, "p1-2workers", workers=2)
    bare_settings = make_settings(server, root / "p1-bare")
    bare_worker = start_worker(bare_settings, root / "logs", mode="bare", name="p1-bare-worker")
    stacks = [one, two]
    try:
        await asyncio.gather(one.start(), two.start(), start_workers([bare_worker]))
        bare_client = await server.plain_client()
        # Warm-up: one engagement each, and the real one's history says what the bare one must match.
        first = await one.full_journey("warm")
        await two.full_journey("warm")
        counts = await one.step_counts(first)
        await run_bare(bare_client, bare_settings.task_queue, "warm", 2, 2, counts)

        rates: dict[str, list[float]] = {"bare": [], "one": [], "two": []}
        for rep in range(size.repetitions):  # interleaved, so drift hits all three alike
            n, c = size.bare_engagements, size.concurrency
            seconds = await run_bare(bare_client, bare_settings.task_queue, f"r{rep}", n, c, counts)
            rates["bare"].append(n / seconds)
            n = size.engagements
            rates["one"].append(n / await one.timed_journeys(n, c, f"r{rep}"))
            rates["two"].append(n / await two.timed_journeys(n, c, f"r{rep}"))
        result = P1Result(_row(rates, counts, size))
        if with_profile:
            try:
                await _profile(one, size, root, result)
            except Exception as error:  # the row stands without its profile
                result.profile_note = f"The profiled repetition failed: {error!r}."
        return result
    finally:
        for stack in stacks:
            await stack.stop()
        await asyncio.to_thread(bare_worker.stop)


def _row(rates: dict[str, list[float]], counts: StepCounts, size: P1Size) -> Row:
    bare, one, two = (median(rates[k]) for k in ("bare", "one", "two"))
    ratio = one / bare
    return Row(
        key="P1",
        what="full engagements/s through the HTTP API (joint return, 2 documents, 4 signatures, sealed)",
        measured=f"{one:.2f}/s",
        baseline=f"{bare:.2f}/s bare workflow",
        ratio=f"{ratio:.2f}x",
        target=f"≥ {TARGET}x baseline",
        passed=ratio >= TARGET,
        notes=[
            f"{size.engagements} engagements per repetition, {size.concurrency} at a time, median of "
            f"{size.repetitions}; bare baseline: {size.bare_engagements} per repetition with the same "
            f"{counts.updates} updates, {counts.signals} signals and {counts.activities} no-op activities "
            "per engagement as the real one's history shows.",
            f"Scaling: 1 worker process {one:.2f}/s, 2 worker processes {two:.2f}/s "
            f"({two / one:.2f}x on this {os.cpu_count() or 1}-core machine, which also runs the dev server, "
            "the API and the load driver).",
        ],
    )


async def _profile(stack: EmbeddedStack, size: P1Size, root: Path, result: P1Result) -> None:
    if not profile.available():
        result.profile_note = "py-spy is not installed: profile skipped (`pip install py-spy`)."
        return
    sampler = profile.Sampler(root / "logs")
    targets: list[tuple[Proc, str]] = [(p, "worker") for p in stack.workers]
    if stack.api is not None:
        targets.append((stack.api, "api"))
    for proc, role in targets:
        sampler.attach(proc, role)
    await asyncio.to_thread(profile.settle)
    seconds = await stack.timed_journeys(size.engagements, size.concurrency, f"prof{uuid.uuid4().hex[:4]}")
    files = await asyncio.to_thread(sampler.stop)
    if not files:
        result.profile_note = "py-spy could not attach (ptrace not permitted?): profile skipped."
        return
    found = profile.top_costs(files)
    result.costs = found.costs
    shares = ", ".join(f"{role} {share:.0%}" for role, share in sorted(found.roles.items()))
    result.profile_note = (
        f"py-spy at 100 Hz on the API and the worker during one more P1 repetition ({size.engagements} "
        f"engagements in {seconds:.1f} s, 1 worker): {found.samples} working samples ({shares}); "
        f"{found.waiting:.0%} of samples were threads waiting (idle pool threads, event loops, the GIL), "
        "left out. Each sample is charged to the deepest Portico function on its stack."
    )
