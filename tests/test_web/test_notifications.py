"""The client hub's notifications (issue 15) through the real stack: a Temporal dev server, the worker, the
app. Sending documents tells every account on the return once (a retried activity writes nothing twice),
the bell counts them, opening one marks it read and shows its return, "Mark all as read", another
account's notification is not found, the firm's message shows once until OK, and a chat message tells."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from invitation_steps import invite_by_email, invited_taxpayer
from journey import SPOUSE, TAXPAYER, Person, invite_token, latest, register_and_verify
from pdfs import make_pdf
from sqlmodel import Session, col, select
from temporalio.testing import WorkflowEnvironment

from activities.engagement import EngagementActivities
from activities.types import DocumentSpec, PublishDocuments
from core.config import Settings
from core.context import Resources
from core.models import Document, Notification, Signature, TaxpayerAccount

pytestmark = pytest.mark.e2e
IDENTITY = {"last_name": TAXPAYER["last_name"], "ssn_last4": TAXPAYER["ssn"][-4:]}
FIRM_WORDS = "Please sign by Friday.\n<script>alert('x')</script> & thanks!"


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


@pytest.fixture
async def hub(
    db_settings: Settings, api: Any, dev_server: WorkflowEnvironment
) -> AsyncIterator[dict[str, Any]]:
    """Shelby with two returns on one account (2025 and 2026), and a stranger verified on another return."""
    async with invited_taxpayer(api, db_settings, dev_server) as invited:
        client = api.client("198.51.100.7")
        await register_and_verify(Person(client, TAXPAYER), invited.token, invited.preparer)
        year_2026, token = await invite_by_email(invited.preparer, TAXPAYER, tax_year=2026)
        while token == invited.token:
            await asyncio.sleep(0.1)
            token = invite_token(await latest(invited.preparer, "invite", TAXPAYER["email"]))
        linked = await client.post(f"/api/invitations/{token}/link", json=IDENTITY)
        assert linked.status_code == 200, linked.text
        stranger = api.client("198.51.100.9")
        other, other_token = await invite_by_email(invited.preparer, SPOUSE)
        await register_and_verify(Person(stranger, SPOUSE), other_token, invited.preparer)
        yield {
            "resources": invited.resources,
            "preparer": invited.preparer,
            "client": client,
            "stranger": stranger,
            "first": invited.engagement_id,
            "second": year_2026,
            "other": other,
        }
        await client.aclose()
        await stranger.aclose()


def notes(resources: Resources, username: str = "shelby") -> list[Notification]:
    with Session(resources.engine) as db:
        account = db.exec(select(TaxpayerAccount).where(TaxpayerAccount.username == username)).one()
        rows = db.exec(
            select(Notification).where(Notification.account_id == account.id).order_by(col(Notification.id))
        )
        return list(rows.all())


async def send(preparer: httpx.AsyncClient, engagement_id: int, message: str = "") -> httpx.Response:
    files = [
        ("files", ("Form 8879.pdf", make_pdf(1, "Form 8879"), "application/pdf")),
        ("files", ("Return.pdf", make_pdf(2, "Form 1040"), "application/pdf")),
    ]
    data: dict[str, Any] = {"signers": ["taxpayer", "none"]}
    if message:
        data["message"] = message
    return await preparer.post(f"/api/engagements/{engagement_id}/documents", files=files, data=data)


def retry_publish(resources: Resources, engagement_id: int) -> None:
    """The workflow's publish_documents activity once more, as Temporal retries it: same documents."""
    with Session(resources.engine) as db:
        docs = db.exec(select(Document).where(Document.engagement_id == engagement_id)).all()
        roles = {
            d.id: [s.role.value for s in db.exec(select(Signature).where(Signature.document_id == d.id))]
            for d in docs
        }
    specs = [
        DocumentSpec(d.upload_ref, d.storage_key, d.name, d.sha256, d.size, d.pages or 1, roles[d.id])
        for d in docs
    ]
    activities = EngagementActivities(resources, None, {})  # type: ignore[arg-type]
    activities.publish_documents(PublishDocuments(engagement_id, specs, "preparer"))


