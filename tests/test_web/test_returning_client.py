"""One account across a person's returns (issue 15): a client registered for 2025 gets the 2026 invitation,
is told they already have an account, signs in, passes the same identity match as registration, and then
reaches both returns from one login. A wrong identity links nothing and counts toward the link's lock."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from invitation_steps import invite_by_email, invited_taxpayer
from journey import TAXPAYER, Person, invite_token, latest, register_and_verify
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from core.context import Resources
from core.models import AccountLink, AuditEntry, TaxpayerAccount
from esign import records

pytestmark = pytest.mark.e2e
IDENTITY = {"last_name": TAXPAYER["last_name"], "ssn_last4": TAXPAYER["ssn"][-4:]}


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


@pytest.fixture
async def returning(
    db_settings: Settings, api: Any, dev_server: WorkflowEnvironment
) -> AsyncIterator[dict[str, Any]]:
    """Shelby registered and verified for 2025; the firm has just invited her for 2026."""
    async with invited_taxpayer(api, db_settings, dev_server) as invited:
        client = api.client("198.51.100.7")
        await register_and_verify(Person(client, TAXPAYER), invited.token, invited.preparer)
        year_2026, token = await invite_by_email(invited.preparer, TAXPAYER, tax_year=2026)
        while token == invited.token:  # the 2025 invitation, until the 2026 one is in the outbox
            await asyncio.sleep(0.1)
            token = invite_token(await latest(invited.preparer, "invite", TAXPAYER["email"]))
        yield {
            "resources": invited.resources,
            "preparer": invited.preparer,
            "client": client,
            "api": api,
            "first": invited.engagement_id,
            "second": year_2026,
            "token": token,
        }
        await client.aclose()


def links_of(resources: Resources) -> list[tuple[int, int, str]]:
    with Session(resources.engine) as db:
        return [(link.account_id, link.engagement_id, link.via) for link in db.exec(select(AccountLink))]


async def test_a_returning_client_adds_the_new_return_to_the_account(returning: dict[str, Any]) -> None:
    resources, client, token = returning["resources"], returning["client"], returning["token"]
    first, second = returning["first"], returning["second"]

    # The invitation says so, to whoever holds it; the page offers to log in and add the return.
    invitation = (await client.get(f"/api/invitations/{token}")).json()
    assert invitation["has_account"] is True and invitation["state"] == "open"
    page = await client.get(f"/invite/{token}")
    assert "You already have a Client Portal account with" in page.text
    assert f'href="/portal/login?next=/portal/add-return/{token}"' in page.text

    # Not signed in: nothing to link. Signed in, a wrong identity links nothing and is counted.
    async with returning["api"].client("198.51.100.8") as stranger:
        assert (
            await stranger.post(f"/api/invitations/{token}/link", json={"last_name": "x"})
        ).status_code in (
            401,
            422,
        )
    wrong = await client.post(
        f"/api/invitations/{token}/link", json={"last_name": TAXPAYER["last_name"], "ssn_last4": "0000"}
    )
    assert wrong.status_code == 422 and "4 attempts left" in wrong.text, wrong.text
    assert [e for e in links_of(resources) if e[1] == second] == []

    # The right details: the account reaches both returns, and no second account exists.
    right = await client.post(
        f"/api/invitations/{token}/link",
        json=IDENTITY,
    )
    assert right.status_code == 200 and "2026 return is added" in right.text, right.text
    with Session(resources.engine) as db:
        (account,) = db.exec(select(TaxpayerAccount)).all()
        actions = [e.action for e in db.exec(select(AuditEntry).where(AuditEntry.engagement_id == second))]
    assert sorted(links_of(resources)) == [
        (account.id, first, "registration"),
        (account.id, second, "invitation"),
    ]
    assert "registration.mismatch" in actions and "account.linked" in actions
    # The e-signature record of the 2026 return names how the person was identified and authenticated.
    with Session(resources.engine) as db:
        (signer,) = records.collect_record(db, resources.store, second).signers
    assert signer.username == "shelby" and signer.identity_verification.startswith("Passed at")
    assert "existing portal account added this return" in signer.identity_verification
    assert "1 failed attempt before" in signer.identity_verification
    assert "added this return at" in signer.authentication
    again = await client.post(
        f"/api/invitations/{token}/link",
        json=IDENTITY,
    )
    assert again.status_code == 200  # a second click changes nothing

    # Both returns from one login: the newest by default, the other by asking for it.
    assert (await client.get("/api/taxpayer/me")).status_code == 200
    status = (await returning["preparer"].get(f"/api/engagements/{second}")).json()
    assert status["status"]["stage"] == "verified"
    assert [s["registered"] for s in status["signers"]] == [True]
    for engagement_id in (first, second):
        docs = await client.get("/api/taxpayer/documents", params={"engagement_id": engagement_id})
        assert docs.status_code == 200

    # The pages: the switcher lists both returns and shows the one asked for; another's id is ignored.
    home = await client.get("/portal")
    assert 'action="/portal/return"' in home.text
    assert "2026 return</option>" in home.text and "2025 return</option>" in home.text
    switched = await client.post(
        "/portal/return",
        data={"csrf_token": csrf_of(home), "engagement_id": str(first), "next": "/portal/files"},
    )
    assert switched.status_code == 303 and switched.headers["location"] == "/portal/files"
    home = await client.get("/portal")
    assert re.search(rf'<option value="{first}" selected>2025 return</option>', home.text)
    foreign = await client.post(
        "/portal/return", data={"csrf_token": csrf_of(home), "engagement_id": "999999", "next": "/portal"}
    )
    assert foreign.status_code == 303
    assert re.search(rf'<option value="{first}" selected>', (await client.get("/portal")).text)


async def test_the_add_return_page_links_after_the_identity_match(returning: dict[str, Any]) -> None:
    resources, client, token, second = (
        returning["resources"],
        returning["client"],
        returning["token"],
        returning["second"],
    )
    page = await client.get(f"/portal/add-return/{token}")
    assert page.status_code == 200 and "Add your 2026 return" in page.text
    wrong = await client.post(
        f"/portal/add-return/{token}",
        data={"csrf_token": csrf_of(page), "last_name": "Someone Else", "ssn_last4": TAXPAYER["ssn"][-4:]},
    )
    assert wrong.status_code == 422 and "don&#39;t match" in wrong.text
    assert [e for e in links_of(resources) if e[1] == second] == []
    added = await client.post(
        f"/portal/add-return/{token}",
        data={
            "csrf_token": csrf_of(page),
            "last_name": TAXPAYER["last_name"],
            "ssn_last4": TAXPAYER["ssn"][-4:],
        },
    )
    assert added.status_code == 303 and added.headers["location"] == "/portal?m=return-added"
    home = await client.get("/portal?m=return-added")
    assert "Your new return is added" in home.text
    assert re.search(rf'<option value="{second}" selected>2026 return</option>', home.text)
    assert [e for e in links_of(resources) if e[1] == second] != []
