"""Signing order through the API on a real Temporal dev server: on a joint return where the taxpayer signs
first, the spouse's signature is refused (with who goes first), their Documents page and landing page say
whom they wait for, the taxpayer's signature sends the spouse a message, and then the spouse signs."""

from __future__ import annotations

import pytest
from journey import joint_return, latest
from sqlmodel import Session

from core.context import Resources
from core.models import Document, Engagement

pytestmark = pytest.mark.e2e


async def test_the_spouse_waits_for_the_taxpayer(api, worker: Resources) -> None:  # type: ignore[no-untyped-def]
    preparer, taxpayer, spouse, form = await joint_return(api, worker, taxpayer_signs_first=True)
    with Session(worker.engine) as db:
        eid = db.get(Document, form).engagement_id  # type: ignore[union-attr]
        assert db.get(Engagement, eid).taxpayer_signs_first  # type: ignore[union-attr]
    assert (await preparer.get(f"/api/engagements/{eid}")).json()["taxpayer_signs_first"] is True
    typed = {"method": "typed", "typed_name": "Jordan O'Neil"}
    assert (await spouse.http.put("/api/taxpayer/signature", data=typed)).status_code == 200

    refused = await spouse.http.post(f"/api/taxpayer/documents/{form}/sign")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "Shelby O'Neil signs Form 8879.pdf first: you can sign it once they have."
    )
    documents = await spouse.http.get("/portal/documents")
    assert "Waiting for Shelby to sign first" in documents.text
    assert (await spouse.http.get("/api/taxpayer/me")).json()["documents_waiting"] == 0  # not theirs yet
    home = (await spouse.http.get("/api/taxpayer/hub")).json()
    [task] = [t for t in home["tasks"] if t["kind"] == "sign"]
    assert task["detail"].startswith("Waiting for Shelby to sign first")

    typed_taxpayer = {"method": "typed", "typed_name": "Shelby O'Neil"}
    assert (await taxpayer.http.put("/api/taxpayer/signature", data=typed_taxpayer)).status_code == 200
    assert (await taxpayer.http.post(f"/api/taxpayer/documents/{form}/sign")).status_code == 200
    turn = await latest(preparer, "signing_turn", spouse.data["email"])
    assert "your spouse has signed" in turn["body"]
    assert "Waiting for" not in (await spouse.http.get("/portal/documents")).text
    assert (await spouse.http.get("/api/taxpayer/me")).json()["documents_waiting"] == 1
    signed = await spouse.http.post(f"/api/taxpayer/documents/{form}/sign")
    assert signed.status_code == 200, signed.text
    await preparer.aclose()


async def test_the_order_is_only_for_a_joint_return(api, worker: Resources) -> None:  # type: ignore[no-untyped-def]
    from journey import TAXPAYER, login_preparer, make_preparer

    preparer = api.client()
    await login_preparer(preparer, make_preparer(worker))
    created = await preparer.post(
        "/api/engagements", json={"tax_year": 2025, "taxpayer": TAXPAYER, "taxpayer_signs_first": True}
    )
    assert created.status_code == 201, created.text
    assert created.json()["taxpayer_signs_first"] is False
    await preparer.aclose()
