"""The client hub (issue 15): the landing page's tasks, completed tasks, activity and firm contact across
every return of one account, and the one Documents page across them, through the real stack (pages, API,
workflow on a Temporal dev server)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from invitation_steps import invite_by_email, invited_taxpayer
from journey import SPOUSE, TAXPAYER, Person, invite_token, latest, register_and_verify, signature_png
from pdfs import make_pdf
from sqlmodel import Session, col, select
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from core.models import Direction, Document, Signature

pytestmark = pytest.mark.e2e
IDENTITY = {"last_name": TAXPAYER["last_name"], "ssn_last4": TAXPAYER["ssn"][-4:]}


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


async def send(preparer: httpx.AsyncClient, eid: int, docs: list[tuple[str, str]]) -> dict[str, int]:
    """The preparer sends PDFs (name, who signs: taxpayer / spouse / both / none); their ids by name."""
    files = [("files", (name, make_pdf(1, name), "application/pdf")) for name, _ in docs]
    sent = await preparer.post(
        f"/api/engagements/{eid}/documents", files=files, data={"signers": [who for _, who in docs]}
    )
    assert sent.status_code == 200, sent.text
    return {d["name"]: d["id"] for d in sent.json()["documents"]}


@pytest.fixture
async def two_years(
    db_settings: Settings, api: Any, dev_server: WorkflowEnvironment
) -> AsyncIterator[dict[str, Any]]:
    """Shelby's account reaches her 2025 and 2026 returns; each has a document waiting for her."""
    async with invited_taxpayer(api, db_settings, dev_server) as invited:
        client = api.client("198.51.100.7")
        await register_and_verify(Person(client, TAXPAYER), invited.token, invited.preparer)
        second, token = await invite_by_email(invited.preparer, TAXPAYER, tax_year=2026)
        while token == invited.token:
            await asyncio.sleep(0.1)
            token = invite_token(await latest(invited.preparer, "invite", TAXPAYER["email"]))
        linked = await client.post(f"/api/invitations/{token}/link", json=IDENTITY)
        assert linked.status_code == 200, linked.text
        first = invited.engagement_id
        old = await send(
            invited.preparer, first, [("2025 Form 8879.pdf", "taxpayer"), ("2025 Return.pdf", "none")]
        )
        new = await send(invited.preparer, second, [("2026 Form 8879.pdf", "taxpayer")])
        yield {
            "resources": invited.resources,
            "preparer": invited.preparer,
            "client": client,
            "first": first,
            "second": second,
            "docs": {**old, **new},
        }
        await client.aclose()


async def test_tasks_across_both_years_and_get_started_switches_the_return(two_years: dict[str, Any]) -> None:
    client, preparer, first, second = (two_years[k] for k in ("client", "preparer", "first", "second"))
    docs = two_years["docs"]
    chat = await preparer.post(f"/api/engagements/{first}/messages", json={"body": "Where is your 1099?"})
    assert chat.status_code == 201, chat.text

    hub = (await client.get("/api/taxpayer/hub")).json()
    tasks = [(t["kind"], t["tax_year"], t.get("document_id")) for t in hub["tasks"]]
    # No signature on file yet: each document asks for one first. Newest year first.
    assert tasks == [
        ("signature", 2026, docs["2026 Form 8879.pdf"]),
        ("signature", 2025, docs["2025 Form 8879.pdf"]),
        ("message", 2025, None),
    ], tasks
    assert hub["tasks"][2]["link"] == f"/portal/go?return={first}&to=/portal/messages"

    # The landing page lists them with Get Started; following the 2025 one shows the 2025 return.
    home = await client.get("/portal")
    assert home.status_code == 200
    assert "Sign 2026 Form 8879.pdf" in home.text and "Sign 2025 Form 8879.pdf" in home.text
    assert home.text.index("Sign 2026 Form 8879.pdf") < home.text.index("Sign 2025 Form 8879.pdf")
    assert f'href="/portal/go?return={first}&amp;to=/portal/messages"' in home.text
    assert re.search(rf'<option value="{second}" selected>', home.text)
    go = await client.get("/portal/go", params={"return": first, "to": "/portal/messages"})
    assert go.status_code == 303 and go.headers["location"] == "/portal/messages"
    assert re.search(rf'<option value="{first}" selected>', (await client.get("/portal")).text)
    # Another person's return (or none) is ignored; a target off the portal is not followed.
    foreign = await client.get("/portal/go", params={"return": 999999, "to": "https://evil.example/"})
    assert foreign.status_code == 303 and foreign.headers["location"] == "/portal"
    assert re.search(rf'<option value="{first}" selected>', (await client.get("/portal")).text)

    # Answering the firm's message takes the message task away.
    answered = await client.post(
        "/api/taxpayer/messages", params={"engagement_id": first}, json={"body": "Sent!"}
    )
    assert answered.status_code == 201, answered.text
    kinds = [t["kind"] for t in (await client.get("/api/taxpayer/hub")).json()["tasks"]]
    assert "message" not in kinds


