"""Decline, a corrected copy, and a signature on paper, in Chromium.

A joint Form 8879: the spouse opens it, declines it with a reason; the preparer's engagement page shows
"Declined" with that reason, and the preparer sends a corrected copy from the same row; the taxpayer signs
the copy on the Documents page; the spouse downloads it, signs by hand and uploads a photo of the page
(a file that is no scan is refused first, on the same page); the engagement completes and the preparer's
page says "Manually signed". axe-core checks every page (tests/browser.py). Screenshots at desktop and
phone width: test-output/screenshots/decline-*.png and paper-*.png.
"""

from __future__ import annotations

import re

import browser
import pdfs
import pytest
from browser import PHONE, Portal, agree_to_sign_electronically, register, shot, verify
from journey import SPOUSE, TAXPAYER
from playwright.async_api import Page, expect
from preparer_steps import Authenticator, enrol_directly
from test_preparer_workspace import log_in

pytestmark = pytest.mark.e2e
chromium, portal = browser.chromium, browser.portal  # the fixtures this module uses
DESKTOP_SIZE = {"width": 1280, "height": 900}
REASON = "The refund goes to an account we closed last year"


async def both_ways(page: Page, name: str) -> None:
    """Desktop and phone screenshots of the page as it is, with `shot`'s checks."""
    await shot(page, f"{name}-desktop")
    await page.set_viewport_size(PHONE["viewport"])  # type: ignore[arg-type]
    await shot(page, f"{name}-phone")
    await page.set_viewport_size(DESKTOP_SIZE)  # type: ignore[arg-type]


async def client(portal: Portal, eid: int, person: dict[str, str], role: str, username: str) -> Page:
    link = await portal.invite(eid, role, person["email"])
    page = await (await portal.person()).new_page()
    await register(page, link, person, username)
    await verify(portal, page, person)
    return page


async def test_decline_a_corrected_copy_and_a_signature_on_paper(portal: Portal) -> None:
    eid = await portal.create_engagement(TAXPAYER, SPOUSE)
    taxpayer = await client(portal, eid, TAXPAYER, "taxpayer", "shelby")
    spouse = await client(portal, eid, SPOUSE, "spouse", "jordan")
    (form,) = await portal.send_documents(
        eid, [("Form 8879.pdf", pdfs.make_form_8879(with_fields=True), "both")]
    )

    # The spouse opens the form and declines it, with a reason.
    await spouse.goto(f"{portal.url}/portal/documents")
    row = spouse.locator("tr", has_text="Form 8879.pdf")
    await row.get_by_role("link", name=re.compile("^Decline or sign on paper")).click()
    await expect(spouse.get_by_role("heading", name="Can't sign it electronically?")).to_be_visible()
    await both_ways(spouse, "decline-form")
    await spouse.get_by_label("What is wrong").fill(REASON)
    await spouse.get_by_role("button", name="Decline Form 8879.pdf").click()
    await expect(spouse.get_by_text("Declined. Your preparer has been told")).to_be_visible()
    declined = spouse.locator("tr", has_text="Form 8879.pdf")
    await expect(declined.get_by_text("You declined it")).to_be_visible()
    await both_ways(spouse, "decline-done")

    # The preparer sees "Declined" and the reason, and sends a corrected copy from the same row.
    secret = enrol_directly(portal.resources, "bea@firm.test", "Lovelace Tax", "Bea Colleague")
    desk = await (await portal.person()).new_page()
    await log_in(desk, portal, "bea@firm.test", Authenticator(secret))
    await desk.goto(f"{portal.url}/preparer/engagements/{eid}")
    declined_row = desk.locator(f"#sent-{form}")
    await expect(declined_row.locator("[data-signature-status]")).to_have_text("Declined")
    await expect(declined_row).to_contain_text(REASON)
    await expect(desk.locator("details.fix-document")).to_have_attribute("open", "")
    await both_ways(desk, "decline-preparer")
    fix = desk.locator(f"#fix-{form}")
    await fix.get_by_label("Corrected PDF").set_input_files(
        {
            "name": "Form 8879 corrected.pdf",
            "mimeType": "application/pdf",
            "buffer": pdfs.make_form_8879(with_fields=True),
        }
    )
    await fix.get_by_role("button", name="Send the corrected copy").click()
    await expect(desk.get_by_text("The corrected copy is on the Customer Portal")).to_be_visible()
    await expect(desk.locator(f"#sent-{form} [data-signature-status]")).to_have_text(
        "Replaced by a corrected copy"
    )
    corrected_row = desk.locator("tr", has_text="Form 8879 corrected.pdf")
    await expect(corrected_row.locator("[data-signature-status]")).to_have_text("Awaiting signature")

    # The taxpayer signs the corrected copy electronically.
    await taxpayer.goto(f"{portal.url}/portal/signature")
    await agree_to_sign_electronically(taxpayer)
    await taxpayer.get_by_role("radio", name="Type").check()
    await taxpayer.get_by_label("Your name as you sign it").fill("Shelby O'Neil")
    await taxpayer.get_by_role("button", name="Save typed signature").click()
    await expect(taxpayer.locator("[data-pad-status]")).to_have_text("Signature saved")
    await taxpayer.goto(f"{portal.url}/portal/documents")
    mine = taxpayer.locator("tr", has_text="Form 8879 corrected.pdf")
    await mine.get_by_role("button", name=re.compile("^Sign")).click()
    await expect(mine.get_by_text("Signed!")).to_be_visible()
    await expect(taxpayer.locator("tr", has_text=re.compile(r"^\s*Form 8879\.pdf"))).to_contain_text(
        "Replaced by a corrected copy"
    )

    # The spouse signs it on paper: a file that is no scan is refused on the page, a photo is taken.
    await spouse.goto(f"{portal.url}/portal/documents")
    await (
        spouse.locator("tr", has_text="Form 8879 corrected.pdf")
        .get_by_role("link", name=re.compile("^Decline or sign on paper"))
        .click()
    )
    scan_field = spouse.get_by_label(re.compile("^Scan or photo"))
    await scan_field.set_input_files({"name": "scan.jpg", "mimeType": "image/jpeg", "buffer": b"MZ\x90\x00"})
    await spouse.get_by_role("button", name="Upload my signed copy").click()
    await expect(spouse.locator("#scan-error")).to_contain_text("upload the scan as a PDF or a photo")
    await both_ways(spouse, "paper-refused")
    await spouse.get_by_label(re.compile("^Scan or photo")).set_input_files(
        {"name": "signed.jpg", "mimeType": "image/jpeg", "buffer": pdfs.photo_of_signed_page()}
    )
    await spouse.get_by_role("button", name="Upload my signed copy").click()
    await expect(spouse.get_by_text("Thank you: your signature on paper is recorded.")).to_be_visible()
    signed_row = spouse.locator("tr", has_text=re.compile(r"^\s*Form 8879 corrected\.pdf"))
    await expect(signed_row.get_by_text("Signed on paper", exact=True)).to_be_visible()
    await both_ways(spouse, "paper-done")

    # Every signature is in: the engagement completes, and the preparer's page says how it was signed.
    await desk.reload()
    corrected_row = desk.locator("#doc-lists tr", has_text=re.compile(r"^\s*Form 8879 corrected\.pdf"))
    await expect(corrected_row.locator("[data-signature-status]")).to_have_text(
        "Manually signed", timeout=30_000
    )
    await expect(corrected_row).to_contain_text("signed on paper")
    await both_ways(desk, "paper-preparer")
