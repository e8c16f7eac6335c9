"""A first-time preparer's hour in Chromium (issue 14): the first-run dashboard, the spouse's fields and
the Customer Portal behind real buttons, a notice shown once, the send form that waits for the portal and
opens by itself, the joint 8879 sent with one signer questioned, who still owes a signature, a quiet
timeline that can be focused, and the phone menu. axe-core checks every page (tests/browser.py).
Screenshots at 1280 and 390 wide: test-output/screenshots/preparer-newcomer-*.png."""

from __future__ import annotations

import re
from typing import Any

import browser
import pytest
import test_preparer_workspace as workspace
from browser import Portal, shot
from journey import SPOUSE, TAXPAYER, signature_png
from pdfs import make_pdf
from playwright.async_api import Page, expect
from preparer_steps import Authenticator, enrol_directly
from test_preparer_workspace import Client, fill_new_engagement, log_in

pytestmark = pytest.mark.e2e
chromium, portal = browser.chromium, browser.portal  # the fixtures this module uses
client_api = workspace.client_api
NEWCOMER = "newcomer@firm.test"
ANIKA = {**SPOUSE, "first_name": "Anika", "last_name": "O'Neil", "email": "anika@example.com"}


def pdf(name: str, pages: int = 1) -> Any:
    return {"name": name, "mimeType": "application/pdf", "buffer": make_pdf(pages, name)}


async def expanded(page: Page, name: str | re.Pattern[str], value: bool) -> None:
    await expect(page.get_by_role("button", name=name, expanded=value)).to_be_visible()


