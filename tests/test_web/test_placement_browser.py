"""The placement editor in Chromium (issue 17): a preparer chooses a joint 8879, sees the places Portico
found drawn on its page, drags the taxpayer's signature with the mouse, moves and resizes the date with
the keyboard, removes the spouse's signature and is warned before sending, adds it back, sends, and the
document keeps exactly the places the editor showed. On a phone the same panel shows the places without
editing controls. Screenshots: test-output/screenshots/placement-*.png (axe-core and the layout checks
run on each)."""

from __future__ import annotations

import json
import re
from typing import Any

import browser
import pytest
import test_preparer_workspace as workspace
from browser import Portal, register, shot, verify
from journey import SPOUSE, TAXPAYER
from pdfs import print_form_8879
from placement_pdfs import signature_form
from playwright.async_api import Locator, Page, expect
from preparer_steps import Authenticator, enrol_directly
from sqlmodel import Session, select
from test_preparer_workspace import Client, log_in

from core.models import Document, Preparer
from esign.boxes import loads

pytestmark = pytest.mark.e2e
chromium, portal = browser.chromium, browser.portal  # the fixtures this module uses
client_api = workspace.client_api
PLACER = "placer@firm.test"
ADMIN = "grace@firm.test"
FORM = "Form 8879 joint.pdf"
NEXT_YEAR = {"client": "Maria Garcia and Tom Garcia", "ssn": "111-22-3333", "year": 2026}


def chosen(name: str, data: bytes) -> Any:
    return {"name": name, "mimeType": "application/pdf", "buffer": data}


async def places_of(page: Page, index: int = 0) -> list[dict[str, Any]]:
    value = await page.locator(f"input[name=boxes-{index}]").input_value()
    return json.loads(value) if value else []


def one(places: list[dict[str, Any]], role: str, kind: str) -> dict[str, Any]:
    [place] = [p for p in places if p["role"] == role and p["kind"] == kind]
    return place


async def centre(locator: Locator) -> tuple[float, float]:
    box = await locator.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


async def joint_engagement_ready_to_send(portal: Portal, client_api: Any, browser: Page | None = None) -> int:
    """A joint return whose taxpayer registered and verified (in `browser` when given, else by the API)."""
    eid = await portal.create_engagement(TAXPAYER, SPOUSE)
    link = await portal.invite(eid, "taxpayer", TAXPAYER["email"])
    if browser is not None:
        await register(browser, link, TAXPAYER, "shelby")
        await verify(portal, browser, TAXPAYER)
        return eid
    shelby = Client(portal, client_api, TAXPAYER)
    await shelby.register(link, "shelby")
    await shelby.verify()
    return eid