async def test_signing_a_2025_document_while_2026_shows(two_years: dict[str, Any]) -> None:
    client, first, second, docs = (two_years[k] for k in ("client", "first", "second", "docs"))
    for eid in (first, second):  # a signature is saved per return (each return has its own signer)
        saved = await client.put(
            "/api/taxpayer/signature",
            params={"engagement_id": eid},
            files={"image": ("s.png", signature_png(), "image/png")},
        )
        assert saved.status_code == 200, saved.text
    home = await client.get("/portal")
    assert re.search(rf'<option value="{second}" selected>', home.text)  # the newest return shows
    tasks = (await client.get("/api/taxpayer/hub")).json()["tasks"]
    assert [t["kind"] for t in tasks] == ["sign", "sign"]

    doc_2025 = docs["2025 Form 8879.pdf"]
    signed = await client.post(f"/portal/documents/{doc_2025}/sign", data={"csrf_token": csrf_of(home)})
    assert signed.status_code == 303, signed.text
    with Session(two_years["resources"].engine) as db:
        sig = db.exec(select(Signature).where(Signature.document_id == doc_2025)).one()
    assert sig.signed_at is not None

    hub = (await client.get("/api/taxpayer/hub")).json()
    assert [(t["kind"], t["tax_year"]) for t in hub["tasks"]] == [("sign", 2026)]
    completed = [(d["kind"], d["title"], d["tax_year"]) for d in hub["completed"]]
    assert ("signed", "Signed 2025 Form 8879.pdf", 2025) in completed
    assert hub["activity"][0]["kind"] == "signature_applied"
    assert hub["activity"][0]["text"] == "You signed 2025 Form 8879.pdf"
    page = (await client.get("/portal")).text
    assert "Signed 2025 Form 8879.pdf" in page and "You signed 2025 Form 8879.pdf" in page

    # The Documents page shows it signed, with the date, under 2025; the 2026 one still has its Sign button.
    documents = (await client.get("/portal/documents")).text
    assert documents.index("2026 return") < documents.index("2025 return")
    row = re.search(rf'<tr id="doc-{doc_2025}">.*?</tr>', documents, re.S)
    assert row and "Signed!" in row.group(0) and "202" in row.group(0)
    assert f'action="/portal/documents/{docs["2026 Form 8879.pdf"]}/sign"' in documents
    download = await client.get(f"/portal/documents/{doc_2025}/download")
    assert download.status_code == 200 and download.headers["content-disposition"].startswith("attachment")


async def test_firm_contact_shows_what_the_administrator_set(two_years: dict[str, Any]) -> None:
    preparer, client = two_years["preparer"], two_years["client"]
    settings_page = await preparer.get("/preparer/settings")
    assert settings_page.status_code == 200 and 'action="/preparer/settings/contact"' in settings_page.text
    bad = await preparer.post(
        "/preparer/settings/contact",
        data={"csrf_token": csrf_of(settings_page), "phone": "call me", "email": "nope"},
    )
    assert bad.status_code == 422 and "enter a phone number" in bad.text
    saved = await preparer.post(
        "/preparer/settings/contact",
        data={
            "csrf_token": csrf_of(settings_page),
            "address": "12 Ledger Lane\nSpringfield, IL 62701",
            "phone": "+1 217 555 0100",
            "email": "office@lovelace.test",
            "hours": "Mon-Fri 9-5",
        },
    )
    assert saved.status_code == 303, saved.text
    account = await preparer.get("/preparer/account")
    phone = await preparer.post(
        "/preparer/account/phone", data={"csrf_token": csrf_of(account), "phone": "+1 217 555 0142"}
    )
    assert phone.status_code == 303, phone.text

    contact = (await client.get("/api/taxpayer/hub")).json()["contact"]
    assert contact == {
        "firm_name": "Lovelace Tax",
        "preparer_name": "Ada Preparer",
        "preparer_email": "ada@firm.test",
        "preparer_phone": "+1 217 555 0142",
        "address": "12 Ledger Lane\nSpringfield, IL 62701",
        "phone": "+1 217 555 0100",
        "email": "office@lovelace.test",
        "hours": "Mon-Fri 9-5",
    }
    home = (await client.get("/portal")).text
    for shown in (
        "Ada Preparer",
        "+1 217 555 0142",
        "12 Ledger Lane",
        "office@lovelace.test",
        "Hours: Mon-Fri 9-5",
    ):
        assert shown in home, shown


