"""The firm settings page in Chromium for an administrator and for a preparer who is not one, at desktop
and phone size: the administrator gets the controls, the other reads the settings and is told why there are
none. Screenshots in test-output/screenshots/preparer-settings-{admin,member}-{desktop,phone}.png."""

from __future__ import annotations

import browser
import pytest
from browser import Portal, shot
from journey import PASSWORD
from playwright.async_api import Page, expect
from preparer_steps import Authenticator, enrol_directly
from sqlmodel import Session, select

from core.models import Preparer

pytestmark = pytest.mark.e2e
chromium, portal = browser.chromium, browser.portal  # the fixtures this module uses


async def log_in(page: Page, portal: Portal, email: str, phone: Authenticator) -> None:
    await page.goto(f"{portal.url}/preparer/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Authenticator code").fill(phone.code())
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Status dashboard")).to_be_visible()


async def test_settings_page_for_an_administrator_and_for_a_member(portal: Portal) -> None:
    # The portal's own preparer (Ada) is Lovelace Tax's first, so its administrator; Grace is made one too.
    grace = Authenticator(
        enrol_directly(portal.resources, "grace@firm.test", "Lovelace Tax", "Grace Preparer")
    )
    bob = Authenticator(enrol_directly(portal.resources, "bob@firm.test", "Lovelace Tax", "Bob Member"))
    with Session(portal.resources.engine) as db:
        row = db.exec(select(Preparer).where(Preparer.email == "grace@firm.test")).one()
        row.is_admin = True
        db.add(row)
        db.commit()

    for size, phone_sized in (("desktop", False), ("phone", True)):
        admin = await (await portal.person(phone=phone_sized)).new_page()
        await log_in(admin, portal, "grace@firm.test", grace)
        await admin.goto(f"{portal.url}/preparer/settings")
        await expect(admin.get_by_role("button", name="Send invitation")).to_be_visible()
        await expect(admin.get_by_role("button", name="Make administrator Bob Member")).to_be_visible()
        await expect(admin.get_by_role("button", name="Stop being an administrator")).to_be_visible()
        await expect(admin.get_by_role("button", name="Save reminders and quiet hours")).to_be_visible()
        await shot(admin, f"preparer-settings-admin-{size}")

        member = await (await portal.person(phone=phone_sized)).new_page()
        await log_in(member, portal, "bob@firm.test", bob)
        await member.goto(f"{portal.url}/preparer/settings")
        await expect(member.locator("#read-only")).to_contain_text(
            "Your firm's administrators: Ada Preparer, Grace Preparer."
        )
        await expect(member.locator("#invite_reminder_days")).to_contain_text("Remind to create the account")
        await expect(member.locator("form[action^='/preparer/settings/']")).to_have_count(0)
        await expect(member.get_by_role("button", name="Send invitation")).to_have_count(0)
        await shot(member, f"preparer-settings-member-{size}")

    # The administrator's controls work: Bob becomes one, and the page says so.
    await admin.get_by_role("button", name="Make administrator Bob Member").click()
    await expect(admin.get_by_text("They are now an administrator of the firm.")).to_be_visible()
    await expect(admin.locator("#preparers")).to_contain_text("Administrator")

    # Identity verification before e-signing: the administrator asks it for Form 8879 only (the tests'
    # installation asks it for nothing); Bob's page shows it.
    await admin.goto(f"{portal.url}/preparer/settings#proofing")
    proofing = admin.locator("#proofing")
    await expect(proofing.get_by_label("Form 8879")).not_to_be_checked()
    await proofing.get_by_label("Form 8879").check()
    await proofing.get_by_role("button", name="Save identity verification").click()
    saved = admin.get_by_text("Saved: identity verification follows these rules from now on.")
    await expect(saved).to_be_visible()
    await expect(admin.locator("#proofing").get_by_label("Form 8879")).to_be_checked()
    await expect(admin.locator("#proofing").get_by_label("Form 8878")).not_to_be_checked()
    await member.reload()  # Bob, an administrator now too, sees the rules as saved
    await expect(member.locator("#proofing").get_by_label("Form 8879")).to_be_checked()
    await expect(member.locator("#proofing")).to_contain_text("not a real identity check")
    await shot(member, "preparer-settings-proofing-member-phone")
