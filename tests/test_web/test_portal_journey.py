"""The taxpayer portal in Chromium: a single and a joint return from the invitation to "Signed!"."""

from __future__ import annotations

import asyncio
import re

import browser
import pytest
from browser import (
    SCREENSHOTS,
    Portal,
    draw_with_finger,
    draw_with_mouse,
    enter_code,
    register,
    save_signature,
    shot,
    verify,
)
from journey import SPOUSE, TAXPAYER
from pdfs import make_pdf
from playwright.async_api import Page, expect

from esign import pdfsign

pytestmark = pytest.mark.e2e
chromium, portal = browser.chromium, browser.portal  # the fixtures this module uses


async def signer_reports(portal: Portal, page: Page, document_id: int) -> list[pdfsign.SignatureReport]:
    """Fetches what View opens and validates the signers' signatures in it (a firm seal may follow)."""
    link = page.locator(f"#doc-{document_id}").get_by_role("link", name=re.compile("^View"))
    assert await link.get_attribute("target") == "_blank"
    response = await page.request.get(portal.url + (await link.get_attribute("href") or ""))
    assert response.ok and response.headers["content-type"] == "application/pdf"
    ca = portal.settings.data_dir / "signing" / "dev-ca-cert.pem"
    reports = await asyncio.to_thread(pdfsign.read_signatures, await response.body(), [ca])
    return [r for r in reports if r.field_name in ("Taxpayer", "Spouse")]


