"""The client hub in Chromium: a client with a 2025 and a 2026 return sees both years' tasks on the landing
page, follows Get Started to the 2025 return, and finds, filters and signs documents on the one Documents
page; desktop (1280) and phone (375) screenshots, with the layout and axe-core checks `shot` runs."""

from __future__ import annotations

import re

import browser
import pytest
from browser import PHONE, Portal, draw_with_mouse, register, save_signature, shot, verify
from journey import TAXPAYER
from pdfs import make_pdf
from playwright.async_api import expect

pytestmark = pytest.mark.e2e
chromium, portal = browser.chromium, browser.portal  # the fixtures this module uses
DESKTOP_SIZE = {"width": 1280, "height": 900}


async def test_landing_and_documents_pages_across_two_years(portal: Portal) -> None:
    first = await portal.create_engagement(TAXPAYER)
    link = await portal.invite(first, "taxpayer", TAXPAYER["email"])
    context = await portal.person()
    page = await context.new_page()
    await register(page, link, TAXPAYER, "shelby")
    await verify(portal, page, TAXPAYER)

    # The 2026 return joins the same account after the identity check.
    created = await portal.preparer.post("/api/engagements", json={"tax_year": 2026, "taxpayer": TAXPAYER})
    second = int(created.json()["id"])
    before = await portal.last_outbox_id()
    sent = await portal.preparer.post(f"/api/engagements/{second}/invite", json={"channel": "email"})
    assert sent.status_code == 200, sent.text
    message = await portal.message("invite", TAXPAYER["email"], newer_than=before)
    token = re.search(r"/invite/(\S+)", message["body"]).group(1)  # type: ignore[union-attr]
    await page.goto(f"{portal.url}/portal/add-return/{token}")
    await page.get_by_label("Last name").fill(TAXPAYER["last_name"])
    await page.get_by_label("Last 4 of SSN").fill(TAXPAYER["ssn"][-4:])
    await page.get_by_role("button", name="Add this return").click()
    await expect(page.get_by_text("Your new return is added")).to_be_visible()

    await portal.send_documents(
        first,
        [("2025 Form 8879.pdf", make_pdf(1, "8879"), "taxpayer"), ("2025 Return.pdf", make_pdf(2), "none")],
    )
    (doc_2026,) = await portal.send_documents(
        second, [("2026 Form 8879.pdf", make_pdf(1, "8879"), "taxpayer")]
    )
    chat = await portal.preparer.post(f"/api/engagements/{first}/messages", json={"body": "One more 1099?"})
    assert chat.status_code == 201, chat.text

    # The landing page: both years' tasks, 2026 first.
    await page.goto(f"{portal.url}/portal")
    tasks = page.locator(".task-title")
    await expect(tasks).to_have_text(
        ["Sign 2026 Form 8879.pdf", "Sign 2025 Form 8879.pdf", "Read a message from your firm"]
    )
    await shot(page, "hub-home-desktop")
    await page.set_viewport_size(PHONE["viewport"])  # type: ignore[arg-type]
    await shot(page, "hub-home-phone")
    await page.set_viewport_size(DESKTOP_SIZE)  # type: ignore[arg-type]

    # Get Started on the 2025 task: the signature page of the 2025 return (no signature on file there yet).
    await page.get_by_role("link", name=re.compile("Get Started.*Sign 2025 Form 8879")).click()
    await expect(page.get_by_role("heading", name="Edit Signature")).to_be_visible()
    await expect(page.locator("#return-choice")).to_have_value(str(first))
    await draw_with_mouse(page)
    await save_signature(page)

    # The Documents page: both years, filters, and signing the 2025 document from it.
    await page.get_by_role("link", name="Documents").first.click()
    await expect(page.get_by_role("heading", name="2026 return")).to_be_visible()
    await expect(page.get_by_role("heading", name="2025 return")).to_be_visible()
    await shot(page, "hub-documents-desktop")
    await page.get_by_label("Search by name").fill("8879")
    await page.get_by_label("Tax year").select_option("2025")
    await page.get_by_role("button", name="Show documents").click()
    await expect(page.locator("#lib-count")).to_have_text("1 document")
    row = page.locator("tr", has_text="2025 Form 8879.pdf")
    await row.get_by_role("button", name=re.compile("^Sign")).click()
    await expect(row.get_by_text("Signed!")).to_be_visible()
    await page.set_viewport_size(PHONE["viewport"])  # type: ignore[arg-type]
    await page.goto(f"{portal.url}/portal/documents")
    await expect(page.locator(f"#doc-{doc_2026}")).to_contain_text("Add your signature first")
    await shot(page, "hub-documents-phone")
