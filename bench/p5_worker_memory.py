"""P5: the worker's memory with 10,000 open engagements, each invited and waiting on reminder timers.

The real worker (`build_worker`) as it ships: it keeps `worker_cache_size` engagements in memory and
replays the others from history when a timer fires. A bulk starter makes the engagements: their rows
(engagement, signer, search words, as the API writes them) in a few SQL batches, then each workflow
started and invited in one Update-with-Start call, many in flight at once, with the inputs the API and
the invite page send. RSS is sampled while they start, so the row shows what the cache costs while it
fills and that memory stays flat once it is full. Starting them is time-boxed so `make bench` stays
within its budget: when the box closes first, the row reports what was measured and projects the rest
from the slope measured after the cache filled (and says so).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, insert
from sqlmodel import Session, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from bench import Row, journey
from bench.stack import DevServer, Proc, make_settings, prepare, start_worker, start_workers
from bench.stats import median, mib
from core.actor import Actor
from core.context import Resources
from core.models import Engagement, EngagementSearchTerm, OutboxMessage, Preparer, Role
from services.dashboard import search_terms
from services.engagements import _signer_row, profile_of, schedule_for
from services.schemas import SignerIn
from workflows import workflow_id
from workflows.engagement import EngagementWorkflow
from workflows.types import EngagementInput, SendInvite

LIMIT = 400 * 2**20
# Enough to keep worker and server busy; many more only queue workflow tasks in the worker past their
# 10 s timeout.
IN_FLIGHT = 16
ATTEMPTS = 8
BATCH = 1000


@dataclass(frozen=True)
class P5Size:
    engagements: int
    seconds: float
    """Time box for starting and inviting them."""


async def run(server: DevServer, root: Path, size: P5Size) -> Row:
    settings = make_settings(server, root / "p5")
    resources = prepare(settings)
    journey.make_preparer(resources)
    made = time.monotonic()
    inputs = await asyncio.to_thread(_create_engagements, resources, size.engagements)
    rows_seconds = time.monotonic() - made
    worker = start_worker(settings, root / "logs", name="p5-worker")
    try:
        await start_workers([worker])
        idle = await _sample(worker, 3)
        started = time.monotonic()
        cpu_before = (worker.cpu_seconds(), server.proc.cpu_seconds())
        progress = Progress()
        watcher = asyncio.create_task(_watch(worker, progress))
        cached = await _start_and_invite(
            server, settings.task_queue, settings.workflow_id_prefix, inputs, started + size.seconds, progress
        )
        await _wait_for_invites(resources, worker, cached)
        watcher.cancel()
        seconds = time.monotonic() - started
        cpu = Cpu(
            worker.cpu_seconds() - cpu_before[0], server.proc.cpu_seconds() - cpu_before[1], rows_seconds
        )
        steps = await _steps(server, workflow_id(inputs[0].engagement_id, settings.workflow_id_prefix))
        loaded = await _sample(worker, 5)
        peak = worker.memory("VmHWM")
    finally:
        await asyncio.to_thread(worker.stop)
        resources.engine.dispose()
    return _row(size, settings.worker_cache_size, cached, idle, loaded, peak, seconds, cpu, steps, progress)


def _create_engagements(resources: Resources, count: int) -> list[EngagementInput]:
    """The rows `create_engagement` writes (engagement, taxpayer, search words), 1,000 to a transaction,
    and each engagement's workflow input, as the API builds it."""
    inputs = []
    # Validated once: SignerIn's time-zone check reads the zone database each time.
    template = SignerIn(
        first_name="Shelby",
        last_name="Oneil",
        ssn="123-45-6789",
        email="p5@example.com",
        phone="+1 702 555 0197",
    )
    with Session(resources.engine) as db:
        preparer = db.exec(select(Preparer)).one()
        signer_firm = preparer.firm_id
        schedule = schedule_for(db, resources.settings, signer_firm)
        for low in range(0, count, BATCH):
            batch = [
                Engagement(firm_id=preparer.firm_id, preparer_id=preparer.id or 0, tax_year=2025)
                for _ in range(min(BATCH, count - low))
            ]
            db.add_all(batch)
            db.flush()
            words = []
            for n, engagement in enumerate(batch, start=low):
                person = template.model_copy(update={"email": f"p5-{n}@example.com"})
                signer = _signer_row(resources, engagement.id or 0, Role.TAXPAYER, person)
                db.add(signer)
                terms = search_terms(signer.first_name, signer.last_name, signer.email, signer.phone)
                words += [{"firm_id": signer_firm, "term": t, "engagement_id": engagement.id} for t in terms]
                inputs.append(
                    EngagementInput(
                        engagement_id=engagement.id or 0,
                        firm_id=engagement.firm_id,
                        preparer_id=engagement.preparer_id,
                        tax_year=2025,
                        signers=[profile_of(resources, signer, person.ssn)],
                        schedule=schedule,
                    )
                )
            db.execute(insert(EngagementSearchTerm), words)
            db.commit()
    return inputs