async def test_single_return_from_invitation_to_signed(portal: Portal) -> None:
    eid = await portal.create_engagement(TAXPAYER)
    link = await portal.invite(eid, "taxpayer", TAXPAYER["email"])
    context = await portal.person()
    page = await context.new_page()

    # Invitation landing + registration, with the password rules shown as the person types.
    await page.goto(link)
    await expect(page.get_by_role("heading", name="Register your account")).to_be_visible()
    await shot(page, "register-desktop")
    await page.get_by_label("User name", exact=True).fill("shelby")
    await page.get_by_label("Password", exact=True).fill("password1")
    await expect(
        page.locator("#password-rules li.unmet", has_text="Not a commonly used password")
    ).to_be_visible()
    await page.get_by_label("Password", exact=True).fill("a long walk on the beach")
    await expect(page.locator("#password-rules li.met")).to_have_count(3)
    await register(page, link, TAXPAYER, "shelby")
    await expect(page.get_by_role("heading", name="Verify your account")).to_be_visible()
    await expect(page.get_by_role("button", name="Send Email: she*****com")).to_be_visible()
    await expect(page.get_by_role("button", name="Send Text: 70*****97")).to_be_visible()
    await shot(page, "verify-desktop")
    before = await portal.last_outbox_id()
    await page.get_by_role("button", name="Send Email: she*****com").click()
    await expect(page.get_by_text("Code sent", exact=True)).to_be_visible()
    code_input = page.get_by_label("6-digit code")
    assert await code_input.get_attribute("inputmode") == "numeric"
    assert await code_input.get_attribute("autocomplete") == "one-time-code"
    await shot(page, "verify-code-sent-desktop")
    await page.reload()  # the page remembers the code went out, and the resend cooldown
    await expect(page.get_by_text("Code sent", exact=True)).to_be_visible()
    await enter_code(portal, page, await portal.code("code", TAXPAYER["email"], newer_than=before))
    await expect(page.get_by_text("Your account is verified. Welcome!")).to_be_visible()

    # Home before anything was sent.
    await expect(page.get_by_role("heading", name="Pending tasks")).to_be_visible()
    await expect(page.get_by_text("Upload your tax documents", exact=True)).to_be_visible()
    await shot(page, "home-empty-desktop")

    # My Files: several at once, each with its own progress, then the list with dates.
    await page.get_by_role("link", name="My Files").first.click()
    await page.wait_for_url("**/portal/files")
    await page.wait_for_load_state()  # upload.js is deferred: let it attach before choosing files
    await page.locator("#files").set_input_files(
        [
            {"name": "W-2 Acme.pdf", "mimeType": "application/pdf", "buffer": make_pdf(1, "W-2")},
            {"name": "1099-INT.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8\xff\xe0" + b"0" * 4000},
        ]
    )
    await expect(page.locator("[data-upload-list] li.done")).to_have_count(2)
    await expect(page.locator("#file-list tbody tr")).to_have_count(2)
    await expect(page.locator("#file-list")).to_contain_text("W-2 Acme.pdf")
    await shot(page, "my-files-desktop")

    # The preparer sends the return: Form 8879 needs the taxpayer's signature, the return itself none.
    form_id, return_id = await portal.send_documents(
        eid, [("Form 8879.pdf", make_pdf(1, "Form 8879"), "taxpayer"), ("Return.pdf", make_pdf(3), "none")]
    )
    await page.get_by_role("link", name="Home").first.click()
    await expect(page.get_by_text("Sign Form 8879.pdf", exact=True)).to_be_visible()
    await expect(page.get_by_text("Uploaded W-2 Acme.pdf", exact=True)).to_be_visible()  # a completed task
    await shot(page, "home-desktop")

    # Documents: add a signature first, drawn with the mouse.
    await page.get_by_role("link", name="Documents").first.click()
    await expect(
        page.get_by_role("columnheader", name=re.compile("Taxpayer Sign Document")).first
    ).to_be_visible()
    await expect(page.get_by_text("Date Sent").first).to_be_visible()
    row = page.locator(f"#doc-{form_id}")
    await expect(row).to_contain_text("PST")  # Date Sent in the taxpayer's own time zone (Los Angeles)
    await shot(page, "documents-unsigned-desktop")
    await page.get_by_role("link", name="Click To Add Signature").click()
    await expect(page.get_by_role("heading", name="Edit Signature")).to_be_visible()
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("[data-pad-status]")).to_have_text("Draw your signature first.")
    await draw_with_mouse(page)
    await save_signature(page)
    await shot(page, "signature-desktop")
    await page.get_by_role("link", name="Back").click()

    await expect(page.get_by_text("Signature On File").locator("visible=true")).to_be_visible()
    await expect(page.locator(f"#doc-{return_id}")).to_contain_text("No signature needed")
    await row.get_by_role("button", name=re.compile("^Sign")).click()
    await expect(row.get_by_text("Signed!")).to_be_visible()
    await expect(page.locator("#sign-summary")).to_have_text("All done: your preparer has been told.")
    await shot(page, "documents-signed-desktop")

    # View opens a new tab with the signed version.
    async with context.expect_page() as new_tab:
        await row.get_by_role("link", name=re.compile("^View")).click()
    tab = await new_tab.value
    assert tab.url.endswith(f"/portal/documents/{form_id}/view")
    await tab.wait_for_timeout(1000)  # Chromium's PDF viewer draws the page
    await tab.screenshot(path=str(SCREENSHOTS / "view-signed-desktop.png"))
    await tab.close()
    reports = await signer_reports(portal, page, form_id)
    assert [(r.field_name, r.signer_name, r.intact, r.valid, r.trusted) for r in reports] == [
        ("Taxpayer", "Shelby O'Neil", True, True, True)
    ]

    # Messages: a new message from the preparer shows up without a reload; a reply reaches the preparer.
    await page.get_by_role("link", name="Messages").first.click()
    await expect(page.get_by_text("No messages yet.")).to_be_visible()
    sent = await portal.preparer.post(
        f"/api/engagements/{eid}/messages", json={"body": "Thanks! Your return is ready to file."}
    )
    assert sent.status_code == 201, sent.text
    await expect(page.locator("#chat-log")).to_contain_text("Thanks! Your return is ready to file.")
    await page.get_by_label("Your message").fill("Great, thank you!")
    await page.get_by_role("button", name="Send").click()
    await expect(page.locator("#chat-log .msg.mine")).to_have_count(1)
    await expect(page.get_by_label("Your message")).to_have_value("")
    await page.wait_for_timeout(3500)  # a poll after the send must not show the reply twice
    await expect(page.locator("#chat-log .msg")).to_have_count(2)
    chat = (await portal.preparer.get(f"/api/engagements/{eid}/messages")).json()
    assert [m["body"] for m in chat] == ["Thanks! Your return is ready to file.", "Great, thank you!"]
    await shot(page, "messages-desktop")

    await page.get_by_role("link", name="Home").first.click()
    await expect(page.get_by_text("You're all done for now.", exact=False)).to_be_visible()
    await page.get_by_role("button", name="Log out").first.click()
    await expect(page.get_by_text("You are logged out.")).to_be_visible()
    await shot(page, "login-desktop")
    await context.close()