async def test_documents_search_filter_sort_and_a_thousand_documents(two_years: dict[str, Any]) -> None:
    client, first, docs = two_years["client"], two_years["first"], two_years["docs"]

    def names(body: dict[str, Any]) -> list[str]:
        return [d["name"] for d in body["items"]]

    everything = (await client.get("/api/taxpayer/library")).json()
    # Grouped: 2026 first; in 2025 the tax return (no signature of hers) comes before the one to sign.
    assert names(everything) == ["2026 Form 8879.pdf", "2025 Return.pdf", "2025 Form 8879.pdf"]
    assert [d["kind"] for d in everything["items"]] == ["to_sign", "return", "to_sign"]
    assert everything["years"] == [2026, 2025]
    found = (await client.get("/api/taxpayer/library", params={"q": "return"})).json()
    assert names(found) == ["2025 Return.pdf"]
    assert names((await client.get("/api/taxpayer/library", params={"year": 2026})).json()) == [
        "2026 Form 8879.pdf"
    ]
    assert names((await client.get("/api/taxpayer/library", params={"status": "none"})).json()) == [
        "2025 Return.pdf"
    ]
    assert (
        len((await client.get("/api/taxpayer/library", params={"status": "awaiting"})).json()["items"]) == 2
    )
    assert (await client.get("/api/taxpayer/library", params={"kind": "nonsense"})).status_code == 422
    page = await client.get("/portal/documents", params={"q": "return", "year": "2025"})
    assert "2025 Return.pdf" in page.text and "2026 Form 8879.pdf" not in page.text
    assert docs["2025 Return.pdf"]

    # A thousand uploads on the 2025 return: paged, sorted by name, searched, in the database.
    with Session(two_years["resources"].engine) as db:
        db.add_all(
            Document(
                engagement_id=first,
                direction=Direction.TO_PREPARER,
                upload_ref=f"seed-{i}",
                name=f"W-2 {i:04d}.pdf",
                content_type="application/pdf",
                size=1,
                storage_key="none",
                sha256="0",
                current_key="none",
                current_sha256="0",
                uploaded_by="taxpayer:taxpayer",
            )
            for i in range(1000)
        )
        db.commit()
        assert db.exec(select(col(Document.id)).where(Document.upload_ref == "seed-999")).one()
    uploads = {"kind": "upload", "sort": "name", "per_page": 25}
    third = (await client.get("/api/taxpayer/library", params={**uploads, "page": 3})).json()
    assert third["total"] == 1000 and third["pages"] == 40 and third["page"] == 3
    assert names(third) == [f"W-2 {i:04d}.pdf" for i in range(50, 75)]
    newest = (await client.get("/api/taxpayer/library", params={"kind": "upload", "per_page": 5})).json()
    assert names(newest) == [f"W-2 {i:04d}.pdf" for i in (999, 998, 997, 996, 995)]
    assert (await client.get("/api/taxpayer/library", params={"q": "0999"})).json()["total"] == 1
    html = await client.get("/portal/documents", params={"kind": "upload", "sort": "name", "page": "40"})
    assert "W-2 0999.pdf" in html.text and "W-2 0974.pdf" not in html.text and "page 40 of 40" in html.text


