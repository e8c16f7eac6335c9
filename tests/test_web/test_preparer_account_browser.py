"""My account in Chromium: a preparer changes their login email (a code to the new address) and their
password, each confirmed with the current password and a second factor; desktop and 375 px screenshots,
layout, contrast and touch-target checks, no CSP errors. Screenshots in
test-output/screenshots/preparer-account-*.png."""

from __future__ import annotations

import browser
import pytest
from browser import PHONE, Portal, shot
from journey import PASSWORD
from playwright.async_api import Page, expect
from preparer_steps import Authenticator, enrol_directly
from sqlmodel import Session, select
from starlette.requests import Request

from core.models import Preparer
from services import preparer_auth as auth

pytestmark = pytest.mark.e2e
chromium, portal = browser.chromium, browser.portal  # the fixtures this module uses
EMAIL = "grace@lovelace-tax.example.com"
NEW_EMAIL = "grace.preparer@example.org"
NEW_PASSWORD = "a brand new passphrase 2026"


async def log_in(page: Page, portal: Portal, email: str, password: str, phone: Authenticator) -> None:
    await page.goto(f"{portal.url}/preparer/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Authenticator code").fill(phone.code())
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Status dashboard")).to_be_visible()


def recovery_codes(portal: Portal) -> list[str]:
    """Recovery codes stand in for the phone where a fresh authenticator code would mean a 30 s wait."""
    scope = {"type": "http", "headers": [], "client": ("127.0.0.1", 1)}
    with Session(portal.resources.engine, expire_on_commit=False) as db:
        preparer = db.exec(select(Preparer).where(Preparer.email == EMAIL)).one()
        return auth.new_recovery_codes(db, Request(scope), portal.resources, preparer)


async def test_my_account_changes_login_email_and_password(portal: Portal) -> None:
    phone = Authenticator(enrol_directly(portal.resources, EMAIL, "Lovelace Tax", "Grace Preparer"))
    spare = recovery_codes(portal)
    page = await (await portal.person()).new_page()
    await log_in(page, portal, EMAIL, PASSWORD, phone)

    nav = page.locator("nav.nav-desktop")
    await nav.get_by_role("link", name="My account").click()
    await expect(page.get_by_role("heading", name="My account", exact=True)).to_be_visible()
    await expect(nav.get_by_role("link", name="My account")).to_have_attribute("aria-current", "page")
    await shot(page, "preparer-account-desktop")
    await page.set_viewport_size({"width": 768, "height": 900})  # the widest the menu stays in the bar
    await shot(page, "preparer-account-tablet")
    await page.set_viewport_size({"width": 1280, "height": 900})

    email = page.locator("section", has=page.get_by_role("heading", name="Change login email"))
    await email.get_by_label("New login email").fill(NEW_EMAIL)
    await email.get_by_label("Current password").fill("not my password")
    await email.get_by_label("Authenticator code").fill(spare[0])
    await email.get_by_role("button", name="Send code").click()
    await expect(page.get_by_role("alert").first).to_contain_text("That is not your current password.")
    await expect(email.get_by_label("New login email")).to_have_value(NEW_EMAIL)  # kept; passwords aren't
    await shot(page, "preparer-account-wrong-password-desktop")

    await email.get_by_label("Current password").fill(PASSWORD)
    await email.get_by_label("Authenticator code").fill(spare[0])  # unused: the password was checked first
    before = await portal.last_outbox_id()
    await email.get_by_role("button", name="Send code").click()
    await expect(page.get_by_text("We sent a 6-digit code to gra*****org")).to_be_visible()
    await page.set_viewport_size(PHONE["viewport"])  # type: ignore[arg-type]
    await expect(page.get_by_role("button", name="Confirm")).to_be_visible()
    await shot(page, "preparer-account-code-sent-phone")
    await page.set_viewport_size({"width": 1280, "height": 900})
    code = await portal.code("preparer_email_code", NEW_EMAIL, newer_than=before)
    await page.get_by_label("6-digit code from the email").fill(code)
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.get_by_text("Your login email is changed.")).to_be_visible()
    await expect(page.locator("[data-login-email]")).to_have_text(NEW_EMAIL)
    notice = await portal.message("preparer_email_changed", EMAIL)
    assert "If this wasn't you" in notice["body"]

    password = page.locator("section", has=page.get_by_role("heading", name="Change password"))
    await password.get_by_label("Current password").fill(PASSWORD)
    await password.get_by_label("Authenticator code").fill(spare[1])
    await password.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await password.get_by_label("Show new password").check()
    await expect(password.get_by_label("New password", exact=True)).to_have_attribute("type", "text")
    await password.get_by_role("button", name="Change password").click()
    await expect(page.get_by_text("Your password is changed.")).to_be_visible()
    await shot(page, "preparer-account-changed-desktop")
    assert "If this wasn't you" in (await portal.message("preparer_password_changed", NEW_EMAIL))["body"]

    # On a phone, with the new email and password; the menu leads to My account.
    small = await (await portal.person(phone=True)).new_page()
    await log_in(small, portal, NEW_EMAIL, NEW_PASSWORD, phone)
    await small.get_by_role("button", name="Menu").click()
    await small.locator(".nav-mobile").get_by_role("link", name="My account").click()
    await expect(small.get_by_role("heading", name="My account", exact=True)).to_be_visible()
    await shot(small, "preparer-account-phone")
