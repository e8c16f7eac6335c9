"""A newcomer's first hour, in Chromium: signing and uploading by keyboard with a screen reader's live
region, the drop area that opens the file chooser, and the dev outbox whose links a person clicks."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import browser
import pytest
from browser import Portal, draw_with_finger, draw_with_mouse, register, save_signature, shot, verify
from journey import TAXPAYER
from pdfs import make_pdf
from playwright.async_api import FileChooser, expect

pytestmark = pytest.mark.e2e
chromium, portal = browser.chromium, browser.portal  # the fixtures this module uses

LIVE = "#live-status"


async def test_keyboard_and_screen_reader_upload_sign_and_chat(portal: Portal) -> None:
    eid = await portal.create_engagement(TAXPAYER)
    link = await portal.invite(eid, "taxpayer", TAXPAYER["email"])
    page = await (await portal.person()).new_page()
    await register(page, link, TAXPAYER, "shelby")
    await verify(portal, page, TAXPAYER)
    live = page.locator(LIVE)
    assert await live.get_attribute("role") == "status"  # on the page from the start, not inserted later

    # My Files: a click anywhere on the drop area opens the chooser; so do Space and Enter on it. (A fresh
    # page for each: Chromium ignores a chooser asked for while the previous one is still closing.)
    zone = page.locator("[data-drop-zone]")

    async def open_chooser(open_it: Callable[[], Awaitable[None]]) -> FileChooser:
        await page.goto(f"{portal.url}/portal/files")
        await page.wait_for_load_state()  # upload.js is deferred
        async with page.expect_file_chooser() as chooser:
            await open_it()
        assert (await chooser.value).is_multiple()
        return await chooser.value

    await open_chooser(zone.get_by_text("Drop files here to upload").click)
    await expect(zone.get_by_text("Choose files to upload")).to_be_hidden()
    await open_chooser(zone.get_by_text("up to 25 MB each", exact=False).click)
    await open_chooser(lambda: page.locator("#files").press("Space"))
    chooser = await open_chooser(lambda: page.locator("#files").press("Enter"))
    await chooser.set_files(
        [{"name": "W-2 Acme.pdf", "mimeType": "application/pdf", "buffer": make_pdf(1, "W-2")}]
    )
    await expect(live).to_have_text("Uploaded W-2 Acme.pdf.")
    await expect(page.locator("#file-list")).to_contain_text("W-2 Acme.pdf")
    await expect(page.locator("#files")).to_be_focused()  # still where the person was
    await shot(page, "keyboard-my-files-desktop")

    # Files From My Preparer: Enter on Sign, hear the result, keep going from the same row.
    form_id, _ = await portal.send_documents(
        eid, [("Form 8879.pdf", make_pdf(1, "Form 8879"), "taxpayer"), ("Return.pdf", make_pdf(3), "none")]
    )
    await page.goto(f"{portal.url}/portal/signature")
    await draw_with_mouse(page)
    await save_signature(page)
    await page.goto(f"{portal.url}/portal/documents")
    row = page.locator(f"#doc-{form_id}")
    await expect(page.get_by_text("All done: your preparer has been told.")).to_be_hidden()
    await row.get_by_role("button", name=re.compile("^Sign")).focus()
    await page.keyboard.press("Enter")
    await expect(live).to_have_text("Signed! Form 8879.pdf. All done: your preparer has been told.")
    view = row.get_by_role("link", name=re.compile("^View"))
    await expect(view).to_be_focused()
    assert await row.locator("[role=status], [role=alert]").count() == 0  # nothing freshly inserted to miss
    await expect(page.locator("#sign-summary")).to_have_text("All done: your preparer has been told.")
    await shot(page, "keyboard-documents-signed-desktop")

    # Messages: Send by keyboard; the live region says it went.
    await page.goto(f"{portal.url}/portal/messages")
    await page.get_by_label("Your message").fill("Signed, thanks!")
    await page.get_by_role("button", name="Send").focus()
    await page.keyboard.press("Enter")
    await expect(live).to_have_text("Message sent.")
    await expect(page.get_by_role("button", name="Send")).to_be_focused()
    await expect(page.locator("#chat-log .msg.mine")).to_have_count(1)
    await page.get_by_label("Your message").fill("   ")  # only spaces: the refusal is read out
    await page.get_by_role("button", name="Send").press("Enter")
    await expect(live).to_have_text("Write a message first.")
    await shot(page, "keyboard-messages-desktop")


async def test_phone_reads_choose_files_and_the_dev_outbox_links_open_the_invitation(portal: Portal) -> None:
    eid = await portal.create_engagement(TAXPAYER)
    await portal.invite(eid, "taxpayer", TAXPAYER["email"])

    # The dev outbox, as a person trying Portico reads it: the invitation link is a link.
    desk = await (await portal.person()).new_page()
    await desk.goto(f"{portal.url}/dev/outbox")
    invitation = desk.get_by_role("link", name=re.compile(r"^http.*invite"))
    await expect(invitation).to_have_count(1)
    await shot(desk, "dev-outbox-desktop")
    phone = await (await portal.person(phone=True, width=390)).new_page()
    await phone.goto(f"{portal.url}/dev/outbox")
    await shot(phone, "dev-outbox-phone")
    link = phone.get_by_role("link", name=re.compile(r"^http.*invite"))
    href = await link.get_attribute("href")
    async with phone.context.expect_page() as opened:
        await link.tap()
    invite_page = await opened.value
    await expect(invite_page.get_by_role("heading", name="Register your account")).to_be_visible()
    assert invite_page.url == href

    # On a touch screen the drop area says what tapping it does, and a tap anywhere on it opens the chooser.
    await register(invite_page, invite_page.url, TAXPAYER, "shelby")
    await verify(portal, invite_page, TAXPAYER)
    await invite_page.goto(f"{portal.url}/portal/files")
    await invite_page.wait_for_load_state()
    zone = invite_page.locator("[data-drop-zone]")
    await expect(zone.get_by_text("Choose files to upload")).to_be_visible()
    await expect(zone.get_by_text("Drop files here to upload")).to_be_hidden()
    await shot(invite_page, "my-files-touch-phone")
    async with invite_page.expect_file_chooser() as tapped:
        await zone.get_by_text("Choose files to upload").tap()
    await (await tapped.value).set_files([])

    # Signing on the phone: the last signature says "All done" on the documents page as well.
    [form_id] = await portal.send_documents(eid, [("Form 8879.pdf", make_pdf(1, "Form 8879"), "taxpayer")])
    await invite_page.goto(f"{portal.url}/portal/signature")
    await draw_with_finger(invite_page)
    await save_signature(invite_page)
    await invite_page.goto(f"{portal.url}/portal/documents")
    await invite_page.locator(f"#doc-{form_id}").get_by_role("button", name=re.compile("^Sign")).tap()
    await expect(invite_page.locator("#sign-summary")).to_have_text("All done: your preparer has been told.")
    await expect(invite_page.locator(LIVE)).to_contain_text("All done: your preparer has been told.")
    await shot(invite_page, "documents-all-done-phone")
    await invite_page.goto(f"{portal.url}/portal/messages")
    await shot(invite_page, "messages-phone-390")
