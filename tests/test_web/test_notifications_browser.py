"""The notification bell in a real browser (Chromium, issue 15): its count changes live when the preparer
sends documents (no reload), it opens as a disclosure listing them, and a notification leads to its page;
desktop and phone-width screenshots with the layout and axe-core checks."""

from __future__ import annotations

import browser
import pytest
from browser import PHONE, Portal, register, shot, verify
from journey import TAXPAYER
from pdfs import make_pdf
from playwright.async_api import expect

pytestmark = pytest.mark.e2e
chromium, portal = browser.chromium, browser.portal  # the fixtures this module uses


async def test_the_bell_counts_live_and_opens_the_list(portal: Portal) -> None:
    eid = await portal.create_engagement(TAXPAYER)
    link = await portal.invite(eid, "taxpayer", TAXPAYER["email"])
    context = await portal.person()
    page = await context.new_page()
    await register(page, link, TAXPAYER, "shelby")
    await verify(portal, page, TAXPAYER)

    bell = page.get_by_role("button", name="Notifications, 0 unread")
    await expect(bell).to_be_visible()
    await expect(bell).to_have_attribute("aria-expanded", "false")
    url = page.url

    # The preparer sends the return: the bell's count changes on the open page, without a reload.
    await portal.send_documents(eid, [("Form 8879.pdf", make_pdf(1), "taxpayer")])
    bell = page.get_by_role("button", name="Notifications, 2 unread")
    await expect(bell).to_be_visible(timeout=10_000)
    assert page.url == url
    await expect(page.locator("[data-bell-count]:visible")).to_have_text("2")

    await bell.click()
    await expect(bell).to_have_attribute("aria-expanded", "true")
    panel = page.locator("#bell-panel")
    await expect(panel.get_by_role("link", name="Your signature is needed")).to_be_visible()
    await expect(panel.get_by_role("link", name="Your preparer sent you a document")).to_be_visible()
    await expect(panel.get_by_role("button", name="Mark all as read")).to_be_visible()
    await shot(page, "notifications-bell-desktop")
    await page.keyboard.press("Escape")
    await expect(bell).to_have_attribute("aria-expanded", "false")
    await expect(bell).to_be_focused()

    await page.set_viewport_size(PHONE["viewport"])
    await bell.click()
    await expect(panel).to_be_visible()
    await shot(page, "notifications-bell-phone")

    # A notification leads to its page, and is read from then on.
    await panel.get_by_role("link", name="Your signature is needed").click()
    await expect(page.get_by_role("button", name="Notifications, 1 unread")).to_be_visible()
    assert "/portal/documents" in page.url
    await page.set_viewport_size({"width": 1280, "height": 900})
    await shot(page, "notifications-documents-desktop")