@dataclass(frozen=True)
class Cpu:
    worker: float
    """CPU seconds the worker spent while the engagements started and their invitations went out."""
    server: float
    """The same for the Temporal dev server."""
    rows_seconds: float
    """Wall seconds writing the engagements' rows."""


@dataclass
class Progress:
    invited: int = 0
    retries: int = 0
    samples: list[tuple[int, int]] = field(default_factory=list)
    """(engagements invited so far, worker RSS in bytes), every second while they start."""


async def _watch(worker: Proc, progress: Progress) -> None:
    while True:
        progress.samples.append((progress.invited, worker.memory()))
        await asyncio.sleep(1)


async def _start_and_invite(
    server: DevServer,
    task_queue: str,
    prefix: str,
    inputs: list[EngagementInput],
    deadline: float,
    progress: Progress,
) -> int:
    """Starts and invites engagements until all are or the deadline passes; returns how many were.

    One Update-with-Start per engagement: the workflow `create_engagement` starts and the invitation the
    preparer's Customer Portal click sends, in one round trip and one first workflow task."""
    client = server.portico_client()
    gate = asyncio.Semaphore(IN_FLIGHT)
    actor = Actor(kind="preparer", id="1", ip="127.0.0.1", user_agent="portico-bench")
    invite = SendInvite(role="taxpayer", channel="email", actor=actor)

    async def one(inp: EngagementInput) -> bool:
        async with gate:
            if time.monotonic() > deadline:
                return False
            for attempt in range(1, ATTEMPTS + 1):
                start = WithStartWorkflowOperation(  # one per call: the SDK refuses to reuse one
                    EngagementWorkflow.run,
                    inp,
                    id=workflow_id(inp.engagement_id, prefix),
                    task_queue=task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                )
                try:
                    # The update id makes a retry after a lost answer the same invitation, not a second one.
                    await client.execute_update_with_start_workflow(
                        EngagementWorkflow.send_invite, invite, start_workflow_operation=start, id="p5-invite"
                    )
                    break
                except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError):
                    # A workflow task that timed out on a saturated machine: Temporal retries the task,
                    # the invitation waits for it.
                    if attempt == ATTEMPTS:
                        raise
                    progress.retries += 1
                    await asyncio.sleep(2 * attempt)
            progress.invited += 1
            return True

    return sum(await asyncio.gather(*(one(inp) for inp in inputs)))


async def _wait_for_invites(resources: Resources, worker: Proc, count: int, timeout: float = 900) -> None:
    """Until every invitation has gone out; then the engagements only wait on their timers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.check_alive()
        if await asyncio.to_thread(_invites_sent, resources) >= count:
            await asyncio.sleep(2)  # the audit write after each send
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"not every invitation went out in {timeout:.0f}s")


def _invites_sent(resources: Resources) -> int:
    with Session(resources.engine) as db:
        query = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.purpose == "invite")
        return int(db.exec(query).one())


async def _steps(server: DevServer, workflow: str) -> str:
    """What one engagement's history holds by now, e.g. '4 workflow tasks, 4 activities, 2 timers'."""
    history = await server.portico_client().get_workflow_handle(workflow).fetch_history()
    kinds = [event.event_type for event in history.events]
    counts = {
        "workflow tasks": kinds.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
        "activities": kinds.count(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED),
        "timers": kinds.count(EventType.EVENT_TYPE_TIMER_STARTED),
    }
    return ", ".join(f"{n} {what}" for what, n in counts.items())