async def test_the_preparer_places_signatures_and_the_document_keeps_them(
    portal: Portal, client_api: Any
) -> None:
    phone = Authenticator(enrol_directly(portal.resources, PLACER, "Lovelace Tax", "Pat Placer"))
    shelby = await (await portal.person()).new_page()
    eid = await joint_engagement_ready_to_send(portal, client_api, shelby)
    desk = await (await portal.person()).new_page()
    await log_in(desk, portal, PLACER, phone)
    await desk.goto(f"{portal.url}/preparer/engagements/{eid}")
    send = desk.get_by_role("button", name="Send Tax Return Documents to Customer Portal")
    await expect(send).to_be_enabled(timeout=20_000)

    # Choosing the PDF shows its pages with the places found on the printed lines.
    await desk.locator("#file-0").set_input_files(chosen(FORM, signature_form()))
    panel = desk.get_by_role("region", name="Review signature places")
    # (The first PDF of a process starts its parsing pool: allow for it.)
    await expect(panel.get_by_role("heading", name="Review signature places")).to_be_visible(timeout=30_000)
    await expect(panel).to_contain_text("Places Portico found on the form.")
    await expect(panel.get_by_role("img", name="Page 1")).to_be_visible()
    await expect(panel.get_by_role("img", name="Page 2")).to_be_visible()
    found = await places_of(desk)
    assert {(p["role"], p["kind"]) for p in found} == {
        ("taxpayer", "signature"),
        ("taxpayer", "date"),
        ("spouse", "signature"),
        ("spouse", "date"),
    }
    await panel.scroll_into_view_if_needed()
    await shot(desk, "placement-editor-found-desktop")

    # Drag the taxpayer's signature 90 px right and 30 px up with the mouse.
    signature = panel.get_by_role("group", name="Taxpayer: signature, page 1")
    sheet = panel.locator(".placement-sheet").first
    sheet_box = await sheet.bounding_box()
    assert sheet_box is not None
    points_per_px = 612 / sheet_box["width"]
    x, y = await centre(signature)
    await desk.mouse.move(x, y)
    await desk.mouse.down()
    await desk.mouse.move(x + 45, y - 15, steps=4)
    await desk.mouse.move(x + 90, y - 30, steps=4)
    await desk.mouse.up()
    before, after = one(found, "taxpayer", "signature"), one(await places_of(desk), "taxpayer", "signature")
    assert after["x"] == pytest.approx(before["x"] + 90 * points_per_px, abs=1.5)
    assert after["y"] == pytest.approx(before["y"] + 30 * points_per_px, abs=1.5)  # up the page: y grows
    assert (after["width"], after["height"]) == (before["width"], before["height"])

    # The taxpayer's date, by keyboard: five steps left (2 points each), then two wider.
    date = panel.get_by_role("group", name="Taxpayer: date, page 1")
    await date.focus()
    for _ in range(5):
        await desk.keyboard.press("ArrowLeft")
    for _ in range(2):
        await desk.keyboard.press("Shift+ArrowRight")
    before, after = one(found, "taxpayer", "date"), one(await places_of(desk), "taxpayer", "date")
    assert after["x"] == pytest.approx(before["x"] - 10, abs=0.11)
    assert after["width"] == pytest.approx(before["width"] + 4, abs=0.11)
    assert after["y"] == pytest.approx(before["y"], abs=0.11)

    # Without the spouse's signature the form does not go: the warning says why and what to do.
    await panel.get_by_role("group", name="Spouse: signature, page 1").focus()
    await desk.keyboard.press("Delete")
    await expect(panel.get_by_role("group", name="Spouse: signature, page 1")).to_have_count(0)
    await send.click()
    warning = panel.locator(".placement-warning")
    await expect(warning).to_be_visible()
    await expect(warning).to_contain_text(f"No signature place for the spouse on {FORM}")
    await expect(warning).to_be_focused()
    await shot(desk, "placement-editor-warning-desktop")
    await panel.get_by_role("button", name="Add signature place for the spouse").click()
    added = panel.get_by_role("group", name="Spouse: signature, page 1")
    await expect(added).to_be_focused()
    for _ in range(3):
        await desk.keyboard.press("ArrowDown")
    await expect(warning).to_be_hidden()
    shown = await places_of(desk)
    assert len(shown) == 4

    # Sent: the document keeps the places the editor showed, point for point.
    await send.click()
    await expect(desk.get_by_text("Transfer Completed")).to_be_visible()
    with Session(portal.resources.engine) as db:
        document = db.exec(select(Document).where(Document.name == FORM)).one()
    stored = {(b.role, b.kind): b for b in loads(document.signature_boxes)}
    assert set(stored) == {(p["role"], p["kind"]) for p in shown}
    for place in shown:
        box = stored[(place["role"], place["kind"])]
        assert (box.page, box.x, box.y, box.width, box.height) == pytest.approx(
            (place["page"], place["x"], place["y"], place["width"], place["height"]), abs=0.05
        )

    # The taxpayer's view of the document shows where she signs: her two places, not the spouse's.
    await shelby.goto(f"{portal.url}/portal/documents/{document.id}/view")
    await expect(shelby.get_by_role("heading", name="Where you sign")).to_be_visible()
    await expect(shelby.locator(".where-list")).to_have_text("Page 1: your signature, the date")
    sheet = shelby.locator(".placement-sheet").first
    await expect(sheet.locator(".place")).to_have_count(2)
    await expect(sheet.locator(".place.role-spouse")).to_have_count(0)
    await expect(sheet.locator(".place.kind-signature")).to_have_text("Sign here")
    await expect(sheet.locator(".place.kind-date")).to_have_text("Date")
    mine = one(shown, "taxpayer", "signature")
    img, drawn = await sheet.bounding_box(), await sheet.locator(".place.kind-signature").bounding_box()
    assert img is not None and drawn is not None
    scale = img["width"] / 612
    assert drawn["x"] - img["x"] == pytest.approx(mine["x"] * scale, abs=2)
    assert drawn["y"] - img["y"] == pytest.approx((792 - mine["y"] - mine["height"]) * scale, abs=2)
    await shot(shelby, "placement-client-view-desktop")
    await shelby.set_viewport_size({"width": 375, "height": 812})
    await shot(shelby, "placement-client-view-phone")
    pdf_link = shelby.get_by_role("link", name=re.compile("^Open the PDF"))
    response = await shelby.request.get(portal.url + (await pdf_link.get_attribute("href") or ""))
    assert response.headers["content-type"] == "application/pdf"