async def test_a_newcomers_first_hour(portal: Portal, client_api: Any) -> None:
    phone = Authenticator(enrol_directly(portal.resources, NEWCOMER, "First Steps Tax", "Nora Newcomer"))
    desk = await (await portal.person(width=1280)).new_page()
    await log_in(desk, portal, NEWCOMER, phone)
    mobile = await (await portal.person(phone=True, width=390)).new_page()
    await log_in(mobile, portal, NEWCOMER, phone)

    # 12. The first dashboard says how to start.
    for page, size in ((desk, "desktop"), (mobile, "phone")):
        await expect(page.get_by_role("heading", name="Start with your first return")).to_be_visible()
        await expect(page.get_by_role("link", name="Import a CSV file")).to_be_visible()
        await shot(page, f"preparer-newcomer-first-run-{size}")

    # 13. The phone menu is a button that says whether it is open; Escape closes it.
    await expanded(mobile, "Menu", False)
    await mobile.get_by_role("button", name="Menu").click()
    await expanded(mobile, "Menu", True)
    await expect(mobile.locator("#nav-mobile-panel").get_by_role("link", name="Import")).to_be_visible()
    await shot(mobile, "preparer-newcomer-menu-phone")
    await mobile.keyboard.press("Escape")
    await expanded(mobile, "Menu", False)
    await expect(mobile.get_by_role("button", name="Menu")).to_be_focused()

    # 13. The spouse's fields open from a button, by keyboard.
    await desk.get_by_role("link", name="Create an engagement").click()
    await expanded(desk, "Joint return: add the spouse", False)
    await expect(desk.locator("#spouse_first_name")).to_be_hidden()
    await desk.get_by_role("button", name="Joint return: add the spouse").focus()
    await desk.keyboard.press("Enter")
    await expanded(desk, "Joint return: add the spouse", True)
    await fill_new_engagement(desk, {**TAXPAYER, "email": "shelby.oneil@example.net"})  # wrong
    await fill_new_engagement(desk, ANIKA, "spouse")
    await shot(desk, "preparer-newcomer-new-joint-desktop")
    await desk.get_by_role("button", name="Create engagement").click()

    # 3. The notice shows once: the address forgets it, a reload does not repeat it.
    await expect(desk.get_by_text("Engagement created.")).to_be_visible()
    await expect(desk).to_have_url(re.compile(r"/preparer/engagements/\d+$"))
    eid = int(desk.url.rsplit("/", 1)[1])
    await desk.reload()
    await expect(desk.get_by_role("heading", level=1, name=re.compile("Shelby O'Neil"))).to_be_visible()
    await expect(desk.get_by_text("Engagement created.")).to_have_count(0)

    # 2. Before the portal exists the send form is there, disabled, and says what it waits for.
    send = desk.get_by_role("button", name="Send Tax Return Documents to Customer Portal")
    await expect(send).to_be_disabled()
    await expect(desk.locator("#file-0")).to_be_disabled()
    await expect(desk.locator("#send-gate")).to_have_text(
        "Waiting for Shelby O'Neil to create and verify the Customer Portal account: "
        "this form opens by itself then."
    )
    # 1. On a joint return every document defaults to both signers.
    for index in range(3):
        await expect(desk.locator(f"#who-{index}")).to_have_value("both")
    # 13. Customer Portal is a button that says whether its choices are open.
    portal_button = desk.locator("#signer-taxpayer").get_by_role(
        "button", name=re.compile("^Customer Portal")
    )
    await expect(portal_button).to_have_attribute("aria-expanded", "false")
    await portal_button.click()
    await expect(portal_button).to_have_attribute("aria-expanded", "true")
    await expect(desk.get_by_role("button", name="Email: she*****net")).to_be_visible()
    # 5. The address on the return has a typo: corrected right there, and the link goes to it.
    choice = desk.locator("#choice-taxpayer")
    await choice.get_by_label("Send by").select_option("email")
    await choice.get_by_label("Corrected email or mobile phone").fill("not an address")
    await shot(desk, "preparer-newcomer-engagement-waiting-desktop")
    await choice.get_by_role("button", name="Save and send the link").click()
    await expect(desk.locator("#signer-taxpayer [role=alert]")).to_contain_text("Enter an email address")
    await expect(choice).to_be_visible()  # open again, with the refusal
    await choice.get_by_label("Corrected email or mobile phone").fill(TAXPAYER["email"])
    await choice.get_by_role("button", name="Save and send the link").click()
    # On a joint return the notice says to whom it went.
    await expect(
        desk.get_by_text("The link has successfully been sent to Shelby O'Neil (she*****com)!")
    ).to_be_visible()
    await expect(desk).not_to_have_url(re.compile(r"m=link-sent"))
    await expect(desk.locator("#signer-taxpayer")).to_contain_text("Email she*****com")
    await expect(desk.locator("#timeline")).to_contain_text(
        "Corrected the taxpayer's email from she*****net to she*****com"
    )
    link = re.search(r"https?://\S+/invite/\S+", (await portal.message("invite", TAXPAYER["email"]))["body"])
    assert link

    page_phone = mobile
    await page_phone.goto(f"{portal.url}/preparer/engagements/{eid}")
    await shot(page_phone, "preparer-newcomer-engagement-waiting-phone")

    # 2. The client registers and verifies: the form opens by itself, without a reload.
    shelby = Client(portal, client_api, TAXPAYER)
    await shelby.register(link.group(0), "shelby")
    await shelby.verify()
    await expect(send).to_be_enabled(timeout=20_000)
    await expect(desk.locator("#send-gate")).to_be_hidden()

    # 1. A joint 8879 going out with one signer is questioned before anything is sent.
    await desk.locator("#file-0").set_input_files(pdf("Form 8879.pdf"))
    await desk.locator("#who-0").select_option("taxpayer")
    await desk.locator("#file-1").set_input_files(pdf("Engagement letter.pdf"))
    await desk.locator("#who-1").select_option("none")
    await send.click()
    question = desk.locator("#one-signer")
    await expect(question).to_be_visible()
    await expect(question).to_contain_text("Only one spouse would sign Form 8879.pdf.")
    await expect(desk.get_by_label("Yes, send with only one signer")).to_be_focused()
    await shot(desk, "preparer-newcomer-one-signer-desktop")
    await desk.locator("#who-0").select_option("both")
    await send.click()
    await expect(
        desk.get_by_text("Transfer Completed - Documents are now on Customer Portal")
    ).to_be_visible()

    # 1. Per document, who still owes a signature.
    form = desk.locator("#doc-lists tr", has_text="Form 8879.pdf")
    await expect(form.locator("[data-owes]")).to_have_text("Still to sign: Shelby O'Neil, Anika O'Neil")
    letter = desk.locator("#doc-lists tr", has_text="Engagement letter.pdf")
    await expect(letter.locator("[data-owes]")).to_have_count(0)
    documents = await shelby.call("GET", "/api/taxpayer/documents")
    form_id = next(d["id"] for d in documents if d["name"] == "Form 8879.pdf")
    await shelby.call(
        "PUT", "/api/taxpayer/signature", files={"image": ("s.png", signature_png(), "image/png")}
    )
    await shelby.call("POST", f"/api/taxpayer/documents/{form_id}/sign")
    await expect(form.locator("[data-owes]")).to_have_text("Still to sign: Anika O'Neil", timeout=20_000)

    # 4. One upload is one line; page views hide behind "Show views".
    await shelby.call(
        "POST", "/api/taxpayer/uploads", files=[("files", ("W-2.pdf", make_pdf(1, "W-2"), "application/pdf"))]
    )
    timeline = desk.get_by_role("list", name="Timeline")
    await expect(timeline).to_contain_text("Uploaded 1 file(s)", timeout=20_000)
    await desk.reload()
    await expect(timeline.locator("li", has_text="Uploaded")).to_have_count(1)
    await expect(timeline.locator("li", has_text="Opened the engagement").first).to_be_hidden()
    await desk.get_by_label("Show views").check()
    await expect(timeline.locator("li", has_text="Opened the engagement").first).to_be_visible()
    # 15. The scrolling timeline takes focus (keyboard users can scroll it).
    await timeline.focus()
    await expect(timeline).to_be_focused()
    await shot(desk, "preparer-newcomer-engagement-desktop")
    await mobile.goto(f"{portal.url}/preparer/engagements/{eid}")
    await shot(mobile, "preparer-newcomer-engagement-phone")
    await mobile.goto(f"{portal.url}/preparer/engagements/new")
    await mobile.get_by_role("button", name="Joint return: add the spouse").click()
    await shot(mobile, "preparer-newcomer-new-joint-phone")
