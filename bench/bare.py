"""The P1 baseline: a bare workflow with the same number of updates, signals and activities, all no-ops.

It runs on the same dev server as Portico's engagement workflow, sandboxed like it, with the SDK's
default converter and no-op activities: what the engine alone costs for an engagement's worth of steps.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client

BARE_TIMEOUT = timedelta(seconds=30)


@dataclass(frozen=True)
class StepCounts:
    """How many of each thing one real engagement did, read from its workflow history."""

    updates: int
    signals: int
    activities: int

    def per_update(self) -> int:
        return self.activities // max(self.updates, 1)

    def at_finish(self) -> int:
        return self.activities - self.per_update() * self.updates


@dataclass(frozen=True)
class BareInput:
    finish_activities: int


@dataclass(frozen=True)
class Step:
    activities: int
    last: bool = False


@activity.defn(name="bare_noop")
async def bare_noop() -> None:
    return None


@workflow.defn
class BareEngagement:
    def __init__(self) -> None:
        self.done = False
        self.signals = 0

    @workflow.run
    async def run(self, inp: BareInput) -> str:
        await workflow.wait_condition(lambda: self.done)
        for _ in range(inp.finish_activities):
            await workflow.execute_activity(bare_noop, start_to_close_timeout=BARE_TIMEOUT)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return "completed"

    @workflow.update
    async def step(self, step: Step) -> None:
        for _ in range(step.activities):
            await workflow.execute_activity(bare_noop, start_to_close_timeout=BARE_TIMEOUT)
        if step.last:
            self.done = True

    @workflow.signal
    def note(self) -> None:
        self.signals += 1


async def bare_engagement(client: Client, task_queue: str, workflow_id: str, counts: StepCounts) -> None:
    """One bare engagement, start to close: its updates one after another, like a person's steps."""
    handle = await client.start_workflow(
        BareEngagement.run, BareInput(counts.at_finish()), id=workflow_id, task_queue=task_queue
    )
    for _ in range(counts.signals):
        await handle.signal(BareEngagement.note)
    for number in range(counts.updates):
        last = number == counts.updates - 1
        await handle.execute_update(BareEngagement.step, Step(counts.per_update(), last))
    await handle.result()


async def run_bare(
    client: Client, task_queue: str, tag: str, n: int, concurrency: int, counts: StepCounts
) -> float:
    """Seconds for `n` bare engagements, `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await bare_engagement(client, task_queue, f"bare-{tag}-{i}", counts)

    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(*(one(i) for i in range(n)))
    return loop.time() - started
