"""Sign-in by email and the Account page's security settings in a real browser (Chromium), at desktop
(1280) and phone (375) width: the two-step login, adding a sign-in email with a code, the sessions and
remembered browsers, ending another session. Screenshots, layout, contrast, touch targets and axe-core."""

from __future__ import annotations

import re
from datetime import timedelta

import browser
import pytest
from browser import PHONE, Portal, enter_code, register, shot, verify
from journey import PASSWORD, TAXPAYER
from playwright.async_api import Page, expect

pytestmark = pytest.mark.e2e
ADDED = "shelby.work@example.org"
chromium, portal = browser.chromium, browser.portal  # the fixtures this module uses


async def two_step_login(page: Page, url: str, login: str, name: str) -> None:
    await page.goto(f"{url}/portal/login")
    await expect(
        page.get_by_text("Enter your email address (or user name) and click Continue.")
    ).to_be_visible()
    await page.get_by_label("Email address or user name").fill(login)
    await shot(page, f"login-email-{name}")
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_label("Password", exact=True)).to_be_focused()
    await expect(
        page.get_by_text("If you don't have an account yet, use the link in your invitation")
    ).to_be_visible()
    await shot(page, f"login-password-{name}")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()


async def test_two_step_login_and_the_security_settings(portal: Portal) -> None:
    portal.settings.code_resend_cooldown = timedelta(0)  # two new browsers ask for login codes in a row
    eid = await portal.create_engagement(TAXPAYER)
    link = await portal.invite(eid, "taxpayer", TAXPAYER["email"])
    desk = await (await portal.person()).new_page()
    await register(desk, link, TAXPAYER, "shelby")
    await verify(portal, desk, TAXPAYER)

    # Add a sign-in email on the Account page, proved by a code.
    await desk.goto(f"{portal.url}/portal/account")
    emails = desk.locator("section", has=desk.get_by_role("heading", name="Sign-in email addresses"))
    await emails.get_by_label("Email address to add").fill(ADDED)
    await emails.get_by_label("Current password").fill(PASSWORD)
    before = await portal.last_outbox_id()
    await emails.get_by_role("button", name="Send code").click()
    await expect(desk.get_by_text("We sent a 6-digit code to she*****org")).to_be_visible()
    await shot(desk, "security-email-code-desktop")
    code = await portal.code("contact_code", ADDED, newer_than=before)
    await desk.get_by_label("6-digit code").fill(code)
    await desk.get_by_role("button", name="Confirm").click()
    await expect(desk.get_by_text("The email address is added. You can sign in with it.")).to_be_visible()
    await expect(emails.get_by_role("button", name=f"Remove {ADDED}")).to_be_visible()
    assert "If this wasn't you" in (await portal.message("email_added", TAXPAYER["email"]))["body"]

    # A phone signs in with the added address: two steps, then a code (a browser Portico hasn't seen).
    phone = await (await portal.person(phone=True)).new_page()
    await two_step_login(phone, portal.url, ADDED.upper(), "phone")
    await expect(phone.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    before = await portal.last_outbox_id()
    await phone.get_by_role("button", name=re.compile(r"^Send Email: ")).click()
    code = await portal.code("login_code", TAXPAYER["email"], newer_than=before)
    await phone.get_by_label("6-digit code").fill(code)
    await phone.get_by_role("button", name="Verify").click()
    await phone.goto(f"{portal.url}/portal/account")
    await expect(phone.get_by_role("heading", name="Where you're logged in")).to_be_visible()
    await phone.get_by_role("heading", name="Where you're logged in").scroll_into_view_if_needed()
    await shot(phone, "security-settings-phone")

    # The desktop sees both sessions, this one marked, and logs the phone out.
    await desk.goto(f"{portal.url}/portal/account")
    sessions = desk.locator("section", has=desk.get_by_role("heading", name="Where you're logged in"))
    await expect(sessions.get_by_text("This browser")).to_have_count(
        2
    )  # this session and this remembered browser
    await shot(desk, "security-settings-desktop")
    await sessions.get_by_role("button", name=re.compile(r"^Log out .*on Linux")).first.click()
    await expect(desk.get_by_text("That session is logged out.")).to_be_visible()
    await phone.goto(f"{portal.url}/portal/account")
    await expect(phone.get_by_role("heading", name="Log in")).to_be_visible()

    # Forget the desktop's own remembered browser: the next login there asks for a code again.
    sessions = desk.locator("section", has=desk.get_by_role("heading", name="Where you're logged in"))
    await sessions.get_by_role("button", name=re.compile(r"^Forget ")).click()
    await expect(desk.get_by_text("That browser is forgotten.")).to_be_visible()
    await desk.set_viewport_size(PHONE["viewport"])
    await shot(desk, "security-settings-forgotten-phone-width")
    await desk.set_viewport_size({"width": 1280, "height": 900})
    await desk.get_by_role("button", name="Log out", exact=True).first.click()
    await two_step_login(desk, portal.url, "shelby", "desktop")
    await expect(desk.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    before = await portal.last_outbox_id()
    await desk.get_by_role("button", name=re.compile(r"^Send Email: ")).click()
    await enter_code(portal, desk, await portal.code("login_code", TAXPAYER["email"], newer_than=before))
    await expect(desk.get_by_role("navigation", name="Portal")).to_be_visible()
