"""Portico's embedded stack for a row: API (uvicorn) and real worker processes on one SQLite data folder."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench import journey
from bench.bare import StepCounts
from bench.stack import (
    DevServer,
    Proc,
    api_url,
    make_settings,
    prepare,
    start_api,
    start_worker,
    wait_for_api,
)
from bench.stack import start_workers as wait_workers_ready
from workflows import workflow_id

FORMS = [("Form 8879.pdf", journey.make_pdf(1, "Form 8879")), ("CA 8879.pdf", journey.make_pdf(1, "CA 8879"))]


class EmbeddedStack:
    def __init__(self, server: DevServer, root: Path, name: str, workers: int = 1) -> None:
        self.name = name
        self.settings = make_settings(server, root / name)
        self.resources = prepare(self.settings)
        self.client: Client = server.portico_client()
        self.inbox = journey.Inbox(self.resources)
        self.log_dir = root / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.n_workers = workers
        self.api: Proc | None = None
        self.workers: list[Proc] = []
        self.preparer = journey.browser(api_url(self.settings))
        self.png = journey.signature_png()

    @property
    def base_url(self) -> str:
        return api_url(self.settings)

    @property
    def processes(self) -> list[Proc]:
        return [p for p in [self.api, *self.workers] if p is not None]

    async def start(self) -> None:
        journey.make_preparer(self.resources)
        self.workers = [
            start_worker(self.settings, self.log_dir, name=f"{self.name}-worker{i}")
            for i in range(self.n_workers)
        ]
        self.api = start_api(self.settings, self.log_dir, name=f"{self.name}-api")
        await wait_workers_ready(self.workers)
        await wait_for_api(self.api, self.settings)
        await journey.login_preparer(self.preparer)

    async def stop(self) -> None:
        await self.preparer.aclose()
        for proc in self.processes:
            await asyncio.to_thread(proc.stop)
        self.resources.engine.dispose()

    def workflow_id(self, engagement_id: int) -> str:
        return workflow_id(engagement_id, self.settings.workflow_id_prefix)

    async def onboard(self, tag: str, *, joint: bool) -> tuple[int, list[journey.Person]]:
        """Create the engagement, invite everyone, and have each register, verify and draw a signature.

        The people's browsers stay open (the caller closes them with `close`).
        """
        people = journey.household(tag, joint=joint)
        for person in people:
            person.http = journey.browser(self.base_url, journey.next_address())
        engagement_id = await journey.create_engagement(self.preparer, people)
        for person in people:
            await journey.invite(self.preparer, engagement_id, person)
        await asyncio.gather(*(journey.onboard(p, engagement_id, self.inbox, tag, self.png) for p in people))
        return engagement_id, people

    async def full_journey(self, tag: str) -> int:
        """P1's engagement: invite → register → verify → 2 documents → both spouses sign both → completed."""
        engagement_id, people = await self.onboard(tag, joint=True)
        try:
            documents = await journey.send_documents(self.preparer, engagement_id, FORMS, "both")
            await asyncio.gather(*(journey.sign(p, d) for d in documents for p in people))
        finally:
            await close(people)
        stage = await self.client.get_workflow_handle(self.workflow_id(engagement_id)).result()
        if stage != "completed":
            raise journey.JourneyError(f"engagement {engagement_id} ended {stage}")
        return engagement_id

    async def timed_journeys(self, n: int, concurrency: int, tag: str) -> float:
        """Seconds for `n` full engagements, `concurrency` at a time."""
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with gate:
                await self.full_journey(f"{tag}x{i}")

        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(*(one(i) for i in range(n)))
        return loop.time() - started

    async def step_counts(self, engagement_id: int) -> StepCounts:
        """Updates, signals and activities the engagement's workflow history holds."""
        history = await self.client.get_workflow_handle(self.workflow_id(engagement_id)).fetch_history()
        kinds = [event.event_type for event in history.events]
        return StepCounts(
            updates=kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED),
            signals=kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED),
            activities=kinds.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
        )


async def close(people: list[journey.Person]) -> None:
    for person in people:
        if person.http is not None:
            await person.http.aclose()


def cookie_header(http: httpx.AsyncClient) -> str:
    return "; ".join(f"{name}={value}" for name, value in http.cookies.items())
