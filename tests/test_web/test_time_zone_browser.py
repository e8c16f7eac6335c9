"""The new-engagement form guesses the client's time zone from the phone number as it is typed, shows the
guess as the zone choice, and keeps a zone the preparer picks instead; the engagement page corrects it
later (issue 14, item 6). Screenshots at 1280 and 390 wide."""

from __future__ import annotations

import browser
import pytest
from browser import Portal, shot
from journey import TAXPAYER
from playwright.async_api import Page, expect
from preparer_steps import Authenticator, enrol_directly
from test_preparer_workspace import log_in

pytestmark = pytest.mark.e2e
chromium, portal = browser.chromium, browser.portal  # the fixtures this module uses
PREPARER = "zones@firm.test"


async def new_engagement(page: Page, portal: Portal, phone: str) -> None:
    await page.goto(f"{portal.url}/preparer/engagements/new")
    form = page.locator("form.card")
    await form.locator("#taxpayer_first_name").fill(TAXPAYER["first_name"])
    await form.locator("#taxpayer_last_name").fill(TAXPAYER["last_name"])
    await form.locator("#taxpayer_ssn").fill(TAXPAYER["ssn"])
    await form.locator("#taxpayer_email").fill(TAXPAYER["email"])
    guess = page.locator("#taxpayer_time_zone-guess")
    await expect(guess).to_have_text(
        "Guessed from the phone number once you type it; without one, your firm's, Eastern."
    )
    await form.locator("#taxpayer_phone").fill(phone)


async def test_the_zone_is_guessed_from_the_phone_number_and_the_preparer_may_change_it(
    portal: Portal,
) -> None:
    authenticator = Authenticator(enrol_directly(portal.resources, PREPARER, "Desert Tax", "Dana Preparer"))
    desk = await (await portal.person(width=1280)).new_page()
    await log_in(desk, portal, PREPARER, authenticator)

    # A Las Vegas number: Pacific time, shown as the zone choice before the engagement is created.
    await new_engagement(desk, portal, "(702) 555-0197")
    select = desk.locator("#taxpayer_time_zone")
    await expect(desk.locator("#taxpayer_time_zone-guess")).to_have_text(
        "Guessed from the phone number: Pacific (America/Los_Angeles)."
    )
    assert await select.input_value() == ""  # still on the guess
    await shot(desk, "new-engagement-zone-guess-desktop")
    await desk.get_by_role("button", name="Create engagement").click()
    zone = desk.get_by_role("button", name="Time zone:")
    await expect(zone).to_contain_text("Time zone: Pacific (America/Los_Angeles)")

    # Later the preparer learns the client moved to Boise: the engagement page corrects it.
    await zone.click()
    await desk.locator("#zone-taxpayer").select_option("America/Boise")
    await shot(desk, "engagement-zone-change-desktop")
    await desk.get_by_role("button", name="Save time zone").click()
    await expect(desk.get_by_text("Shelby O'Neil's time zone is now America/Boise.")).to_be_visible()
    await expect(zone).to_contain_text("Time zone: America/Boise")
    await expect(desk.locator(".timeline")).to_contain_text(
        "Changed the taxpayer's time zone from America/Los_Angeles to America/Boise"
    )

    # On a phone, the preparer knows better (the client moved to Denver) and picks the zone.
    mobile = await (await portal.person(phone=True, width=390)).new_page()
    await log_in(mobile, portal, PREPARER, authenticator)
    await new_engagement(mobile, portal, "+1 702 555 0142")
    await expect(mobile.locator("#taxpayer_time_zone-guess")).to_contain_text("Pacific")
    await mobile.locator("#taxpayer_time_zone").select_option("America/Denver")
    await shot(mobile, "new-engagement-zone-chosen-phone")
    await mobile.get_by_role("button", name="Create engagement").click()
    await expect(mobile.get_by_role("button", name="Time zone:")).to_contain_text("Mountain (America/Denver)")
    await shot(mobile, "engagement-zone-phone")