async def _sample(worker: Proc, count: int) -> float:
    samples = []
    for _ in range(count):
        samples.append(worker.memory())
        await asyncio.sleep(1)
    return median(samples)


def _slope_after_fill(samples: list[tuple[int, int]], cache: int) -> float | None:
    """Bytes of RSS per further engagement once the cache is full (least squares), or None if too few."""
    points = [(n, rss) for n, rss in samples if n >= 2 * cache]
    if len(points) < 5 or points[-1][0] - points[0][0] < cache:
        return None
    mean_n = sum(n for n, _ in points) / len(points)
    mean_rss = sum(r for _, r in points) / len(points)
    spread = sum((n - mean_n) ** 2 for n, _ in points)
    return sum((n - mean_n) * (r - mean_rss) for n, r in points) / spread


def _row(
    size: P5Size,
    cache: int,
    cached: int,
    idle: float,
    loaded: float,
    peak: int,
    seconds: float,
    cpu: Cpu,
    steps: str,
    progress: Progress,
) -> Row:
    """`cached`: engagements started and invited (the worker keeps at most `cache` of them in memory)."""
    complete = cached == size.engagements
    samples = progress.samples
    slope = _slope_after_fill(samples, cache)
    filling = [rss for n, rss in samples if n <= cache]
    per_cached = (max(filling) - idle) / min(cached, cache) if filling else None
    rate = cached / seconds
    passed: bool | None
    projected = False
    if complete:
        measured, passed = f"{mib(loaded)} RSS", loaded < LIMIT
    elif slope is None:
        measured = f"{mib(loaded)} RSS at {cached:,} open"
        passed = False if loaded >= LIMIT else None
    else:
        estimate = loaded + max(slope, 0.0) * (size.engagements - cached)
        at = f"{size.engagements:,}"
        measured = f"{mib(loaded)} RSS at {cached:,} open (~{mib(estimate)} projected at {at})"
        passed, projected = loaded < LIMIT and estimate < LIMIT, True
    notes = [
        f"Real worker as shipped: cache of {cache:,} engagements (PORTICO_WORKER_CACHE_SIZE); median of 5 "
        f"samples after every invitation went out ({cached:,} started and invited in {seconds:.0f} s, "
        f"{rate:.1f}/s, after {cpu.rows_seconds:.0f} s writing their rows). Peak {mib(peak)}."
        + (
            f" While the cache filled: ~{per_cached / 1024:.0f} KiB per cached engagement."
            if per_cached is not None
            else ""
        )
        + (
            f" Once full (from {2 * cache:,} open on): {slope / 1024:+.1f} KiB per further engagement."
            if slope is not None
            else ""
        ),
    ]
    per = 1000 / max(cached, 1)
    notes.append(
        f"Starting is CPU-bound, not starter-bound: per engagement (an Update-with-Start, then {steps}) "
        f"the worker spent {cpu.worker * per:.0f} ms of CPU and the Temporal dev "
        f"server {cpu.server * per:.0f} ms, on {os.cpu_count() or 1} cores."
        + (
            f" {progress.retries} invitations were retried after a timed-out workflow task."
            if progress.retries
            else ""
        )
    )
    if not complete:
        notes.append(
            f"The {size.seconds:.0f} s time box closed after {cached:,} of {size.engagements:,} (all would "
            f"take ~{size.engagements / rate / 60:.0f} min at this rate); the projection extends the "
            "slope measured after the cache filled."
        )
    return Row(
        key="P5",
        what=f"worker RSS, {size.engagements:,} open engagements waiting on timers",
        measured=measured,
        baseline=f"{mib(idle)} idle worker",
        ratio="—",
        target=f"< {mib(LIMIT)} RSS",
        passed=passed,
        notes=notes,
        projected=projected,
    )
