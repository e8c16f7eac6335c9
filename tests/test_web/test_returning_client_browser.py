"""A returning client in Chromium (issue 15's journey): Shelby signed her 2025 return last year; the firm's
2026 invitation tells her she already has an account, she logs in from it on a new browser (email, then
password, then a code), a wrong SSN links nothing, the right one adds the 2026 return, she signs the 2026
Form 8879 and downloads the signed 2025 one. Desktop and phone screenshots, with the layout and axe checks."""

from __future__ import annotations

import re
from datetime import timedelta

import browser
import pytest
from browser import Portal, draw_with_mouse, register, save_signature, shot, verify
from journey import PASSWORD, TAXPAYER
from pdfs import make_pdf
from playwright.async_api import Page, expect
from pypdf import PdfReader
from sqlmodel import Session, select

from core.models import AccountLink

pytestmark = pytest.mark.e2e
chromium, portal = browser.chromium, browser.portal  # the fixtures this module uses


async def sign_all(page: Page, name: str) -> None:
    row = page.locator("tr", has=page.get_by_text(name, exact=True))
    await row.get_by_role("button", name=re.compile("^Sign")).click()
    await expect(row.get_by_text("Signed!")).to_be_visible()


async def test_a_returning_client_adds_2026_from_the_invitation(portal: Portal, tmp_path) -> None:  # type: ignore[no-untyped-def]
    portal.settings.code_resend_cooldown = timedelta(0)
    # Last year: registered, verified, signed.
    first = await portal.create_engagement(TAXPAYER)
    link = await portal.invite(first, "taxpayer", TAXPAYER["email"])
    last_year = await (await portal.person()).new_page()
    await register(last_year, link, TAXPAYER, "shelby")
    await verify(portal, last_year, TAXPAYER)
    await portal.send_documents(first, [("2025 Form 8879.pdf", make_pdf(1, "8879"), "taxpayer")])
    await last_year.goto(f"{portal.url}/portal/signature")
    await draw_with_mouse(last_year)
    await save_signature(last_year)
    await last_year.goto(f"{portal.url}/portal/documents")
    await sign_all(last_year, "2025 Form 8879.pdf")

    # This year's invitation, opened on a new phone.
    created = await portal.preparer.post("/api/engagements", json={"tax_year": 2026, "taxpayer": TAXPAYER})
    second = int(created.json()["id"])
    before = await portal.last_outbox_id()
    assert (
        await portal.preparer.post(f"/api/engagements/{second}/invite", json={"channel": "email"})
    ).is_success
    body = (await portal.message("invite", TAXPAYER["email"], newer_than=before))["body"]
    invitation = re.search(r"https?://\S+/invite/\S+", body).group(0)  # type: ignore[union-attr]
    phone = await (await portal.person(phone=True)).new_page()
    await phone.goto(invitation)
    await expect(phone.get_by_text("You already have a Client Portal account with")).to_be_visible()
    await shot(phone, "returning-invitation-phone")
    await phone.get_by_role("link", name="Log in to add your 2026 return").click()
    await phone.get_by_label("Email address or user name").fill(TAXPAYER["email"])
    await phone.get_by_role("button", name="Continue").click()
    await phone.get_by_label("Password", exact=True).fill(PASSWORD)
    await phone.get_by_role("button", name="Log in").click()
    before = await portal.last_outbox_id()
    await phone.get_by_role("button", name=re.compile(r"^Send Email: ")).click()
    await phone.get_by_label("6-digit code").fill(
        await portal.code("login_code", TAXPAYER["email"], newer_than=before)
    )
    await phone.get_by_role("button", name="Verify").click()

    # Back on the invitation's page: a wrong SSN links nothing and says how many tries are left.
    await expect(phone.get_by_role("heading", name="Add your 2026 return")).to_be_visible()
    await phone.get_by_label("Last name").fill(TAXPAYER["last_name"])
    await phone.get_by_label("Last 4 of SSN").fill("0000")
    await phone.get_by_role("button", name="Add this return").click()
    await expect(phone.get_by_text("4 attempts left")).to_be_visible()
    await shot(phone, "returning-mismatch-phone")
    with Session(portal.resources.engine) as db:
        assert db.exec(select(AccountLink).where(AccountLink.engagement_id == second)).first() is None
    await phone.get_by_label("Last 4 of SSN").fill(TAXPAYER["ssn"][-4:])
    await phone.get_by_role("button", name="Add this return").click()
    await expect(phone.get_by_text("Your new return is added")).to_be_visible()
    await expect(phone.get_by_label("Showing your")).to_have_value(str(second))
    await shot(phone, "returning-added-phone")

    # Sign the 2026 8879 (a signature for this return first), then download last year's signed return.
    await portal.send_documents(second, [("2026 Form 8879.pdf", make_pdf(1, "8879"), "taxpayer")])
    await phone.goto(f"{portal.url}/portal/signature")
    await draw_with_mouse(phone)
    await save_signature(phone)
    await phone.goto(f"{portal.url}/portal/documents")
    await sign_all(phone, "2026 Form 8879.pdf")
    await shot(phone, "returning-documents-phone")
    row = phone.locator("tr", has=phone.get_by_text("2025 Form 8879.pdf", exact=True))
    async with phone.expect_download() as downloading:
        await row.get_by_role("link", name=re.compile("^Download")).click()
    saved = tmp_path / "2025.pdf"
    await (await downloading.value).save_as(saved)
    fields = PdfReader(saved).get_fields() or {}
    assert any(f.get("/FT") == "/Sig" and f.get("/V") is not None for f in fields.values()), fields.keys()
