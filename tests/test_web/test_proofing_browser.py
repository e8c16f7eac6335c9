"""Identity proofing before a joint Form 8879 is signed remotely, in Chromium, under the installation's
default rules (8879 and 8878 need it) and the development provider.

The preparer enters each spouse's date of birth and address on the engagement page. The taxpayer clicks
Sign, is sent to the questions, fails the first set, passes the second and signs. The spouse fails all
three sets: the questions page and the landing page's task say "Sign on paper", and the spouse uploads a
photo of the hand-signed form. The preparer's page shows each set's outcome and "Manually signed". axe-core
checks every page (tests/browser.py). Screenshots at desktop and phone width:
test-output/screenshots/proofing-*.png.
"""

from __future__ import annotations

import re

import browser
import pdfs
import pytest
from browser import Portal, agree_to_sign_electronically
from journey import SPOUSE, TAXPAYER
from playwright.async_api import Page, expect
from preparer_steps import Authenticator, enrol_directly
from proofing_steps import SPOUSE_DETAILS, TAXPAYER_DETAILS, answer_in_page
from test_decline_paper_browser import both_ways, client
from test_preparer_workspace import log_in

from core.config import Settings

pytestmark = pytest.mark.e2e
chromium, portal = browser.chromium, browser.portal  # the fixtures this module uses


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The installation's default: Forms 8879 and 8878 need identity proofing."""
    return settings.model_copy(update={"proofing_forms": "8879,8878"})


async def typed_signature(page: Page, portal: Portal, name: str) -> None:
    await page.goto(f"{portal.url}/portal/signature")
    await agree_to_sign_electronically(page)
    await page.get_by_role("radio", name="Type").check()
    await page.get_by_label("Your name as you sign it").fill(name)
    await page.get_by_role("button", name="Save typed signature").click()
    await expect(page.locator("[data-pad-status]")).to_have_text("Signature saved")


async def enter_details(desk: Page, role: str, details: dict[str, str]) -> None:
    block = desk.locator(f"#identity-{role}")
    await block.get_by_role("button", name=re.compile("date of birth and address")).click()
    year, month, day = details["date_of_birth"].split("-")
    await block.get_by_label("Date of birth").fill(f"{month}/{day}/{year}")
    await block.get_by_label("Street address").fill(details["street"])
    await block.get_by_label("City").fill(details["city"])
    await block.get_by_label("State").fill(details["state"])
    await block.get_by_label("ZIP code").fill(details["zip"])
    await block.get_by_role("button", name="Save").click()
    await expect(desk.get_by_text("Saved: the identity questions can be asked.")).to_be_visible()


