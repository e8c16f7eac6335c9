"""Signing order in Chromium: the preparer creates a joint return with "the taxpayer signs first" on the
new-engagement form, the engagement page says so, and the spouse's Documents page says whom they wait for
instead of offering Sign. axe-core checks every page (tests/browser.py); screenshots at desktop and phone
width: test-output/screenshots/signing-order-*.png."""

from __future__ import annotations

import re

import browser
import pdfs
import pytest
from browser import PHONE, Portal, register, shot, verify
from journey import SPOUSE, TAXPAYER
from playwright.async_api import Page, expect
from preparer_steps import Authenticator, enrol_directly
from test_preparer_workspace import fill_new_engagement, log_in

pytestmark = pytest.mark.e2e
chromium, portal = browser.chromium, browser.portal  # the fixtures this module uses
DESKTOP_SIZE = {"width": 1280, "height": 900}


async def both_ways(page: Page, name: str) -> None:
    await shot(page, f"{name}-desktop")
    await page.set_viewport_size(PHONE["viewport"])  # type: ignore[arg-type]
    await shot(page, f"{name}-phone")
    await page.set_viewport_size(DESKTOP_SIZE)  # type: ignore[arg-type]


async def test_the_taxpayer_signs_first(portal: Portal) -> None:
    secret = enrol_directly(portal.resources, "bea@firm.test", "Lovelace Tax", "Bea Colleague")
    desk = await (await portal.person()).new_page()
    await log_in(desk, portal, "bea@firm.test", Authenticator(secret))
    await desk.get_by_role("link", name="Create an engagement").first.click()
    await fill_new_engagement(desk, TAXPAYER)
    await desk.get_by_role("button", name="Joint return: add the spouse").click()
    await fill_new_engagement(desk, SPOUSE, "spouse")
    order = desk.get_by_label("Signing order: the taxpayer signs first, then the spouse")
    await order.check()
    await both_ways(desk, "signing-order-new")
    await desk.get_by_role("button", name="Create engagement").click()
    await expect(desk.locator("[data-signing-order]")).to_have_text(
        "Signing order: Shelby O'Neil signs first, then Jordan O'Neil."
    )
    eid = int(re.search(r"/engagements/(\d+)", desk.url).group(1))  # type: ignore[union-attr]

    link = await portal.invite(eid, "spouse", SPOUSE["email"])
    spouse = await (await portal.person()).new_page()
    await register(spouse, link, SPOUSE, "jordan")
    await verify(portal, spouse, SPOUSE)
    # Documents wait for the taxpayer's verified account.
    taxpayer_link = await portal.invite(eid, "taxpayer", TAXPAYER["email"])
    taxpayer = await (await portal.person()).new_page()
    await register(taxpayer, taxpayer_link, TAXPAYER, "shelby")
    await verify(portal, taxpayer, TAXPAYER)
    await portal.send_documents(eid, [("Form 8879.pdf", pdfs.make_form_8879(with_fields=True), "both")])

    await spouse.goto(f"{portal.url}/portal/documents")
    row = spouse.locator("tr", has_text="Form 8879.pdf")
    await expect(row.locator("[data-waiting]")).to_have_text("Waiting for Shelby to sign first")
    await expect(row.get_by_role("button", name=re.compile("^Sign"))).to_have_count(0)
    await both_ways(spouse, "signing-order-waiting")
