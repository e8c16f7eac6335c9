"""The portal in Chromium when things go wrong or get checked: identity mismatch, wrong code, resend
cooldown, refused uploads, login from a new browser, log out everywhere, keyboard use."""

from __future__ import annotations

import re
from datetime import timedelta

import browser
import pytest
from browser import Portal, enter_code, register, shot, verify
from journey import PASSWORD, TAXPAYER
from pdfs import make_pdf
from playwright.async_api import Page, expect

pytestmark = pytest.mark.e2e
chromium, portal = browser.chromium, browser.portal  # the fixtures this module uses
SMS = "+17025550197"


async def log_in(page: Page, url: str, username: str = "shelby", password: str = PASSWORD) -> None:
    await page.goto(f"{url}/portal/login")
    await page.get_by_label("Email address or user name").fill(username)
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Log in").click()


async def test_identity_mismatch_keeps_values_and_locks_the_link(portal: Portal) -> None:
    portal.settings.registration_max_failures = 2  # fixed into the engagement when it starts
    eid = await portal.create_engagement(TAXPAYER)
    link = await portal.invite(eid, "taxpayer", TAXPAYER["email"])
    page = await (await portal.person()).new_page()

    await register(page, link, TAXPAYER, "shelby", **{"Last 4 of SSN": "1111"})
    summary = page.locator(".error-summary")
    await expect(summary).to_contain_text("These details don't match the tax return your preparer entered.")
    await expect(summary).to_contain_text("1 attempt left")
    text = (await summary.inner_text()).lower()
    assert not any(word in text for word in ("ssn", "social", "last name", "email", "phone"))
    assert await page.get_by_label("User name").input_value() == "shelby"
    assert await page.get_by_label("Email").input_value() == TAXPAYER["email"]
    assert await page.get_by_label("Password", exact=True).input_value() == ""  # never echoed back
    await expect(page.locator(":focus")).to_have_class(re.compile("error-summary"))
    await shot(page, "register-mismatch-desktop")

    # A weak password is named at its field, with the values kept.
    await page.get_by_label("Password", exact=True).fill("password")
    await page.get_by_role("button", name="Register").click()
    await expect(page.locator("#password-error")).to_contain_text("too common")
    await expect(page.get_by_label("Password", exact=True)).to_have_attribute("aria-invalid", "true")

    await register(page, link, TAXPAYER, "shelby", **{"Last 4 of SSN": "2222"})
    await expect(page.get_by_role("alert")).to_have_text(
        "This link is locked after too many attempts. Ask your preparer for a new one."
    )
    await shot(page, "invite-locked-desktop")
    await page.goto(link[:-4] + "abcd")
    await expect(page.get_by_role("alert")).to_contain_text("ask your preparer for a new one")


async def test_an_expired_link_says_to_ask_for_a_new_one(portal: Portal) -> None:
    portal.settings.invite_expires_after = timedelta(seconds=1)
    eid = await portal.create_engagement(TAXPAYER)
    link = await portal.invite(eid, "taxpayer", TAXPAYER["email"])
    page = await (await portal.person(phone=True)).new_page()
    await page.wait_for_timeout(1500)  # the workflow's timer expires the invitation
    await page.goto(link)
    await expect(page.get_by_role("alert")).to_have_text(
        "This link has expired. Ask your preparer to send you a new one."
    )
    await expect(page.get_by_role("button", name="Register")).to_have_count(0)
    await shot(page, "invite-expired-phone")


async def test_wrong_code_then_a_pasted_code(portal: Portal) -> None:
    eid = await portal.create_engagement(TAXPAYER)
    link = await portal.invite(eid, "taxpayer", TAXPAYER["email"])
    page = await (await portal.person(phone=True)).new_page()
    await register(page, link, TAXPAYER, "shelby")
    before = await portal.last_outbox_id()
    await page.get_by_role("button", name="Send Email: she*****com").click()
    code = await portal.code("code", TAXPAYER["email"], newer_than=before)

    await enter_code(portal, page, "12", remember=False)
    await expect(page.get_by_role("alert")).to_have_text("Enter the 6-digit code.")
    await enter_code(portal, page, f"{(int(code) + 1) % 1_000_000:06d}", remember=False)
    await expect(page.get_by_role("alert")).to_have_text("That code is not right. 4 tries left.")
    await expect(page.get_by_label("6-digit code")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator(":focus")).to_have_id("code-error")
    await shot(page, "verify-wrong-code-phone")
    await enter_code(portal, page, f"{code[:3]} {code[3:]}", remember=False)  # as pasted from a message
    await expect(page.get_by_text("Your account is verified. Welcome!")).to_be_visible()


async def test_resend_waits_for_the_cooldown_and_cancel(portal: Portal) -> None:
    portal.settings.code_resend_cooldown = timedelta(seconds=3)
    eid = await portal.create_engagement(TAXPAYER)
    link = await portal.invite(eid, "taxpayer", TAXPAYER["email"])
    page = await (await portal.person()).new_page()
    await register(page, link, TAXPAYER, "shelby")
    await page.get_by_role("button", name="Send Email: she*****com").click()

    text_button = page.get_by_role("button", name="Send Text: 70*****97")
    await expect(text_button).to_be_disabled()
    await expect(page.get_by_text(re.compile(r"You can ask for a new code in \d seconds\."))).to_be_visible()
    await expect(text_button).to_be_enabled(timeout=6000)
    await expect(page.get_by_text("You can ask for a new code now.")).to_be_attached()
    before = await portal.last_outbox_id()
    await text_button.click()
    await expect(page.get_by_text("We sent a 6-digit code to 70*****97.")).to_be_visible()
    assert await portal.code("code", SMS, newer_than=before)

    await page.get_by_role("button", name="Cancel Verification").click()
    await expect(page.get_by_text("Verification cancelled. Log in any time to finish it.")).to_be_visible()
    await page.goto(f"{portal.url}/portal")
    await expect(page).to_have_url(re.compile(r"/portal/login\?next=/portal$"))
    # Logging in again leads back to verification (no new-device code before the account is verified).
    await log_in(page, portal.url)
    await expect(page.get_by_role("heading", name="Verify your account")).to_be_visible()


