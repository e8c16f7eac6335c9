"""Consent and the ways to sign in Chromium: a new client reads the consent to sign electronically and
agrees, types their name (shown in the vendored handwriting font), signs Form 8879 on the Documents page,
and finds "signed electronically (typed)" on the signed PDF; before typing, they upload a photo of their
signature (and a PDF is refused). Desktop and phone screenshots of the consent and signature pages, with
`shot`'s checks."""

from __future__ import annotations

import io
import re

import browser
import pdfs
import pytest
from browser import PHONE, Portal, register, shot, verify
from journey import TAXPAYER
from PIL import Image, ImageDraw
from playwright.async_api import expect

pytestmark = pytest.mark.e2e
chromium, portal = browser.chromium, browser.portal  # the fixtures this module uses
DESKTOP_SIZE = {"width": 1280, "height": 900}


def photo_of_signature() -> bytes:
    image = Image.new("RGB", (900, 320), (236, 232, 224))
    ImageDraw.Draw(image).line([(60, 220), (260, 90), (420, 240), (640, 80), (840, 200)], (25, 30, 70), 7)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


async def test_consent_then_a_typed_signature_signs_form_8879(portal: Portal, tmp_path) -> None:  # type: ignore[no-untyped-def]
    eid = await portal.create_engagement(TAXPAYER)
    link = await portal.invite(eid, "taxpayer", TAXPAYER["email"])
    page = await (await portal.person()).new_page()
    await register(page, link, TAXPAYER, "shelby")
    await verify(portal, page, TAXPAYER)
    (doc,) = await portal.send_documents(
        eid, [("Form 8879.pdf", pdfs.make_form_8879(with_fields=True), "taxpayer")]
    )

    # No consent yet: the signature page says so first.
    await page.goto(f"{portal.url}/portal/signature")
    await expect(page.get_by_role("heading", name="Before you sign")).to_be_visible()
    await expect(page.get_by_text("Signature On File")).to_be_hidden()  # none saved yet
    await shot(page, "signature-consent-needed-desktop")
    await page.set_viewport_size(PHONE["viewport"])  # type: ignore[arg-type]
    await shot(page, "signature-consent-needed-phone")
    await page.set_viewport_size(DESKTOP_SIZE)  # type: ignore[arg-type]
    await page.get_by_role("link", name="Read the consent").click()
    await expect(page.get_by_role("heading", name="Consent to Sign Electronically")).to_be_visible()
    for heading in ("Your right to a paper copy", "How to withdraw your consent", "What you need"):
        await expect(page.get_by_role("heading", name=heading)).to_be_visible()
    await shot(page, "consent-desktop")
    await page.set_viewport_size(PHONE["viewport"])  # type: ignore[arg-type]
    await shot(page, "consent-phone")
    await page.set_viewport_size(DESKTOP_SIZE)  # type: ignore[arg-type]
    await page.get_by_role("button", name="I agree").click()
    await expect(page.get_by_text("Thank you: you agreed to sign electronically.")).to_be_visible()
    await expect(page.get_by_role("heading", name="Before you sign")).to_have_count(0)

    # Upload: a photo of a signature on paper; its paper goes, the method is recorded.
    await page.get_by_role("radio", name="Upload").check()
    await page.get_by_label(re.compile("Picture of your signature")).set_input_files(
        {"name": "signature.jpg", "mimeType": "image/jpeg", "buffer": photo_of_signature()}
    )
    await page.get_by_role("button", name="Upload signature").click()
    await expect(page.locator("[data-pad-status]")).to_have_text("Signature saved")
    await expect(page.locator("[data-current-method]")).to_have_text("(uploaded)")
    await shot(page, "signature-uploaded-desktop")
    # A PDF is not a picture of a signature: refused, and said so.
    await page.get_by_label(re.compile("Picture of your signature")).set_input_files(
        {"name": "scan.pdf", "mimeType": "application/pdf", "buffer": pdfs.make_pdf(1)}
    )
    await page.get_by_role("button", name="Upload signature").click()
    await expect(page.locator("[data-pad-status]")).to_have_text(
        "Upload your signature as a PNG or JPEG picture."
    )

    # Type instead: the preview is in the vendored handwriting font; the server writes the same.
    await page.get_by_role("radio", name="Type").check()
    await page.get_by_label("Your name as you sign it").fill("Shelby O'Neil")
    preview = page.locator("[data-typed-preview]")
    await expect(preview).to_have_text("Shelby O'Neil")
    assert "Dancing Script" in await preview.evaluate("e => getComputedStyle(e).fontFamily")
    assert await page.evaluate(  # the vendored file itself, not a system cursive
        "document.fonts.ready.then(() => [...document.fonts].some("
        "f => f.family.includes('Dancing Script') && f.status === 'loaded'))"
    )
    await page.get_by_role("button", name="Save typed signature").click()
    await expect(page.locator("[data-pad-status]")).to_have_text("Signature saved")
    await expect(page.locator("[data-current-method]")).to_have_text("(typed)")
    await shot(page, "signature-typed-desktop")
    await page.set_viewport_size(PHONE["viewport"])  # type: ignore[arg-type]
    await shot(page, "signature-typed-phone")
    await page.set_viewport_size(DESKTOP_SIZE)  # type: ignore[arg-type]

    await page.goto(f"{portal.url}/portal/documents")
    row = page.locator("tr", has_text="Form 8879.pdf")
    await row.get_by_role("button", name=re.compile("^Sign")).click()
    await expect(row.get_by_text("Signed!")).to_be_visible()
    signed = (await portal.preparer.get(f"/api/engagements/{eid}/documents/{doc}/download")).content
    (tmp_path / "typed-8879.pdf").write_bytes(signed)
    assert "Taxpayer - signed electronically (typed)" in pdfs.page_text(signed, 1)

    # The consent page now says when they agreed, and offers to withdraw.
    await page.goto(f"{portal.url}/portal/consent")
    await expect(page.locator("[data-consent-status]")).to_contain_text("You agreed to these terms on")
    await expect(page.get_by_role("button", name="Withdraw consent")).to_be_visible()
    await shot(page, "consent-agreed-desktop")