async def test_on_a_phone_the_places_are_shown_not_edited(portal: Portal, client_api: Any) -> None:
    phone = Authenticator(enrol_directly(portal.resources, PLACER, "Lovelace Tax", "Pat Placer"))
    eid = await joint_engagement_ready_to_send(portal, client_api)
    mobile = await (await portal.person(phone=True)).new_page()
    await log_in(mobile, portal, PLACER, phone)
    await mobile.goto(f"{portal.url}/preparer/engagements/{eid}")
    await expect(mobile.locator("#file-0")).to_be_enabled(timeout=20_000)
    await mobile.locator("#file-0").set_input_files(chosen(FORM, signature_form()))
    panel = mobile.get_by_role("region", name="Review signature places")
    await expect(panel.get_by_role("img", name="Page 1")).to_be_visible(timeout=30_000)
    await expect(panel).to_contain_text("Open this page on a wider screen to move, add or remove places.")
    await expect(panel.locator(".place.role-taxpayer.kind-signature")).to_be_visible()
    await expect(panel.get_by_role("button", name=re.compile("^Add "))).to_have_count(0)
    await expect(panel.locator(".place[tabindex]")).to_have_count(0)
    assert len(await places_of(mobile)) == 4  # what was found still goes with the form
    await panel.scroll_into_view_if_needed()
    await shot(mobile, "placement-editor-phone")

    # A file that is no PDF gets the refusal a send gives, in the panel.
    await mobile.locator("#file-1").set_input_files(
        {"name": "photo.pdf", "mimeType": "application/pdf", "buffer": b"\x89PNG\r\n\x1a\nnot a pdf"}
    )
    refusal = mobile.get_by_role("region", name="Signature places of document 2").get_by_role("alert")
    await expect(refusal).to_contain_text("photo.pdf:")
    await expect(mobile.locator("input[name=boxes-1]")).to_have_value("")


def make_admin(portal: Portal, email: str) -> None:
    with Session(portal.resources.engine) as db:
        row = db.exec(select(Preparer).where(Preparer.email == email)).one()
        row.is_admin = True
        db.add(row)
        db.commit()