async def test_documents_notify_each_account_once_and_the_bell_opens_them(hub: dict[str, Any]) -> None:
    resources, client, preparer = hub["resources"], hub["client"], hub["preparer"]
    first, second = hub["first"], hub["second"]
    assert notes(resources) == []

    # The 2025 return gets documents while the portal shows 2026 (the newest): one "sent", one "sign".
    sent = await send(preparer, first, FIRM_WORDS)
    assert sent.status_code == 200, sent.text
    kinds = [(n.kind, n.engagement_id) for n in notes(resources)]
    assert sorted(kinds) == [("documents_sent", first), ("firm_message", first), ("signature_needed", first)]
    assert notes(resources, "jordan") == []  # another person's return tells them nothing
    retry_publish(resources, first)
    assert len(notes(resources)) == 3  # a retried activity writes nothing twice

    # The bell on every page: its count in the button's name; the firm's message, escaped, until OK.
    home = await client.get("/portal")
    assert 'aria-label="Notifications, 3 unread"' in home.text
    assert 'aria-expanded="false"' in home.text and "Mark all as read" in home.text
    assert "Please sign by Friday." in home.text
    assert "&lt;script&gt;alert(" in home.text and "<script>alert(" not in home.text
    listed = (await client.get("/api/taxpayer/notifications")).json()
    assert listed["unread"] == 3 and {n["tax_year"] for n in listed["notifications"]} == {2025}

    # Opening one marks it read and shows its return (the 2025 one), on its page.
    sign = next(n for n in notes(resources) if n.kind == "signature_needed")
    opened = await client.get(f"/portal/notifications/{sign.id}/open", follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"].startswith("/portal/documents#doc-")
    assert f"portico_return={first}" in opened.headers.get("set-cookie", "")
    documents = await client.get("/portal/documents")
    assert re.search(rf'<option value="{first}" selected>2025 return</option>', documents.text)
    assert 'aria-label="Notifications, 2 unread"' in documents.text
    assert second != first

    # Another account's notification is not found, and stays unread.
    stranger, theirs = hub["stranger"], (sign.id or 0) + 1
    for call in (
        stranger.get(f"/portal/notifications/{theirs}/open", follow_redirects=False),
        stranger.post(f"/api/taxpayer/notifications/{theirs}/read"),
    ):
        assert (await call).status_code == 404
    assert [n.read_at is None for n in notes(resources)].count(True) == 2

    # "Mark all as read" leaves the firm's message, which waits for its OK; after OK it is gone.
    done = await client.post(
        "/portal/notifications/read-all", data={"csrf_token": csrf_of(documents), "next": "/portal"}
    )
    assert done.status_code == 303
    (firm,) = [n for n in notes(resources) if n.read_at is None]
    assert firm.kind == "firm_message" and firm.body.startswith("Please sign by Friday.")
    home = await client.get("/portal")
    assert 'aria-label="Notifications, 1 unread"' in home.text and "Please sign by Friday." in home.text
    ok = await client.post(
        f"/portal/notifications/{firm.id}/read", data={"csrf_token": csrf_of(home), "next": "/portal"}
    )
    assert ok.status_code == 303
    home = await client.get("/portal")
    assert "Please sign by Friday." not in home.text
    assert 'aria-label="Notifications, 0 unread"' in home.text

    # A chat message from the preparer tells the client, linking to Messages.
    chat = await preparer.post(f"/api/engagements/{second}/messages", json={"body": "Two questions"})
    assert chat.status_code == 201, chat.text
    last = notes(resources)[-1]
    assert (last.kind, last.link, last.engagement_id, last.read_at) == (
        "message",
        "/portal/messages",
        second,
        None,
    )
    listed = (await client.get("/api/taxpayer/notifications")).json()
    assert listed["unread"] == 1 and listed["notifications"][0]["title"] == "New message from Ada Preparer"
    marked = await client.post(f"/api/taxpayer/notifications/{last.id}/read")
    assert marked.status_code == 200 and marked.json()["read"] is True
    assert (await client.get("/api/taxpayer/notifications")).json()["unread"] == 0


async def test_a_firm_message_over_2000_characters_is_refused(hub: dict[str, Any]) -> None:
    refused = await send(hub["preparer"], hub["first"], "x" * 2001)
    assert refused.status_code == 422 and "2,000 characters" in refused.text
    assert notes(hub["resources"]) == []
