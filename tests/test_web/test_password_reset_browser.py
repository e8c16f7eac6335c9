"""A forgotten password reset in a real browser (Chromium), at desktop and phone width: from the login page's
link to a code by email (then by text), a refused weak password, the login page again; the browser that was
logged in is logged out. Screenshots, layout, contrast, touch targets and axe-core on every page."""

from __future__ import annotations

from datetime import timedelta

import browser
import pytest
from browser import Portal, register, shot, verify
from journey import TAXPAYER
from playwright.async_api import Page, expect

pytestmark = pytest.mark.e2e
chromium, portal = browser.chromium, browser.portal  # the fixtures this module uses
FIRST = "a brand new passphrase 2026"
SECOND = "another fresh passphrase 2027"


async def reset(portal: Portal, page: Page, *, by: str, new_password: str, name: str) -> None:
    await page.goto(f"{portal.url}/portal/login")
    await page.get_by_role("link", name="Forgot your password?").click()
    await expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
    await page.get_by_label("User name, email or phone").fill(
        "shelby" if by == "email" else TAXPAYER["phone"]
    )
    await shot(page, f"password-reset-{name}")
    before = await portal.last_outbox_id()
    await page.get_by_role(
        "button", name="Send code by " + ("email" if by == "email" else "text message")
    ).click()
    await expect(page.get_by_text("If an account uses this, we sent a code")).to_be_visible()
    destination = TAXPAYER["email"] if by == "email" else "+17025550197"
    code = await portal.code("password_reset_code", destination, newer_than=before)
    await page.get_by_label("6-digit code").fill(code)
    await page.get_by_label("New password", exact=True).fill("password123")
    await expect(
        page.locator("#password-rules li.unmet", has_text="Not a commonly used password")
    ).to_be_visible()
    await expect(page.locator("#password-rules li.met")).to_have_count(2)  # long enough, not a name
    await page.get_by_role("button", name="Reset password").click()
    await expect(page.get_by_text("This password is too common; choose another.")).to_be_visible()
    await shot(page, f"password-reset-refused-{name}")
    await page.get_by_label("New password", exact=True).fill(new_password)
    await expect(page.locator("#password-rules li.met")).to_have_count(3)
    await page.get_by_role("button", name="Reset password").click()
    await expect(page.get_by_text("Your password is reset. Log in with your new password.")).to_be_visible()
    await shot(page, f"password-reset-done-{name}")


async def test_a_forgotten_password_is_reset_at_desktop_and_phone_width(portal: Portal) -> None:
    # Two resets a moment apart: within the resend cooldown the second would (silently) get no code.
    portal.settings.code_resend_cooldown = timedelta(0)
    eid = await portal.create_engagement(TAXPAYER)
    link = await portal.invite(eid, "taxpayer", TAXPAYER["email"])
    remembered = await (await portal.person()).new_page()
    await register(remembered, link, TAXPAYER, "shelby")
    await verify(portal, remembered, TAXPAYER)

    desk = await (await portal.person()).new_page()
    await reset(portal, desk, by="email", new_password=FIRST, name="desktop")
    await remembered.goto(f"{portal.url}/portal")  # that browser's session ended with the reset
    await expect(remembered.get_by_role("heading", name="Log in")).to_be_visible()

    phone = await (await portal.person(phone=True)).new_page()
    await reset(portal, phone, by="sms", new_password=SECOND, name="phone")
    await phone.get_by_label("Email address or user name").fill("shelby")
    await phone.get_by_role("button", name="Continue").click()
    await phone.get_by_label("Password", exact=True).fill(SECOND)
    await phone.get_by_role("button", name="Log in").click()
    # A browser Portico hasn't seen still needs a login code after the reset.
    await expect(phone.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    notice = await portal.message("password_reset_done", TAXPAYER["email"])
    assert "If this wasn't you, contact your preparer" in notice["body"]
