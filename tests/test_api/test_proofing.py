"""Identity proofing before a remote 8879 signature, through the API on a real Temporal dev server with the
real activities and the development provider (esign/proofing.py).

A joint Form 8879 under the installation's default rules (8879 and 8878 need proofing): signing is refused
until the signer passed a set; the questions wait for the preparer's date of birth and address; a reload
shows the same open set; the taxpayer fails a set and passes the next; the spouse fails three, is sent to
paper, gets one more set from the preparer (only with a reason, audited), fails it too and signs on paper.
The record and the certificate say so, and neither the answers nor the facts reach the log.
"""

from __future__ import annotations

import asyncio
import logging

import pdfs
import pytest
from journey import joint_return
from proofing_steps import SPOUSE_DETAILS, TAXPAYER_DETAILS, answer_a_set, answers, enter_details
from sqlmodel import Session, select

from core.config import Settings
from core.context import Resources
from core.models import AuditEntry, Document, IdentityCheck
from esign.records import collect_record

pytestmark = pytest.mark.e2e


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The installation's default: Forms 8879 and 8878 need identity proofing (tests/conftest turns it off
    for the tests of everything else)."""
    return settings.model_copy(update={"proofing_forms": "8879,8878"})


async def test_a_joint_8879_one_spouse_passes_the_other_signs_on_paper(  # type: ignore[no-untyped-def]
    api, worker: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    preparer, taxpayer, spouse, form = await joint_return(api, worker)
    with Session(worker.engine) as db:
        eid = db.get(Document, form).engagement_id  # type: ignore[union-attr]

    saved = await taxpayer.http.put(
        "/api/taxpayer/signature", data={"method": "typed", "typed_name": "Shelby"}
    )
    assert saved.status_code == 200, saved.text
    # Signing is refused until the signer's identity is proofed; the refusal points to the questions.
    refused = await taxpayer.http.post(f"/api/taxpayer/documents/{form}/sign")
    assert refused.status_code == 403 and "/portal/identity" in refused.json()["detail"]
    # The questions need the preparer's date of birth and address first.
    early = await taxpayer.http.post("/api/taxpayer/identity/sets")
    assert early.status_code == 409 and "not yet entered" in early.json()["detail"]
    assert (await taxpayer.http.get("/api/taxpayer/identity")).json()["sets"] == []  # nothing used up
    bad = await preparer.put(
        f"/api/engagements/{eid}/signers/taxpayer/identity-details", json=TAXPAYER_DETAILS | {"state": "Mass"}
    )
    assert bad.status_code == 422
    await enter_details(preparer, eid, "taxpayer", TAXPAYER_DETAILS)
    await enter_details(preparer, eid, "spouse", SPOUSE_DETAILS)

    # A reload shows the same open set; a set with a question left out is refused and stays open.
    first = (await taxpayer.http.post("/api/taxpayer/identity/sets")).json()
    again = (await taxpayer.http.post("/api/taxpayer/identity/sets")).json()
    assert (again["id"], again["set_number"], again["questions"]) == (first["id"], 1, first["questions"])
    assert first["real_check"] is False and len(first["questions"]) == 5
    partial = answers(first["questions"], TAXPAYER_DETAILS, right=5)
    partial.pop("q3")
    incomplete = await taxpayer.http.post(
        f"/api/taxpayer/identity/sets/{first['id']}/answers", json={"answers": partial}
    )
    assert incomplete.status_code == 422 and "Answer every question" in incomplete.json()["detail"]

    # The taxpayer gets 2 of 5 right (fails), then 3 of 5 (passes) on the second set. A double submit of
    # the answers grades once.
    failed = await taxpayer.http.post(
        f"/api/taxpayer/identity/sets/{first['id']}/answers",
        json={"answers": answers(first["questions"], TAXPAYER_DETAILS, right=2)},
    )
    assert failed.json()["verified"] is False and failed.json()["sets_left"] == 2
    second = (await taxpayer.http.post("/api/taxpayer/identity/sets")).json()
    assert second["set_number"] == 2
    body = {"answers": answers(second["questions"], TAXPAYER_DETAILS, right=3)}
    results = await asyncio.gather(
        *(
            taxpayer.http.post(f"/api/taxpayer/identity/sets/{second['id']}/answers", json=body)
            for _ in range(2)
        )
    )
    assert all(r.json()["verified"] for r in results)
    standing = (await taxpayer.http.get("/api/taxpayer/identity")).json()
    assert [s["outcome"] for s in standing["sets"]] == ["failed", "passed"]
    assert all(s["reference_id"].startswith("DEV-") for s in standing["sets"])
    signed = await taxpayer.http.post(f"/api/taxpayer/documents/{form}/sign")
    assert signed.status_code == 200, signed.text
    # Passed: no more sets.
    assert (await taxpayer.http.post("/api/taxpayer/identity/sets")).status_code == 409

    # The spouse fails three sets: the form is then signed on paper, and no fourth set is given.
    for number in (1, 2, 3):
        result = await answer_a_set(spouse.http, SPOUSE_DETAILS, right=2)
        assert result["sets_left"] == 3 - number
    assert result["sign_on_paper"] is True
    no_more = await spouse.http.post("/api/taxpayer/identity/sets")
    assert no_more.status_code == 403 and "signed on paper" in no_more.json()["detail"]
    to_paper = await spouse.http.post(f"/api/taxpayer/documents/{form}/sign")
    assert to_paper.status_code == 403 and "signed on paper" in to_paper.json()["detail"]

    # The preparer sees each set's outcome (never the answers), and allows one more only with a reason.
    seen = (await preparer.get(f"/api/engagements/{eid}/signers/spouse/identity")).json()
    assert [s["outcome"] for s in seen["sets"]] == ["failed"] * 3 and "answers" not in str(seen)
    no_reason = await preparer.post(
        f"/api/engagements/{eid}/signers/spouse/identity/unlock", json={"reason": " "}
    )
    assert no_reason.status_code == 422
    reason = "Client called: her ZIP code changed last year"
    unlocked = await preparer.post(
        f"/api/engagements/{eid}/signers/spouse/identity/unlock", json={"reason": reason}
    )
    assert unlocked.json()["sets_left"] == 1, unlocked.text
    twice = await preparer.post(
        f"/api/engagements/{eid}/signers/spouse/identity/unlock", json={"reason": reason}
    )
    assert twice.status_code == 409  # one more set, not one per click
    assert (await answer_a_set(spouse.http, SPOUSE_DETAILS, right=1))["sign_on_paper"] is True

    # Signed on paper: the engagement completes.
    scan = pdfs.photo_of_signed_page()
    paper = await spouse.http.post(
        f"/api/taxpayer/documents/{form}/paper", files={"scan": ("signed.jpg", scan, "image/jpeg")}
    )
    assert paper.status_code == 200, paper.text
    for _ in range(150):
        stage = (await preparer.get(f"/api/engagements/{eid}")).json()["status"]["stage"]
        if stage == "completed":
            break
        await asyncio.sleep(0.2)
    assert stage == "completed"

    with Session(worker.engine) as db:
        record = collect_record(db, worker.store, eid)
        by_role = {s.role: s for s in record.signers}
        audit = db.exec(select(AuditEntry).where(AuditEntry.action == "identity.unlocked")).one()
        checks = db.exec(select(IdentityCheck).order_by(IdentityCheck.id)).all()  # type: ignore[arg-type]
    assert by_role["taxpayer"].identity_proofing.startswith("Passed: knowledge-based authentication")
    assert "set 1 failed" in by_role["taxpayer"].identity_proofing
    assert "set 2 passed" in by_role["taxpayer"].identity_proofing
    assert by_role["spouse"].identity_proofing.startswith("Not passed")
    assert (
        "set 4 failed" in by_role["spouse"].identity_proofing
        and reason in by_role["spouse"].identity_proofing
    )
    assert "not a real identity check" in by_role["spouse"].identity_proofing
    assert reason in audit.detail and "spouse" in audit.detail
    assert [(c.role.value, c.set_number, c.outcome) for c in checks] == [
        ("taxpayer", 1, "failed"),
        ("taxpayer", 2, "passed"),
        *(("spouse", n, "failed") for n in (1, 2, 3, 4)),
    ]
    # The facts the questions are about reach neither the log nor the audit trail.
    logged = caplog.text + " ".join(str(e) for e in caplog.records)
    for secret in ("Oak Ridge", "02446", "1984-03-09", "123-45-6789"):
        assert secret not in logged


async def test_an_8879_needs_no_proofing_when_the_firm_turns_it_off(api, worker: Resources) -> None:  # type: ignore[no-untyped-def]
    preparer, taxpayer, _spouse, form = await joint_return(api, worker)
    await taxpayer.http.put("/api/taxpayer/signature", data={"method": "typed", "typed_name": "Shelby"})
    assert (await taxpayer.http.post(f"/api/taxpayer/documents/{form}/sign")).status_code == 403
    rules = await preparer.put("/api/firm/identity-proofing", json={"provider": "dev", "forms": ["8878"]})
    assert rules.status_code == 200, rules.text
    signed = await taxpayer.http.post(f"/api/taxpayer/documents/{form}/sign")
    assert signed.status_code == 200, signed.text
    back = await preparer.put("/api/firm/identity-proofing", json={"provider": "http", "forms": ["8879"]})
    assert back.status_code == 422 and "PORTICO_PROOFING_URL" in back.json()["detail"]
