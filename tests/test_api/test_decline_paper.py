"""Declining a document, a corrected copy in its place, and signatures on paper, through the API on a real
Temporal dev server with the real activities.

A joint Form 8879: the spouse declines it with a reason (the preparer hears at once, without the reason
in the mail); a fake PDF sent as the correction is refused and changes nothing; the corrected copy replaces
it; the taxpayer signs it electronically, the spouse on paper with a photo of the signed page; the
engagement completes and the record says which signature was on paper and who vouched for it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pdfs
import pytest
from journey import joint_return, latest
from sqlmodel import Session, select

from core.context import Resources
from core.models import AuditEntry, Document, Engagement, Signature
from esign.records import collect_record

pytestmark = pytest.mark.e2e

REASON = "The refund goes to an account we closed last year"


async def documents(preparer: Any, eid: int) -> dict[int, dict[str, Any]]:
    body = (await preparer.get(f"/api/engagements/{eid}")).json()
    return {d["id"]: d for d in body["documents"]}


async def stage(preparer: Any, eid: int) -> str:
    status: str = (await preparer.get(f"/api/engagements/{eid}")).json()["status"]["stage"]
    return status


async def until_stage(preparer: Any, eid: int, wanted: str) -> None:
    for _ in range(150):
        if await stage(preparer, eid) == wanted:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the engagement never reached {wanted}: {await stage(preparer, eid)}")


async def test_decline_correct_and_sign_on_paper(api, worker: Resources) -> None:  # type: ignore[no-untyped-def]
    preparer, taxpayer, spouse, form = await joint_return(api, worker)
    with Session(worker.engine) as db:
        eid = db.get(Document, form).engagement_id  # type: ignore[union-attr]

    # The spouse declines, with a reason; a double submit declines once.
    for _ in range(2):
        declined = await spouse.http.post(f"/api/taxpayer/documents/{form}/decline", json={"reason": REASON})
        assert declined.status_code == 200, declined.text
    await until_stage(preparer, eid, "declined")
    doc = (await documents(preparer, eid))[form]
    assert (doc["signature_status"], doc["signature_status_label"]) == ("declined", "Declined")
    [mine] = [s for s in doc["signatures"] if s["role"] == "spouse"]
    assert mine["decline_reason"] == REASON and mine["signed_at"] is None
    notice = await latest(preparer, "declined", "ada@firm.test")
    assert "declined to sign" in notice["body"] and REASON not in notice["body"]
    refused = await spouse.http.post(f"/api/taxpayer/documents/{form}/sign")
    assert refused.status_code == 409
    assert refused.json()["detail"] == "You declined Form 8879.pdf. Your preparer will send a corrected copy."

    # A fake PDF as the correction is refused, and nothing changes.
    fake = await preparer.post(
        f"/api/engagements/{eid}/documents/{form}/replace",
        files={"file": ("Form 8879.pdf", b"%PDF-1.7 this is not a PDF", "application/pdf")},
        data={"signer": "both"},
    )
    assert fake.status_code in (400, 422), fake.text
    assert list(await documents(preparer, eid)) == [form]
    assert await stage(preparer, eid) == "declined"

    corrected = await preparer.post(
        f"/api/engagements/{eid}/documents/{form}/replace",
        files={"file": ("Form 8879 corrected.pdf", pdfs.make_form_8879(with_fields=True), "application/pdf")},
        data={"signer": "both"},
    )
    assert corrected.status_code == 200, corrected.text
    docs = await documents(preparer, eid)
    [new] = [d for d in docs if d != form]
    assert docs[form]["replaced_by"] == new
    assert docs[form]["signature_status"] == "replaced"
    assert docs[new]["signature_status"] == "awaiting_signature"
    await until_stage(preparer, eid, "documents_sent")
    stale = await taxpayer.http.post(f"/api/taxpayer/documents/{form}/sign")
    assert stale.status_code == 409 and "replaced by a corrected copy" in stale.json()["detail"]

    # The taxpayer signs electronically; the spouse on paper. A file that is no scan is refused first.
    assert (
        await taxpayer.http.put("/api/taxpayer/signature", data={"method": "typed", "typed_name": "Shelby"})
    ).status_code == 200
    assert (await taxpayer.http.post(f"/api/taxpayer/documents/{new}/sign")).status_code == 200
    assert (await documents(preparer, eid))[new]["signature_status"] == "partially_signed"
    not_a_scan = await spouse.http.post(
        f"/api/taxpayer/documents/{new}/paper", files={"scan": ("scan.jpg", b"MZ\x90\x00", "image/jpeg")}
    )
    assert not_a_scan.status_code == 415, not_a_scan.text
    scan = pdfs.photo_of_signed_page()
    on_paper = await spouse.http.post(
        f"/api/taxpayer/documents/{new}/paper", files={"scan": ("signed.jpg", scan, "image/jpeg")}
    )
    assert on_paper.status_code == 200, on_paper.text
    await until_stage(preparer, eid, "completed")

    doc = (await documents(preparer, eid))[new]
    assert doc["signature_status"] == "manually_signed"
    assert {s["role"]: s["method"] for s in doc["signatures"]} == {
        "taxpayer": "electronic",
        "spouse": "paper",
    }
    with Session(worker.engine) as db:
        uploads = db.exec(select(Document).where(Document.engagement_id == eid)).all()
        [stored_scan] = [d for d in uploads if d.name.startswith("Signed on paper")]
        assert stored_scan.content_type == "image/jpeg" and worker.store.get(stored_scan.storage_key) == scan
        paper = db.exec(
            select(Signature).where(Signature.document_id == new, Signature.role == "spouse")
        ).one()
        assert (paper.method, paper.attested_by, paper.scan_document_id) == (
            "paper",
            "taxpayer:spouse",
            stored_scan.id,
        )
        record = collect_record(db, worker.store, eid)
        certificate = worker.store.get(db.get(Engagement, eid).certificate_key)  # type: ignore[union-attr, arg-type]
    by_id = {d.document_id: d for d in record.documents}
    assert by_id[form].replaced_by == new
    [spouse_event] = [e for e in by_id[new].signatures if e.role == "spouse"]
    assert (spouse_event.method, spouse_event.scan_sha256) == ("paper", stored_scan.sha256)
    assert by_id[new].sealed_at is not None and by_id[form].sealed_at is None
    # The sealed certificate says which signature was on paper, its scan and who vouched for it.
    text = " ".join(" ".join(pdfs.page_text(certificate, n).split()) for n in (1, 2))
    assert "on paper (a manual signature)" in text and "attested by taxpayer:spouse" in text
    assert stored_scan.sha256[:20] in text.replace(" ", "")
    assert f"replaced by a corrected copy, document {new}" in text

    # The firm downloads the sealed copy: its status says so.
    downloaded = await preparer.get(f"/api/engagements/{eid}/documents/{new}/download")
    assert downloaded.status_code == 200 and downloaded.content.startswith(b"%PDF")
    assert (await documents(preparer, eid))[new]["signature_status"] == "downloaded_by_firm"
    await preparer.aclose()


async def test_the_preparer_attests_a_paper_signature_and_a_refusal_keeps_no_scan(
    api, worker: Resources
) -> None:  # type: ignore[no-untyped-def]
    preparer, _taxpayer, _spouse, form = await joint_return(api, worker)
    with Session(worker.engine) as db:
        eid = db.get(Document, form).engagement_id  # type: ignore[union-attr]
    scan = pdfs.make_pdf(1)
    nobody = await preparer.post(
        f"/api/engagements/{eid}/documents/{form}/paper",
        files={"scan": ("signed.pdf", scan, "application/pdf")},
        data={"roles": ["accountant"]},
    )
    assert nobody.status_code == 422, nobody.text
    both = await preparer.post(
        f"/api/engagements/{eid}/documents/{form}/paper",
        files={"scan": ("signed.pdf", scan, "application/pdf")},
        data={"roles": ["taxpayer", "spouse", "spouse"]},  # a role named twice counts once
    )
    assert both.status_code == 200, both.text
    await until_stage(preparer, eid, "completed")
    again = await preparer.post(
        f"/api/engagements/{eid}/documents/{form}/paper",
        files={"scan": ("signed.pdf", scan, "application/pdf")},
        data={"roles": ["spouse"]},
    )
    assert again.status_code == 409, again.text
    with Session(worker.engine) as db:
        scans = db.exec(select(Document).where(Document.name.startswith("Signed on paper"))).all()  # type: ignore[attr-defined]
        assert len(scans) == 1  # the refused one left nothing behind
        [entry] = db.exec(select(AuditEntry).where(AuditEntry.action == "document.signed_on_paper")).all()
        assert json.loads(entry.detail)["roles"] == "spouse,taxpayer"  # each signer once
        rows = db.exec(select(Signature).where(Signature.document_id == form)).all()
        assert {(r.role.value, r.method, r.attested_by) for r in rows} == {
            ("taxpayer", "paper", f"preparer:{preparer_id(db)}"),
            ("spouse", "paper", f"preparer:{preparer_id(db)}"),
        }
    await preparer.aclose()


def preparer_id(db: Session) -> int:
    from core.models import Preparer

    return db.exec(select(Preparer.id)).one() or 0