async def test_upload_refuses_what_is_not_a_pdf_or_photo(portal: Portal) -> None:
    eid = await portal.create_engagement(TAXPAYER)
    link = await portal.invite(eid, "taxpayer", TAXPAYER["email"])
    page = await (await portal.person()).new_page()
    await register(page, link, TAXPAYER, "shelby")
    await verify(portal, page, TAXPAYER)
    await page.goto(f"{portal.url}/portal/files")
    await page.locator("#files").set_input_files(
        [
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"my notes"},
            {"name": "invoice.pdf", "mimeType": "application/pdf", "buffer": b"MZ\x90\x00 not a pdf"},
            {"name": "1099.png", "mimeType": "image/png", "buffer": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64},
            {"name": "W-2.pdf", "mimeType": "application/pdf", "buffer": make_pdf(1, "W-2")},
        ]
    )
    failed = page.locator("[data-upload-list] li.failed")
    await expect(failed).to_have_count(2)
    await expect(failed.nth(0)).to_contain_text(
        "notes.txt: this kind of file can't be uploaded. Upload PDFs or photos (JPEG, PNG, HEIC)."
    )
    await expect(failed.nth(1)).to_contain_text("invoice.pdf: this kind of file can't be uploaded.")
    await expect(page.locator("[data-upload-list] li.done")).to_have_count(2)
    await expect(page.locator("#file-list tbody tr")).to_have_count(2)
    await shot(page, "my-files-refused-desktop")


async def test_new_browser_needs_a_code_and_log_out_everywhere(portal: Portal) -> None:
    # Codes for one account are spaced by the cooldown, whichever browser asks: keep this test quick.
    portal.settings.code_resend_cooldown = timedelta(seconds=1)
    eid = await portal.create_engagement(TAXPAYER)
    link = await portal.invite(eid, "taxpayer", TAXPAYER["email"])
    first = await (await portal.person()).new_page()
    await register(first, link, TAXPAYER, "shelby")
    await verify(portal, first, TAXPAYER, remember=False)
    await first.get_by_role("button", name="Log out").first.click()

    # Wrong password: one message, whatever was wrong.
    await log_in(first, portal.url, password="not my password at all")
    await expect(first.get_by_role("alert")).to_have_text("Wrong user name or password.")
    await expect(first.get_by_label("Email address or user name")).to_have_value("shelby")

    # Keyboard only: the browser was not remembered, so a code is needed.
    await first.goto(f"{portal.url}/portal/login")
    # The login field has focus on arrival (wait for it: typing earlier loses the first keys), then the
    # password field on the second step.
    await expect(first.get_by_label("Email address or user name")).to_be_focused()
    await first.keyboard.type("shelby")
    await first.keyboard.press("Enter")
    await expect(first.get_by_label("Password", exact=True)).to_be_focused()
    await first.keyboard.type(PASSWORD)
    await first.keyboard.press("Enter")
    await expect(first.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    await shot(first, "login-code-desktop")
    before = await portal.last_outbox_id()
    await first.get_by_role("button", name="Send Text: 70*****97").click()
    code = await portal.code("login_code", SMS, newer_than=before)
    await enter_code(portal, first, f"{(int(code) + 7) % 1_000_000:06d}", remember=False)
    await expect(first.get_by_role("alert")).to_have_text("That code is not right. 4 tries left.")
    await enter_code(portal, first, code, remember=True)
    await expect(first.get_by_role("heading", name="Welcome, Shelby")).to_be_visible()
    await first.keyboard.press("Tab")  # the skip link first: keyboard focus is visible
    focused = first.locator(":focus")
    await expect(focused).to_have_text("Skip to main content")
    assert await focused.evaluate("el => getComputedStyle(el).outlineStyle") != "none"

    # Remembered: the next login from this browser needs no code.
    await first.get_by_role("button", name="Log out").first.click()
    await log_in(first, portal.url)
    await expect(first.get_by_role("heading", name="Welcome, Shelby")).to_be_visible()

    # Another browser (a phone) needs its own code; the used code is worth nothing there.
    phone = await (await portal.person(phone=True)).new_page()
    await log_in(phone, portal.url)
    await expect(phone.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    await shot(phone, "login-code-phone")
    await phone.get_by_role("button", name="Send Email: she*****com").click()
    await enter_code(portal, phone, code, remember=False)
    await expect(phone.get_by_role("alert")).to_contain_text("That code is not right.")
    fresh = await portal.code("login_code", TAXPAYER["email"])
    await enter_code(portal, phone, fresh, remember=False)
    await expect(phone.get_by_role("heading", name="Welcome, Shelby")).to_be_visible()

    # Log out everywhere: the desktop session ends and the desktop is no longer remembered.
    await phone.get_by_role("button", name="Log out everywhere").click()
    await expect(phone.get_by_text("You are logged out on every device")).to_be_visible()
    await first.goto(f"{portal.url}/portal/files")
    await expect(first).to_have_url(re.compile(r"/portal/login\?next=/portal/files$"))
    await log_in(first, portal.url)
    await expect(first.get_by_role("heading", name="Confirm it's you")).to_be_visible()
