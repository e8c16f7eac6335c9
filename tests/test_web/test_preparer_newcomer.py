"""What tripped a first-time preparer (issue 14), over HTTP: the joint 8879 sent with one signer is
questioned, the send form says what it waits for, the timeline shows one line per action and hides page
views, and an empty firm's dashboard says how to start. The same in Chromium:
test_preparer_newcomer_browser.py."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from pdfs import make_pdf
from preparer_steps import Authenticator, csrf_of, enrol_directly, page_login, post_form
from sqlmodel import Session, select

from core import audit
from core.actor import Actor
from core.context import Resources
from core.models import AuditEntry, Engagement, EngagementStatus, OutboxMessage, Signer
from services.preparer_timeline import timeline

pytestmark = pytest.mark.e2e

JOINT = {
    "tax_year": "2025",
    "taxpayer_first_name": "Ravi",
    "taxpayer_last_name": "Patel",
    "taxpayer_ssn": "345-67-8901",
    "taxpayer_email": "ravi@example.com",
    "taxpayer_time_zone": "America/Chicago",
    "spouse_first_name": "Anika",
    "spouse_last_name": "Patel",
    "spouse_ssn": "456-78-9012",
    "spouse_email": "anika@example.com",
    "spouse_time_zone": "America/Chicago",
}


async def created(resources: Resources, eid: int) -> None:
    for _ in range(200):
        with Session(resources.engine) as db:
            if db.get(EngagementStatus, eid) is not None:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"engagement {eid} has no status row")


async def wait_for_invite(resources: Resources, destination: str) -> OutboxMessage:
    for _ in range(200):
        with Session(resources.engine) as db:
            found = db.exec(
                select(OutboxMessage).where(
                    OutboxMessage.destination == destination, OutboxMessage.purpose == "invite"
                )
            ).first()
            if found is not None:
                return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"no invitation to {destination}")


async def test_a_newcomers_engagement_pages(api, worker) -> None:  # type: ignore[no-untyped-def]
    phone = Authenticator(enrol_directly(worker, "ada@firm.test", "Lovelace Tax"))
    async with api.client() as http:
        await page_login(http, "ada@firm.test", phone)

        # 12. An empty firm's dashboard says how to start, with links to both ways.
        first = await http.get("/preparer")
        assert "Start with your first return" in first.text and "No engagements match" not in first.text
        assert 'href="/preparer/engagements/new"' in first.text and 'href="/preparer/import"' in first.text

        new = await post_form(http, "/preparer/engagements/new", "/preparer/engagements/new", JOINT)
        assert new.status_code == 303, new.text
        eid = int(re.search(r"/engagements/(\d+)", new.headers["location"]).group(1))  # type: ignore[union-attr]
        await created(worker, eid)
        assert "Start with your first return" not in (await http.get("/preparer")).text

        # 1. A joint return's documents default to both signers.
        page = await http.get(f"/preparer/engagements/{eid}")
        assert page.text.count('<option value="both" selected>Both</option>') == 4  # 3 rows + template
        # 2. The send form waits, disabled, saying for whom; the live poll carries the same.
        assert re.search(r'<fieldset class="send-fieldset"[^>]* disabled>', page.text)
        assert "Waiting for Ravi Patel to create and verify the Customer Portal account" in page.text
        live = await http.get(f"/preparer/engagements/{eid}/live")
        assert 'id="send-gate"' in live.text and 'data-send-ready="0" hx-swap-oob="true"' in live.text

        # 1. Without the page's script, the server asks before a joint 8879 goes out with one signer.
        one = await http.post(
            f"/preparer/engagements/{eid}/documents",
            data={"csrf_token": csrf_of(page.text), "who-0": "taxpayer", "who-1": "both"},
            files={
                "file-0": ("Form 8879.pdf", make_pdf(1), "application/pdf"),
                "file-1": ("Engagement letter.pdf", make_pdf(1), "application/pdf"),
            },
        )
        assert one.status_code == 422
        assert "Form 8879.pdf: a joint return needs both spouses&#39; signatures" in one.text
        assert 'id="one-signer" data-one-signer>' in one.text  # the confirmation, shown
        confirmed = await http.post(
            f"/preparer/engagements/{eid}/documents",
            data={"csrf_token": csrf_of(one.text), "who-0": "spouse", "one_signer_confirmed": "1"},
            files={"file-0": ("Return 2025.pdf", make_pdf(1), "application/pdf")},
        )
        assert confirmed.status_code == 409 and "verified" in confirmed.text  # past the question
        letter = await http.post(
            f"/preparer/engagements/{eid}/documents",
            data={"csrf_token": csrf_of(one.text), "who-0": "taxpayer"},
            files={"file-0": ("Engagement letter.pdf", make_pdf(1), "application/pdf")},
        )
        assert letter.status_code == 409  # a document that does not name both spouses: no question

        # 4. One line per action: the workflow's echo of a client upload is not a second line, and
        # page views are there, marked, for the "show views" toggle.
        with Session(worker.engine) as db:
            engagement = db.get(Engagement, eid)
            assert engagement is not None
            client = Actor("taxpayer", "taxpayer", "203.0.113.50")
            audit.record(db, action="document.upload", actor=client, engagement_id=eid, detail={"count": 1})
            audit.record(
                db, action="client.upload", actor=client, engagement_id=eid, detail={"role": "taxpayer"}
            )
            db.commit()
            entries = timeline(db, engagement)
        uploads = [t for t in entries if "Uploaded" in t.what]
        assert [t.what for t in uploads] == ["Uploaded 1 file(s)"]
        views = [t for t in entries if t.view]
        assert views and all(t.what == "Opened the engagement" for t in views)
        assert not any(t.view for t in entries if t.what != "Opened the engagement")
        page = await http.get(f"/preparer/engagements/{eid}")
        assert page.text.count('class=" view"') >= 2 and 'id="show-views"' in page.text
        # 15. The scrolling timeline can be focused and is named by its heading.
        assert '<ol class="timeline" tabindex="0" aria-labelledby="timeline-heading">' in page.text
        # 13. Disclosures are buttons that say whether they are open.
        assert 'aria-controls="choice-taxpayer" aria-expanded="false"' in page.text
        assert 'aria-controls="nav-mobile-panel" aria-expanded="false"' in page.text
        assert "<summary" not in page.text

        # 5. A wrong address on the return is corrected where the link is sent, then the link goes there.
        bad = await post_form(
            http,
            f"/preparer/engagements/{eid}",
            f"/preparer/engagements/{eid}/contact",
            {"role": "spouse", "channel": "email", "destination": "anika at example"},
        )
        assert bad.status_code == 422 and "Enter an email address" in bad.text
        assert 'aria-controls="choice-spouse" aria-expanded="true"' in bad.text  # open, with the refusal
        fixed = await post_form(
            http,
            f"/preparer/engagements/{eid}",
            f"/preparer/engagements/{eid}/contact",
            {"role": "spouse", "channel": "email", "destination": " Anika.Patel@Example.org "},
        )
        assert fixed.status_code == 303, fixed.text
        assert fixed.headers["location"].endswith("?m=link-sent-spouse-email#signer-spouse")
        after = await http.get(fixed.headers["location"])
        assert "The link has successfully been sent to Anika Patel (ani*****org)!" in after.text
        with Session(worker.engine) as db:
            spouse = db.exec(select(Signer).where(Signer.engagement_id == eid, Signer.role == "spouse")).one()
            assert spouse.email == "anika.patel@example.org"
            change = db.exec(
                select(AuditEntry).where(
                    AuditEntry.engagement_id == eid, AuditEntry.action == "contact.changed"
                )
            ).one()
            assert change.actor.startswith("preparer:") and change.ip
            assert json.loads(change.detail or "{}")["to"] == "ani*****org"
        assert "Corrected the spouse&#39;s email from ani*****com to ani*****org" in after.text
        assert (await wait_for_invite(worker, "anika.patel@example.org")) is not None
