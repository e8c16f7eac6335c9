"""Firm isolation: a preparer of another firm reaches none of this firm's engagements, documents,
messages or audit entries, through any JSON route or page, and changes nothing by trying."""

from __future__ import annotations

import asyncio

import pytest
from journey import TAXPAYER
from pdfs import make_pdf
from preparer_steps import Authenticator, api_login, csrf_of, enrol_directly, page_login
from sqlmodel import Session, col, select

from core.models import AuditEntry, ChatMessage, Direction, Document, EngagementStatus, Preparer

pytestmark = pytest.mark.e2e


async def test_another_firm_reaches_nothing(api, worker) -> None:  # type: ignore[no-untyped-def]
    ada = Authenticator(enrol_directly(worker, "ada@lovelace.test", "Lovelace Tax"))
    eve = Authenticator(enrol_directly(worker, "eve@other.test", "Other Firm", "Eve Other"))
    async with api.client() as mine, api.client() as theirs, api.client() as their_pages:
        await api_login(mine, "ada@lovelace.test", ada)
        eid = (await mine.post("/api/engagements", json={"tax_year": 2025, "taxpayer": TAXPAYER})).json()[
            "id"
        ]
        await mine.post(f"/api/engagements/{eid}/messages", json={"body": "private note to the client"})
        key = worker.store.new_key("uploads")
        worker.store.put(key, make_pdf(1, "W-2"))
        with Session(worker.engine) as db:
            doc = Document(
                engagement_id=eid,
                direction=Direction.TO_PREPARER,
                upload_ref=key,
                name="W-2.pdf",
                content_type="application/pdf",
                size=10,
                storage_key=key,
                sha256="x",
                current_key=key,
                current_sha256="x",
                uploaded_by="taxpayer:taxpayer",
            )
            db.add(doc)
            db.commit()
            doc_id = doc.id
            ada_id = db.exec(select(Preparer.id).where(Preparer.email == "ada@lovelace.test")).one()
        for _ in range(100):
            with Session(worker.engine) as db:
                if db.get(EngagementStatus, eid) is not None:
                    break
            await asyncio.sleep(0.1)
        assert (await mine.get("/api/engagements?q=shelby")).json()["total"] == 1

        await api_login(theirs, "eve@other.test", eve)
        listing = (await theirs.get("/api/engagements?q=shelby")).json()
        assert listing["total"] == 0 and listing["items"] == [] and sum(listing["counts"].values()) == 0
        json_routes = [
            ("GET", f"/api/engagements/{eid}", None),
            ("POST", f"/api/engagements/{eid}/invite", {"json": {"channel": "email"}}),
            (
                "POST",
                f"/api/engagements/{eid}/documents",
                {
                    "files": [("files", ("a.pdf", make_pdf(1), "application/pdf"))],
                    "data": {"signers": ["none"]},
                },
            ),
            ("GET", f"/api/engagements/{eid}/documents/{doc_id}/download", None),
            ("POST", f"/api/engagements/{eid}/cancel", {"json": {"reason": "x"}}),
            ("POST", f"/api/engagements/{eid}/unlock", {"json": {"role": "taxpayer"}}),
            ("GET", f"/api/engagements/{eid}/messages", None),
            ("POST", f"/api/engagements/{eid}/messages", {"json": {"body": "hello"}}),
            ("GET", f"/api/engagements/{eid}/record", None),
        ]
        for method, url, kwargs in json_routes:
            response = await theirs.request(method, url, **(kwargs or {}))
            assert response.status_code == 404, (method, url, response.status_code)

        await page_login(their_pages, "eve@other.test", eve)
        dashboard = await their_pages.get("/preparer?q=shelby")
        assert f"row-{eid}" not in dashboard.text and "No engagements match." in dashboard.text
        assert f"row-{eid}" not in (await their_pages.get("/preparer/dashboard/results")).text
        token = csrf_of(dashboard.text)
        page_routes = [
            ("GET", f"/preparer/engagements/{eid}", None),
            ("GET", f"/preparer/engagements/{eid}/live", None),
            ("GET", f"/preparer/engagements/{eid}/messages/feed", None),
            ("GET", f"/preparer/engagements/{eid}/documents/{doc_id}/download", None),
            ("POST", f"/preparer/engagements/{eid}/invite", {"role": "taxpayer", "channel": "email"}),
            ("POST", f"/preparer/engagements/{eid}/messages", {"body": "hello"}),
            ("POST", f"/preparer/engagements/{eid}/cancel", {"reason": "x"}),
            ("POST", f"/preparer/engagements/{eid}/unlock", {"role": "taxpayer"}),
            ("POST", f"/preparer/engagements/{eid}/documents", {"who-0": "none"}),
            ("POST", f"/preparer/settings/preparers/{ada_id}/deactivate", {}),
            ("POST", f"/preparer/settings/preparers/{ada_id}/reset-mfa", {}),
        ]
        for method, url, data in page_routes:
            if method == "GET":
                response = await their_pages.get(url)
            else:
                response = await their_pages.post(url, data={**(data or {}), "csrf_token": token})
            assert response.status_code == 404, (method, url, response.status_code)
            assert "private note" not in response.text and "Shelby" not in response.text

    with Session(worker.engine) as db:
        assert db.exec(select(Preparer).where(Preparer.id == ada_id)).one().active
        assert [m.body for m in db.exec(select(ChatMessage))] == ["private note to the client"]
        eve_id = db.exec(select(Preparer.id).where(Preparer.email == "eve@other.test")).one()
        touched = db.exec(
            select(AuditEntry).where(
                AuditEntry.actor == f"preparer:{eve_id}", col(AuditEntry.engagement_id).is_not(None)
            )
        ).all()
        assert touched == []  # nothing of ours was read or changed in their name
        assert db.get(EngagementStatus, eid).stage == "created"  # type: ignore[union-attr]
