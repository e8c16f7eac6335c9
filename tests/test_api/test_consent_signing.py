"""Consent to sign electronically and the ways to sign, through the API on a real Temporal dev server.

- Signing is refused (with the consent page named) until the person agrees; allowed after; asked again
  when the firm's text gets a new version; a spouse's consent is not the taxpayer's.
- A typed signature is written in the handwriting font; an uploaded picture is cleaned; each signer's
  method reaches the stamp's caption ("signed electronically (typed)") and the e-signature record.
"""

from __future__ import annotations

import io

import pdfs
import pytest
from client_steps import with_csrf
from journey import joint_return
from PIL import Image, ImageDraw
from sqlmodel import Session, col, select

from core.context import Resources
from core.models import EsignConsent, Signer
from esign.records import collect_record
from services import consent

pytestmark = pytest.mark.e2e


def photo_of_signature(size: tuple[int, int] = (900, 320)) -> bytes:
    """A JPEG of dark ink on off-white paper, as a phone takes it."""
    image = Image.new("RGB", size, (236, 232, 224))
    ImageDraw.Draw(image).line([(60, 220), (260, 90), (420, 240), (640, 80), (840, 200)], (25, 30, 70), 7)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


async def test_signing_waits_for_consent_and_asks_again_when_the_text_changes(
    api, worker: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    preparer, taxpayer, spouse, doc = await joint_return(api, worker)
    typed = {"method": "typed", "typed_name": "Shelby O'Neil"}
    assert (await taxpayer.http.put("/api/taxpayer/signature", data=typed)).status_code == 200

    # Withdrawn: signing is refused and says where to agree; the spouse's consent is not the taxpayer's.
    assert (await taxpayer.http.delete("/api/taxpayer/consent")).status_code == 200
    refused = await taxpayer.http.post(f"/api/taxpayer/documents/{doc}/sign")
    assert refused.status_code == 403
    assert "consent to sign electronically" in refused.json()["detail"]
    assert "/portal/consent" in refused.json()["detail"]
    assert (await taxpayer.http.get("/api/taxpayer/consent")).json()["agreed_at"] is None
    assert (await spouse.http.get("/api/taxpayer/consent")).json()["agreed_at"] is not None

    # Agreeing to a text other than the one shown is refused; to the shown one, signing goes through.
    shown = (await taxpayer.http.get("/api/taxpayer/consent")).json()
    assert "paper copy" in shown["text"] and "withdraw" in shown["text"]
    stale = await taxpayer.http.post("/api/taxpayer/consent", json={"version": shown["version"] + 1})
    assert stale.status_code == 409
    agreed = await taxpayer.http.post("/api/taxpayer/consent", json={"version": shown["version"]})
    assert agreed.status_code == 200 and agreed.json()["agreed_at"]
    signed = await taxpayer.http.post(f"/api/taxpayer/documents/{doc}/sign")
    assert signed.status_code == 200, signed.text

    # The firm's text changes: the spouse, who agreed to version 1, is asked again before signing.
    monkeypatch.setattr(consent, "DEFAULT_VERSION", shown["version"] + 1)
    assert (
        await spouse.http.put("/api/taxpayer/signature", data=typed | {"typed_name": "J O"})
    ).status_code == 200
    again = await spouse.http.post(f"/api/taxpayer/documents/{doc}/sign")
    assert again.status_code == 403 and "changed its terms" in again.json()["detail"]
    assert (
        await spouse.http.post("/api/taxpayer/consent", json={"version": shown["version"] + 1})
    ).status_code == 200
    assert (await spouse.http.post(f"/api/taxpayer/documents/{doc}/sign")).status_code == 200

    with Session(worker.engine) as db:
        rows = db.exec(select(EsignConsent).order_by(col(EsignConsent.id))).all()
        # Each consent is its own person's, from where they were; the withdrawn one stays on record.
        assert [(r.version, r.withdrawn_at is not None, r.ip) for r in rows] == [
            (1, True, "203.0.113.9"),
            (1, False, "198.51.100.7"),
            (1, False, "203.0.113.9"),
            (2, False, "198.51.100.7"),
        ]
        engagement_id = db.exec(select(Signer.engagement_id)).first() or 0
        signers = {s.role: s for s in collect_record(db, worker.store, engagement_id).signers}
    assert "version 1" in signers["taxpayer"].esign_consent
    assert "203.0.113.9" in signers["taxpayer"].esign_consent
    assert "version 2" in signers["spouse"].esign_consent
    assert signers["taxpayer"].signing_method.startswith("Typed name")
    await preparer.aclose()  # type: ignore[attr-defined]


async def test_the_pages_work_without_javascript_and_withdrawing_stops_signing(
    api, worker: Resources
) -> None:  # type: ignore[no-untyped-def]
    """The typed and uploaded forms post plainly (a redirect, or the page with the reason); withdrawing
    on the consent page refuses the next signature until the person agrees again there."""
    preparer, taxpayer, _spouse, doc = await joint_return(api, worker)
    http = taxpayer.http
    with_csrf(http, worker)

    typed = await http.post("/portal/signature", data={"method": "typed", "typed_name": "Shelby O'Neil"})
    assert typed.status_code == 303 and typed.headers["location"] == "/portal/signature?m=signature-saved"
    page = await http.get("/portal/signature?m=signature-saved")
    assert "Signature saved." in page.text and "(typed)" in page.text
    wrong = await http.post(
        "/portal/signature",
        data={"method": "uploaded"},
        files={"image": ("scan.pdf", pdfs.make_pdf(1), "application/pdf")},
    )
    assert wrong.status_code == 415 and "Upload your signature as a PNG or JPEG picture." in wrong.text
    uploaded = await http.post(
        "/portal/signature",
        data={"method": "uploaded"},
        files={"image": ("signature.jpg", photo_of_signature(), "image/jpeg")},
    )
    assert uploaded.status_code == 303
    with Session(worker.engine) as db:
        methods = {s.role.value: s.signature_method for s in db.exec(select(Signer)).all()}
    assert methods == {"taxpayer": "uploaded", "spouse": None}

    withdrawn = await http.post("/portal/consent/withdraw")
    assert withdrawn.status_code == 303
    assert "Read the consent" in (await http.get("/portal/signature")).text
    refused = await http.post(f"/api/taxpayer/documents/{doc}/sign")
    assert refused.status_code == 403
    # The Documents page's Sign button takes them to the consent page, and back to their documents.
    sign_button = await http.post(f"/portal/documents/{doc}/sign")
    assert sign_button.status_code == 303
    assert sign_button.headers["location"] == "/portal/consent?next=/portal/documents"
    live = await http.post(f"/portal/documents/{doc}/sign", headers={"HX-Request": "true"})
    assert live.headers["HX-Redirect"] == "/portal/consent?next=/portal/documents"
    agreed = await http.post("/portal/consent", data={"version": "1", "next": "/portal/signature"})
    assert agreed.status_code == 303
    assert agreed.headers["location"] == "/portal/signature?m=consent-agreed"
    assert (await http.post(f"/api/taxpayer/documents/{doc}/sign")).status_code == 200
    await preparer.aclose()  # type: ignore[attr-defined]