async def test_one_spouse_passes_on_the_second_set_the_other_signs_on_paper(portal: Portal) -> None:
    eid = await portal.create_engagement(TAXPAYER, SPOUSE)
    taxpayer = await client(portal, eid, TAXPAYER, "taxpayer", "shelby")
    spouse = await client(portal, eid, SPOUSE, "spouse", "jordan")
    (form,) = await portal.send_documents(
        eid, [("Form 8879.pdf", pdfs.make_form_8879(with_fields=True), "both")]
    )

    # The preparer enters each spouse's date of birth and address on the engagement page.
    secret = enrol_directly(portal.resources, "bea@firm.test", "Lovelace Tax", "Bea Colleague")
    desk = await (await portal.person()).new_page()
    await log_in(desk, portal, "bea@firm.test", Authenticator(secret))
    await desk.goto(f"{portal.url}/preparer/engagements/{eid}")
    await expect(desk.locator("#identity-taxpayer [data-proofing-state]")).to_contain_text(
        "Date of birth and address needed"
    )
    await enter_details(desk, "taxpayer", TAXPAYER_DETAILS)
    await enter_details(desk, "spouse", SPOUSE_DETAILS)
    await expect(desk.locator("#identity-spouse [data-proofing-state]")).to_contain_text("Ready")
    await both_ways(desk, "proofing-preparer-ready")

    # The taxpayer clicks Sign and is sent to the questions; fails the first set, passes the second.
    await typed_signature(taxpayer, portal, "Shelby O'Neil")
    await taxpayer.goto(f"{portal.url}/portal/documents")
    await (
        taxpayer.locator("tr", has_text="Form 8879.pdf")
        .get_by_role("button", name=re.compile("^Sign"))
        .click()
    )
    await expect(taxpayer.get_by_role("heading", name="Verify Your Identity")).to_be_visible()
    await expect(taxpayer.locator("[data-dev-provider]")).to_contain_text("not a real identity check")
    await both_ways(taxpayer, "proofing-intro")
    await taxpayer.get_by_role("button", name="Start the questions").click()
    await expect(taxpayer.get_by_role("heading", name="Set 1 of 3")).to_be_visible()
    await both_ways(taxpayer, "proofing-questions")
    await answer_in_page(taxpayer, TAXPAYER_DETAILS, right=2)
    await expect(taxpayer.get_by_text("That set did not pass.").first).to_be_visible()
    await expect(taxpayer.locator("[data-proofing-status]")).to_contain_text(
        "You have 2 sets of questions left"
    )
    await both_ways(taxpayer, "proofing-failed-once")
    await taxpayer.get_by_role("button", name="Start the questions").click()
    await expect(taxpayer.get_by_role("heading", name="Set 2 of 3")).to_be_visible()
    await answer_in_page(taxpayer, TAXPAYER_DETAILS, right=4)
    await expect(taxpayer.get_by_text("Your identity is verified. You can sign now.")).to_be_visible()
    row = taxpayer.locator("tr", has_text="Form 8879.pdf")
    await row.get_by_role("button", name=re.compile("^Sign")).click()
    await expect(row.get_by_text("Signed!")).to_be_visible()

    # The spouse fails all three sets: sign on paper.
    await typed_signature(spouse, portal, "Jordan O'Neil")
    await spouse.goto(f"{portal.url}/portal")
    task = spouse.get_by_role("link", name=re.compile("Sign Form 8879.pdf"))
    await expect(spouse.get_by_text("Verify your identity first")).to_be_visible()
    await task.click()
    for number in (1, 2, 3):
        await spouse.get_by_role("button", name="Start the questions").click()
        await expect(spouse.get_by_role("heading", name=f"Set {number} of 3")).to_be_visible()
        await answer_in_page(spouse, SPOUSE_DETAILS, right=2)
    await expect(spouse.get_by_role("heading", name="Sign on paper")).to_be_visible()
    await expect(spouse.locator("[data-proofing-status]")).to_contain_text("after 3 sets of questions")
    await both_ways(spouse, "proofing-paper")
    await spouse.goto(f"{portal.url}/portal")
    paper_task = spouse.get_by_role("link", name=re.compile("Sign Form 8879.pdf on paper"))
    await expect(paper_task).to_be_visible()
    await both_ways(spouse, "proofing-paper-task")
    await paper_task.click()
    await spouse.get_by_label(re.compile("^Scan or photo")).set_input_files(
        {"name": "signed.jpg", "mimeType": "image/jpeg", "buffer": pdfs.photo_of_signed_page()}
    )
    await spouse.get_by_role("button", name="Upload my signed copy").click()
    await expect(spouse.get_by_text("Thank you: your signature on paper is recorded.")).to_be_visible()

    # The preparer sees each set's outcome and how each signature was made.
    await desk.reload()
    await expect(desk.locator("#identity-taxpayer [data-proofing-state]")).to_contain_text(
        "Verified on set 2"
    )
    await expect(desk.locator("#identity-spouse [data-proofing-state]")).to_contain_text(
        "Not verified after 3 sets"
    )
    await expect(desk.locator("#identity-spouse tbody tr")).to_have_count(3)
    await expect(
        desk.locator("#identity-spouse").get_by_label(re.compile("Allow one more set"))
    ).to_be_visible()
    sent = desk.locator(f"#sent-{form} [data-signature-status]")
    await expect(sent).to_have_text("Manually signed", timeout=30_000)
    await both_ways(desk, "proofing-preparer-done")
