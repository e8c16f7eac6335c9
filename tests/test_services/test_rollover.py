"""Roll over (services/rollover.py) through the real stack: the API, the workflow, the worker. Next year's
engagement has the same people with the same SSN (the identity match passes on it), is audited, is refused
a second time, and in bulk reports what it created and what it skipped; another firm's ids are refused and
nothing is created."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from client_steps import completed_engagement
from invitation_steps import invite_by_email
from journey import SPOUSE, TAXPAYER, invite_token, latest, login_preparer, make_preparer, outbox
from preparer_steps import Authenticator, api_login, enrol_directly
from sqlmodel import Session, col, select
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from core.context import Resources
from core.models import AuditEntry, Engagement, Signer
from worker.main import build_worker

pytestmark = pytest.mark.e2e
OTHER = {
    "first_name": "Casey",
    "last_name": "Whitfield",
    "ssn": "321-54-9876",
    "email": "casey.whitfield@example.com",
    "phone": "+1 312 555 0175",
    "time_zone": "America/Chicago",
}


@dataclass
class Firm:
    resources: Resources
    preparer: httpx.AsyncClient
    shelby: httpx.AsyncClient
    casey: httpx.AsyncClient
    other_firm: httpx.AsyncClient


@pytest.fixture
async def firm(settings: Settings, api: Any, dev_server: WorkflowEnvironment) -> AsyncIterator[Firm]:
    resources = Resources.from_settings(settings)
    async with (
        build_worker(dev_server.client, resources),
        api.client("198.51.100.1") as preparer,
        api.client("198.51.100.7") as shelby,
        api.client("198.51.100.8") as casey,
        api.client("203.0.113.1") as other_firm,
    ):
        await login_preparer(preparer, make_preparer(resources))
        secret = enrol_directly(resources, "eve@other.test", "Other Firm", "Eve Other")
        await api_login(other_firm, "eve@other.test", Authenticator(secret))
        yield Firm(resources, preparer, shelby, casey, other_firm)
    resources.engine.dispose()


def _signers(resources: Resources, engagement_id: int) -> list[tuple[str, str, str, str | None, str]]:
    with Session(resources.engine) as db:
        rows = db.exec(
            select(Signer).where(Signer.engagement_id == engagement_id).order_by(col(Signer.role))
        ).all()
        return [
            (
                s.role.value,
                s.full_name,
                resources.cipher.decrypt_text(s.ssn_encrypted, "ssn"),
                s.email,
                s.time_zone,
            )
            for s in rows
        ]


def _engagement_count(resources: Resources) -> int:
    with Session(resources.engine) as db:
        return len(db.exec(select(Engagement.id)).all())


async def test_roll_over_one_completed_engagement(firm: Firm) -> None:
    first = await completed_engagement(firm.preparer, firm.shelby, TAXPAYER, spouse=SPOUSE)

    # Another firm's preparer: not found, nothing created.
    before = _engagement_count(firm.resources)
    assert (await firm.other_firm.post(f"/api/engagements/{first}/rollover")).status_code == 404
    assert _engagement_count(firm.resources) == before

    rolled = await firm.preparer.post(f"/api/engagements/{first}/rollover", json={"invite": False})
    assert rolled.status_code == 201, rolled.text
    new = rolled.json()["engagement"]
    assert new["tax_year"] == 2026 and new["status"]["stage"] in ("created", "invited")
    assert [s["name"] for s in new["signers"]] == ["Shelby O'Neil", "Jordan O'Neil"]
    # The same people, their SSNs decrypted and encrypted again, contacts and time zones as they were.
    assert _signers(firm.resources, new["id"]) == _signers(firm.resources, first)
    with Session(firm.resources.engine) as db:
        rolled_audit = db.exec(
            select(AuditEntry).where(
                AuditEntry.engagement_id == first, AuditEntry.action == "engagement.rolled_over"
            )
        ).one()
        created_audit = db.exec(
            select(AuditEntry).where(
                AuditEntry.engagement_id == new["id"], AuditEntry.action == "engagement.create"
            )
        ).one()
    assert f'"to": {new["id"]}' in rolled_audit.detail and rolled_audit.actor.startswith("preparer:")
    assert f'"rolled_over_from": "{first}"' in created_audit.detail

    # A second roll over of the same year is refused, with the reason.
    again = await firm.preparer.post(f"/api/engagements/{first}/rollover")
    assert again.status_code == 409 and "2026 engagement for these clients already exists" in again.text
    assert _engagement_count(firm.resources) == before + 1

    # The invitation reaches the existing account, and the identity match passes on the rolled-over SSN.
    sent = await firm.preparer.post(f"/api/engagements/{new['id']}/invite", json={"channel": "email"})
    assert sent.status_code == 200, sent.text
    token = invite_token(await latest(firm.preparer, "invite", TAXPAYER["email"]))
    for _ in range(100):
        opened = (await firm.shelby.get(f"/api/invitations/{token}")).json()
        if opened.get("tax_year") == 2026 or opened.get("has_account"):
            break
        token = invite_token(await latest(firm.preparer, "invite", TAXPAYER["email"]))
    assert opened["has_account"] is True, opened
    linked = await firm.shelby.post(
        f"/api/invitations/{token}/link",
        json={"last_name": TAXPAYER["last_name"], "ssn_last4": TAXPAYER["ssn"][-4:]},
    )
    assert linked.status_code == 200 and "2026 return is added" in linked.text, linked.text


async def test_bulk_roll_over_reports_created_and_skipped(firm: Firm) -> None:
    shelby_2025 = await completed_engagement(firm.preparer, firm.shelby, TAXPAYER)
    casey_2025 = await completed_engagement(firm.preparer, firm.casey, OTHER)
    open_one, _ = await invite_by_email(firm.preparer, {**OTHER, "email": "casey.w@example.org"}, 2024)
    assert (await firm.preparer.post(f"/api/engagements/{shelby_2025}/rollover")).status_code == 201

    # Another firm's id among the firm's own refuses the whole request: nothing is created.
    invites_before = len([m for m in await outbox(firm.preparer) if m["destination"] == OTHER["email"]])
    before = _engagement_count(firm.resources)
    mixed = {"ids": [casey_2025, shelby_2025]}
    assert (await firm.other_firm.post("/api/engagements/rollover", json=mixed)).status_code == 404
    assert _engagement_count(firm.resources) == before

    result = await firm.preparer.post(
        "/api/engagements/rollover", json={"ids": [shelby_2025, casey_2025, open_one], "invite": True}
    )
    assert result.status_code == 201, result.text
    body = result.json()
    assert [c["source_id"] for c in body["created"]] == [casey_2025]
    created = body["created"][0]
    assert created["engagement"]["tax_year"] == 2026 and created["invited"] == ["taxpayer"]
    skipped = {s["source_id"]: s["reason"] for s in body["skipped"]}
    assert "already exists" in skipped[shelby_2025]
    assert "Only a completed engagement" in skipped[open_one]
    assert _engagement_count(firm.resources) == before + 1
    # Invited at once by the channel used last time (email): the link is on its way to the same address.
    for _ in range(100):
        to_casey = [m for m in await outbox(firm.preparer) if m["destination"] == OTHER["email"]]
        if len(to_casey) > invites_before:
            break
        await asyncio.sleep(0.1)
    assert to_casey[-1]["purpose"] == "invite" and len(to_casey) == invites_before + 1
