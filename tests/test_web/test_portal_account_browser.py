"""The Account page in a real browser (Chromium): change the email address with a code, then the
password; desktop and phone-width screenshots, layout, contrast and touch-target checks, no CSP errors."""

from __future__ import annotations

import browser
import pytest
from browser import PHONE, Portal, register, shot, verify
from journey import PASSWORD, TAXPAYER
from playwright.async_api import expect

pytestmark = pytest.mark.e2e
NEW_EMAIL = "shelby.new@example.org"
chromium, portal = browser.chromium, browser.portal  # the fixtures this module uses


async def test_account_page_changes_email_and_password(portal: Portal) -> None:
    eid = await portal.create_engagement(TAXPAYER)
    link = await portal.invite(eid, "taxpayer", TAXPAYER["email"])
    context = await portal.person()
    page = await context.new_page()
    await register(page, link, TAXPAYER, "shelby")
    await verify(portal, page, TAXPAYER)

    await page.get_by_role("navigation", name="Portal").get_by_role("link", name="Account").first.click()
    await expect(page.get_by_role("heading", name="Account", exact=True)).to_be_visible()
    await shot(page, "account-desktop")

    email = page.locator("section", has=page.get_by_role("heading", name="Change email address"))
    await email.get_by_label("New email address").fill(NEW_EMAIL)
    await email.get_by_label("Current password").fill("not my password")
    await email.get_by_role("button", name="Send code").click()
    await expect(page.get_by_role("alert").first).to_contain_text("That is not your current password.")
    await shot(page, "account-wrong-password-desktop")

    email = page.locator("section", has=page.get_by_role("heading", name="Change email address"))
    await email.get_by_label("New email address").fill(NEW_EMAIL)
    await email.get_by_label("Current password").fill(PASSWORD)
    before = await portal.last_outbox_id()
    await email.get_by_role("button", name="Send code").click()
    await expect(page.get_by_text("We sent a 6-digit code to she*****org")).to_be_visible()
    await page.set_viewport_size(PHONE["viewport"])  # type: ignore[arg-type]
    await expect(page.get_by_role("button", name="Confirm")).to_be_visible()
    await expect(page.get_by_role("heading", name="Change phone number")).to_be_visible()
    await shot(page, "account-code-sent-phone")
    await page.set_viewport_size({"width": 1280, "height": 900})
    code = await portal.code("contact_code", NEW_EMAIL, newer_than=before)
    await page.get_by_label("6-digit code").fill(code)
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.get_by_text("Your email address is changed.")).to_be_visible()
    await expect(page.locator(".details")).to_contain_text(NEW_EMAIL)
    notice = await portal.message("email_changed", TAXPAYER["email"])
    assert "If this wasn't you" in notice["body"]

    await page.get_by_label("Current password", exact=True).first.fill(PASSWORD)
    await page.get_by_label("New password", exact=True).fill("a brand new passphrase 2026")
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_text("Your password is changed.")).to_be_visible()
    await page.set_viewport_size(PHONE["viewport"])  # type: ignore[arg-type]
    await shot(page, "account-phone")
