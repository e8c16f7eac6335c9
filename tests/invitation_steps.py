"""A taxpayer invited by email, with a worker running and the preparer logged in: where the portal's account
and page-throttle tests start."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from journey import TAXPAYER, invite_token, latest, login_preparer, make_preparer
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from core.context import Resources
from worker.main import build_worker


@dataclass(frozen=True)
class Invited:
    resources: Resources
    preparer: httpx.AsyncClient
    engagement_id: int
    token: str


async def invite_by_email(
    preparer: httpx.AsyncClient, taxpayer: dict[str, str] = TAXPAYER, tax_year: int = 2025
) -> tuple[int, str]:
    """A new engagement for `taxpayer`, invited by email: its id, and the link's token once it went out."""
    created = await preparer.post("/api/engagements", json={"tax_year": tax_year, "taxpayer": taxpayer})
    assert created.status_code == 201, created.text
    engagement_id: int = created.json()["id"]
    sent = await preparer.post(f"/api/engagements/{engagement_id}/invite", json={"channel": "email"})
    assert sent.status_code == 200, sent.text
    for _ in range(100):  # the worker sends it a moment later
        try:
            return engagement_id, invite_token(await latest(preparer, "invite", taxpayer["email"]))
        except AssertionError:
            await asyncio.sleep(0.1)
    return engagement_id, invite_token(await latest(preparer, "invite", taxpayer["email"]))


@asynccontextmanager
async def invited_taxpayer(
    api: Any, settings: Settings, dev_server: WorkflowEnvironment
) -> AsyncIterator[Invited]:
    """`TAXPAYER` invited by a logged-in preparer, a worker running; a new code may be asked for at once."""
    settings.code_resend_cooldown = timedelta(0)
    resources = Resources.from_settings(settings)
    async with build_worker(dev_server.client, resources), api.client("198.51.100.1") as preparer:
        await login_preparer(preparer, make_preparer(resources))
        engagement_id, token = await invite_by_email(preparer)
        yield Invited(resources, preparer, engagement_id, token)
    resources.engine.dispose()