async def test_a_private_upload_is_hidden_from_the_spouse(
    db_settings: Settings, api: Any, dev_server: WorkflowEnvironment
) -> None:
    async with invited_taxpayer(api, db_settings, dev_server) as invited:
        preparer = invited.preparer
        created = await preparer.post(
            "/api/engagements", json={"tax_year": 2025, "taxpayer": TAXPAYER, "spouse": SPOUSE}
        )
        eid = created.json()["id"]
        async with api.client("203.0.113.9") as tp_http, api.client("198.51.100.23") as sp_http:
            for person in (Person(tp_http, TAXPAYER), Person(sp_http, SPOUSE, "spouse")):
                sent = await preparer.post(
                    f"/api/engagements/{eid}/invite", json={"role": person.role, "channel": "email"}
                )
                assert sent.status_code == 200, sent.text
                await asyncio.sleep(0.3)
                token = invite_token(await latest(preparer, "invite", person.data["email"]))
                while token == invited.token:  # the fixture's own invitation, until the joint one is out
                    await asyncio.sleep(0.1)
                    token = invite_token(await latest(preparer, "invite", person.data["email"]))
                await register_and_verify(person, token, preparer)
            files_page = await sp_http.get("/portal/files")
            assert "Keep private from my spouse" in files_page.text
            for name, private in (("Jordan pay stub.pdf", "on"), ("Jordan shared W-2.pdf", "")):
                up = await sp_http.post(
                    "/portal/files",
                    data={"csrf_token": csrf_of(files_page), "private": private},
                    files=[("files", (name, make_pdf(1), "application/pdf"))],
                )
                assert up.status_code == 303, up.text
            with Session(invited.resources.engine) as db:
                stub = db.exec(select(Document).where(Document.name == "Jordan pay stub.pdf")).one()
            assert stub.private

            # The spouse who uploaded it sees it; Shelby sees only the shared one, and nothing leads to it.
            spouse_names = [d["name"] for d in (await sp_http.get("/api/taxpayer/library")).json()["items"]]
            assert "Jordan pay stub.pdf" in spouse_names
            mine = await tp_http.get("/api/taxpayer/library", params={"year": 2025, "kind": "upload"})
            seen = [d["name"] for d in mine.json()["items"]]
            assert "Jordan shared W-2.pdf" in seen and "Jordan pay stub.pdf" not in seen
            for url in (f"/portal/documents/{stub.id}/view", f"/portal/documents/{stub.id}/download"):
                assert (await tp_http.get(url)).status_code == 404
            listed = await tp_http.get("/api/taxpayer/documents", params={"engagement_id": eid})
            assert "Jordan pay stub.pdf" not in listed.text
            assert "Jordan pay stub.pdf" not in (await tp_http.get("/portal/documents")).text


async def test_the_landing_page_shows_each_change_after_it_was_read(two_years: dict[str, Any]) -> None:
    """The page is kept per account under a stamp of what it shows (services/client_hub.py HubCache), and
    the bell under its own: a page read before a change never hides the change after it."""
    client, preparer, first, second = (two_years[k] for k in ("client", "preparer", "first", "second"))

    def unread(page: str) -> int:
        match = re.search(r'aria-label="Notifications, (\d+) unread"', page)
        assert match, page[:500]
        return int(match.group(1))

    before = (await client.get("/portal")).text
    assert "messages from your firm" not in before and "message from your firm" not in before
    assert (await client.get("/portal")).text.count("Get Started") == before.count("Get Started")

    wrote = await preparer.post(f"/api/engagements/{second}/messages", json={"body": "Any questions?"})
    assert wrote.status_code == 201, wrote.text
    after_message = (await client.get("/portal")).text
    assert "Read a message from your firm" in after_message
    assert unread(after_message) == unread(before) + 1

    await send(preparer, first, [("2025 Schedule C.pdf", "taxpayer")])
    for _ in range(50):  # the workflow records the delivery; the page follows its projection
        after_documents = await client.get("/portal")
        if "Sign 2025 Schedule C.pdf" in after_documents.text:
            break
        await asyncio.sleep(0.1)
    assert "Sign 2025 Schedule C.pdf" in after_documents.text
    assert "Received 2025 Schedule C.pdf" in after_documents.text

    read_all = await client.post(
        "/portal/notifications/read-all", data={"csrf_token": csrf_of(after_documents), "next": "/portal"}
    )
    assert read_all.status_code == 303, read_all.text
    assert unread((await client.get("/portal")).text) < unread(after_documents.text)