async def test_turned_pages_templates_and_the_firms_settings(portal: Portal, client_api: Any) -> None:
    phone = Authenticator(enrol_directly(portal.resources, ADMIN, "Lovelace Tax", "Grace Admin"))
    make_admin(portal, ADMIN)
    eid = await joint_engagement_ready_to_send(portal, client_api)
    desk = await (await portal.person()).new_page()
    await log_in(desk, portal, ADMIN, phone)
    await desk.goto(f"{portal.url}/preparer/engagements/{eid}")
    await expect(desk.locator("#file-0")).to_be_enabled(timeout=20_000)

    # A landscape form printed on a page turned a quarter (either way): each place is drawn on its printed
    # line as a reader sees the page (the image is 792 points across, 612 down; lines in that upright space).
    panel = desk.get_by_role("region", name="Review signature places (document 1)")
    for rotate in (90, 270):
        turned = print_form_8879(rotate=rotate)
        await desk.locator("#file-0").set_input_files(chosen(f"Form 8879 turned {rotate}.pdf", turned.pdf))
        await expect(panel).to_contain_text(f"turned {rotate}.pdf (document 1)", timeout=30_000)
        sheet = await panel.locator(".placement-sheet").first.bounding_box()
        assert sheet is not None
        scale = sheet["width"] / 792
        assert sheet["height"] / scale == pytest.approx(612, abs=2)
        for role, name in (("taxpayer", "Taxpayer"), ("spouse", "Spouse")):
            line = turned.line(role)
            drawn = await panel.get_by_role("group", name=f"{name}: signature, page 1").bounding_box()
            assert drawn is not None
            assert drawn["x"] - sheet["x"] == pytest.approx(line.x0 * scale, abs=6 * scale), (rotate, role)
            bottom = drawn["y"] + drawn["height"] - sheet["y"]
            assert bottom == pytest.approx((612 - line.y) * scale, abs=6 * scale), (rotate, role)
        await panel.scroll_into_view_if_needed()
        await shot(desk, f"placement-editor-turned-{rotate}-desktop")

    # Save the places of this year's 8879 as the firm's template; next year's, for other clients, gets them.
    await desk.locator("#file-0").set_input_files(chosen(FORM, signature_form()))
    await expect(panel).to_contain_text("Places Portico found on the form.", timeout=30_000)
    await panel.get_by_role("group", name="Taxpayer: signature, page 1").focus()
    for _ in range(3):
        await desk.keyboard.press("ArrowUp")
    saved = await places_of(desk, 0)
    await panel.get_by_label("Template name").fill("Form 8879 from Drake")
    await panel.get_by_role("button", name="Save these places as a template for this form").click()
    await expect(panel.get_by_role("status").filter(has_text="Saved")).to_have_text(
        "Saved: “Form 8879 from Drake” is used for this form from now on."
    )
    await desk.locator("#file-1").set_input_files(chosen("Garcia 8879.pdf", signature_form(**NEXT_YEAR)))
    second = desk.get_by_role("region", name="Review signature places (document 2)")
    await expect(second).to_contain_text("Places from your firm's template “Form 8879 from Drake”.")
    assert await places_of(desk, 1) == saved

    # Firm settings: the template is listed, a label of the firm's own is added, the template deleted.
    await desk.goto(f"{portal.url}/preparer/settings#places")
    places = desk.locator("#places")
    await expect(places.get_by_role("row", name=re.compile("Form 8879 from Drake"))).to_contain_text(
        "taxpayer: signature, date · spouse: signature, date"
    )
    await places.get_by_label("Signer").select_option("taxpayer")
    await places.get_by_label("Label as printed on the signature line").fill("Client signature")
    await places.get_by_role("button", name="Add label").click()
    await expect(desk.get_by_text("Label added: Portico looks for it")).to_be_visible()
    await expect(desk.locator("#places")).to_contain_text("Taxpayer: “Client signature”")
    await places.get_by_role("button", name="Add label").click()  # empty: said where
    await expect(desk.locator("#label-error")).to_have_text(
        "Type the label as printed, e.g. “Client signature”."
    )
    await desk.locator("#places").scroll_into_view_if_needed()
    await shot(desk, "placement-settings-admin-desktop")
    mobile = await (await portal.person(phone=True)).new_page()
    await log_in(mobile, portal, ADMIN, phone)
    await mobile.goto(f"{portal.url}/preparer/settings#places")
    await expect(mobile.locator("#places")).to_contain_text("Form 8879 from Drake")
    await shot(mobile, "placement-settings-admin-phone")
    await desk.goto(f"{portal.url}/preparer/settings#places")
    await desk.get_by_role("button", name="Delete the template Form 8879 from Drake").click()
    await expect(desk.get_by_text("Template deleted")).to_be_visible()
    await expect(desk.locator("#places")).to_contain_text("No templates yet.")