async def test_joint_return_each_signer_on_their_own_device(portal: Portal) -> None:
    """The taxpayer signs at a desktop with the mouse; the spouse on a phone with a finger."""
    eid = await portal.create_engagement(TAXPAYER, SPOUSE)
    taxpayer_link = await portal.invite(eid, "taxpayer", TAXPAYER["email"])
    spouse_link = await portal.invite(eid, "spouse", SPOUSE["email"])
    desk = await (await portal.person()).new_page()
    phone = await (await portal.person(phone=True)).new_page()

    await register(desk, taxpayer_link, TAXPAYER, "shelby")
    await verify(portal, desk, TAXPAYER)
    await phone.goto(spouse_link)
    await shot(phone, "register-phone")
    await register(phone, spouse_link, SPOUSE, "jordan")
    await expect(phone.get_by_role("button", name="Send Email: jor*****com")).to_be_visible()
    await shot(phone, "verify-phone")
    await verify(portal, phone, SPOUSE)

    ids = await portal.send_documents(
        eid, [("Form 8879.pdf", make_pdf(1, "Form 8879"), "both"), ("Return.pdf", make_pdf(2), "none")]
    )
    form_id = ids[0]
    await phone.goto(f"{portal.url}/portal")
    await expect(phone.get_by_text("Sign Form 8879.pdf", exact=True)).to_be_visible()
    await shot(phone, "home-phone")

    # Taxpayer first, at the desktop.
    await desk.goto(f"{portal.url}/portal/signature")
    await draw_with_mouse(desk)
    await save_signature(desk)
    await desk.goto(f"{portal.url}/portal/documents")
    row = desk.locator(f"#doc-{form_id}")
    await expect(row).to_contain_text("Jordan: awaiting signature")
    await row.get_by_role("button", name=re.compile("^Sign")).click()
    await expect(row.get_by_text("Signed!")).to_be_visible()
    await desk.reload()
    await expect(desk.get_by_text("Still missing: Jordan's signature.")).to_be_visible()
    await expect(desk.locator("#sign-summary")).not_to_contain_text("All done")  # not while Jordan owes one

    # Spouse on the phone: menu, signature with a finger, Sign.
    await phone.get_by_text("Menu").click()
    await phone.get_by_role("link", name="Documents").first.click()
    prow = phone.locator(f"#doc-{form_id}")
    await expect(prow).to_contain_text("Shelby: signed")
    await expect(prow).to_contain_text("Add your signature first")
    await shot(phone, "documents-unsigned-phone")
    await phone.get_by_role("link", name="Click To Add Signature").click()
    await draw_with_finger(phone)
    await save_signature(phone)
    await shot(phone, "signature-phone")
    await phone.get_by_role("link", name="Back").click()
    await prow.get_by_role("button", name=re.compile("^Sign")).click()
    await expect(prow.get_by_text("Signed!")).to_be_visible()
    # The last signature: the documents page says so too, not only the home page.
    await expect(phone.locator("#sign-summary")).to_have_text("All done: your preparer has been told.")
    await shot(phone, "documents-signed-phone")

    reports = await signer_reports(portal, phone, form_id)
    assert [(r.field_name, r.signer_name, r.intact, r.trusted) for r in reports] == [
        ("Taxpayer", "Shelby O'Neil", True, True),
        ("Spouse", "Jordan O'Neil", True, True),
    ]

    # The rest of the spouse's pages, at phone size.
    await phone.goto(f"{portal.url}/portal/files")
    await shot(phone, "my-files-phone")
    await phone.goto(f"{portal.url}/portal/messages")
    await phone.get_by_label("Your message").fill("Signed from my phone.")
    await phone.get_by_role("button", name="Send").click()
    await expect(phone.locator("#chat-log .msg.mine")).to_have_count(1)
    await shot(phone, "messages-phone")
    await phone.goto(f"{portal.url}/portal")
    await shot(phone, "home-done-phone")
    await phone.get_by_text("Menu").click()
    await shot(phone, "menu-phone")
