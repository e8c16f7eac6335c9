"""The preparer's side of the client hub in Chromium: from a completed engagement to the client's page, a
roll over to next year, and the dashboard's Returning badge and bulk roll over; desktop (1280) and phone
(375) screenshots with the layout and axe-core checks `shot` runs."""

from __future__ import annotations

import browser
import pytest
from browser import Portal, shot
from client_steps import completed_engagement
from journey import _PHONES, TAXPAYER
from playwright.async_api import expect
from test_preparer_workspace import log_in

pytestmark = pytest.mark.e2e
chromium, portal = browser.chromium, browser.portal  # the fixtures this module uses
CASEY = {**TAXPAYER, "first_name": "Casey", "last_name": "Nguyen", "ssn": "321-54-9876"}
CASEY |= {"email": "casey.nguyen@example.com", "phone": "+1 702 555 0111"}


async def test_client_page_roll_over_and_the_dashboard(portal: Portal) -> None:
    async with portal.client() as shelby, portal.client() as casey:
        first = await completed_engagement(portal.preparer, shelby, TAXPAYER)
        other = await completed_engagement(portal.preparer, casey, CASEY)

    desk = await (await portal.person()).new_page()
    await log_in(desk, portal, "ada@firm.test", _PHONES["ada@firm.test"])
    await desk.goto(f"{portal.url}/preparer/engagements/{first}")
    await desk.get_by_role("link", name="Client page").click()
    await expect(desk.get_by_role("heading", name="Shelby O'Neil")).to_be_visible()
    await expect(desk.get_by_text("she*****com").last).to_be_visible()  # the account's verified email
    await expect(desk.locator("dd", has_text="none yet")).to_have_count(0)
    await shot(desk, "client-page-desktop")

    # One click: next year's engagement for the same person, and back on its client page.
    await desk.goto(f"{portal.url}/preparer/engagements/{first}")
    await desk.get_by_role("button", name="Roll over to 2026").click()
    await expect(desk.get_by_text("2026 tax return")).to_be_visible()
    await shot(desk, "rollover-done-desktop")

    # The dashboard: Shelby's 2026 return is a returning client's; Casey's is rolled over in bulk.
    await desk.goto(f"{portal.url}/preparer")
    await expect(desk.locator(".returning-badge")).to_have_count(1)
    await desk.get_by_label("Select Casey Nguyen, 2025, to roll over").check()
    await shot(desk, "dashboard-rollover-desktop")
    await desk.get_by_role("button", name="Roll over selected").click()
    await expect(desk.locator("#rollover-summary")).to_have_text("1 created, 0 skipped.")
    await shot(desk, "rollover-result-desktop")
    assert other

    phone = await (await portal.person(phone=True)).new_page()
    await log_in(phone, portal, "ada@firm.test", _PHONES["ada@firm.test"])
    await phone.goto(f"{portal.url}/preparer/engagements/{first}")
    await phone.get_by_role("link", name="Client page").click()
    await expect(phone.get_by_role("heading", name="Shelby O'Neil")).to_be_visible()
    await shot(phone, "client-page-phone")
    await phone.goto(f"{portal.url}/preparer")
    await shot(phone, "dashboard-rollover-phone")
