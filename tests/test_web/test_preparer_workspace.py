"""The preparer workspace in Chromium: two-step login, a return from creation to signed (the client
driven through the JSON API), the dashboard moving by itself, documents, chat, downloads, settings, bulk
import, and firm isolation. Screenshots of every page at desktop and phone size."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import browser
import httpx
import pytest
from browser import Portal, shot
from journey import PASSWORD, SPOUSE, TAXPAYER, agree_to_sign_electronically, code_in, signature_png
from pdfs import make_pdf
from playwright.async_api import Page, expect
from preparer_steps import Authenticator, add_preparer, enrol_directly
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from core.context import Resources
from core.models import Preparer
from esign import pdfsign
from portico.app import create_app

pytestmark = pytest.mark.e2e
chromium, portal = browser.chromium, browser.portal  # the fixtures this module uses

GRACE = "grace@firm.test"


def make_admin(resources: Resources, email: str) -> None:
    with Session(resources.engine) as db:
        preparer = db.exec(select(Preparer).where(Preparer.email == email)).one()
        preparer.is_admin = True
        db.add(preparer)
        db.commit()


async def log_in(page: Page, portal: Portal, email: str, phone: Authenticator, screenshot: str = "") -> None:
    await page.goto(f"{portal.url}/preparer")
    await expect(page.get_by_role("heading", name="Preparer log in")).to_be_visible()
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    if screenshot:
        await shot(page, screenshot)
    await page.get_by_label("Authenticator code").fill(phone.code())
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Status dashboard")).to_be_visible()


async def enrol(page: Page, portal: Portal, email: str, name: str) -> Authenticator:
    """First login: password, QR code (typed key), first code, recovery codes."""
    await page.goto(f"{portal.url}/preparer")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("heading", name="Set up two-step login")).to_be_visible()
    await expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    await shot(page, f"preparer-enrol-{name}")
    await page.get_by_text("Can't scan? Type the key instead").click()
    secret = (await page.locator("[data-totp-secret]").inner_text()).replace(" ", "")
    phone = Authenticator(secret)
    await page.get_by_label("6-digit code").fill(phone.code())
    await page.get_by_role("button", name="Turn on two-step login").click()
    await expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    await expect(page.locator(".recovery-codes li")).to_have_count(10)
    await shot(page, f"preparer-recovery-codes-{name}")
    await page.get_by_role("link", name="I saved them, continue").click()
    await expect(page.get_by_role("heading", name="Status dashboard")).to_be_visible()
    return phone


@pytest.fixture
async def client_api(portal: Portal, dev_server: WorkflowEnvironment) -> AsyncIterator[Any]:
    """The app in-process on https (its session cookies are Secure), for the clients' JSON calls."""
    app = create_app(portal.settings, temporal=dev_server.client)
    async with app.router.lifespan_context(app):
        yield app


class Client:
    """The taxpayer, through the JSON API (same database and Temporal as the live server)."""

    def __init__(self, portal: Portal, app: Any, data: dict[str, str]) -> None:
        self.portal, self.data = portal, data
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("203.0.113.50", 40000)),
            base_url="https://portico.test",
            headers={
                "user-agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/605",
                "sec-fetch-site": "same-origin",  # as the browser marks the portal's own requests
            },
        )

    async def register(self, link: str, username: str) -> None:
        token = link.rsplit("/invite/", 1)[1]
        body = {
            "username": username,
            "password": PASSWORD,
            "email": self.data["email"],
            "phone": self.data["phone"],
            "last_name": self.data["last_name"],
            "ssn_last4": self.data["ssn"][-4:],
        }
        response = await self.http.post(f"/api/invitations/{token}/register", json=body)
        assert response.status_code == 201, response.text

    async def verify(self) -> None:
        before = await self.portal.last_outbox_id()
        response = await self.http.post("/api/taxpayer/code", json={"channel": "email"})
        assert response.status_code == 200, response.text
        code = code_in(await self.portal.message("code", self.data["email"], newer_than=before))
        response = await self.http.post("/api/taxpayer/verify", json={"code": code})
        assert response.status_code == 200, response.text
        await agree_to_sign_electronically(self.http)  # signing needs the consent (ESIGN Act)

    async def call(self, method: str, url: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, url, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()


async def fill_new_engagement(page: Page, person: dict[str, str], prefix: str = "taxpayer") -> None:
    form = page.locator("form.card")
    await form.locator(f"#{prefix}_first_name").fill(person["first_name"])
    await form.locator(f"#{prefix}_last_name").fill(person["last_name"])
    await form.locator(f"#{prefix}_ssn").fill(person["ssn"])
    await form.locator(f"#{prefix}_phone").fill(person["phone"])
    await form.locator(f"#{prefix}_email").fill(person["email"])
    await form.locator(f"#{prefix}_time_zone").select_option(person["time_zone"])


async def test_return_from_creation_to_signed_in_the_workspace(portal: Portal, client_api: Any) -> None:
    add_preparer(portal.resources, GRACE, "Lovelace Tax", "Grace Preparer")
    make_admin(portal.resources, GRACE)  # she changes a message template below
    desk = await (await portal.person()).new_page()

    # Log in: the workspace asks for the password, then sets up the authenticator (first login).
    await desk.goto(f"{portal.url}/preparer")
    await expect(desk.get_by_role("heading", name="Preparer log in")).to_be_visible()
    await shot(desk, "preparer-login-desktop")
    phone = await enrol(desk, portal, GRACE, "desktop")

    # Colleagues' engagements make a fuller dashboard: one joint return, one stalled after 5 mismatches.
    joint = await portal.create_engagement(
        {
            **TAXPAYER,
            "first_name": "Ravi",
            "last_name": "Patel",
            "ssn": "345-67-8901",
            "email": "ravi@example.com",
            "phone": "+1 415 555 0134",
        },
        {
            **SPOUSE,
            "first_name": "Anika",
            "last_name": "Patel",
            "ssn": "456-78-9012",
            "email": "anika@example.com",
            "phone": "+1 415 555 0135",
        },
    )
    stalled = await portal.create_engagement(
        {
            **TAXPAYER,
            "first_name": "Lee",
            "last_name": "Wong",
            "ssn": "567-89-0123",
            "email": "lee@example.com",
            "phone": "+1 206 555 0144",
        }
    )
    stalled_link = await portal.invite(stalled, "taxpayer", "lee@example.com")
    lee = Client(portal, client_api, {**TAXPAYER, "last_name": "Wrong", "email": "lee@example.com"})
    token = stalled_link.rsplit("/invite/", 1)[1]
    for _ in range(5):
        await lee.http.post(
            f"/api/invitations/{token}/register",
            json={
                "username": "lee",
                "password": PASSWORD,
                "email": "lee@example.com",
                "phone": TAXPAYER["phone"],
                "last_name": "Wrong",
                "ssn_last4": "0123",
            },
        )

    # New engagement: wrong values are explained next to their fields, then it is created.
    await desk.get_by_role("link", name="New engagement").first.click()
    await expect(desk.get_by_role("heading", name="New engagement")).to_be_visible()
    await fill_new_engagement(desk, {**TAXPAYER, "ssn": "12-345", "phone": "555"})
    await desk.get_by_role("button", name="Create engagement").click()
    await expect(desk.get_by_text("Please check the form")).to_be_visible()
    await expect(desk.locator("#taxpayer_ssn-error")).to_contain_text("nine digits")
    await expect(desk.locator("#taxpayer_phone-error")).to_contain_text("US phone number")
    await shot(desk, "preparer-new-engagement-desktop")
    await desk.locator("#taxpayer_ssn").fill(TAXPAYER["ssn"])
    await desk.locator("#taxpayer_phone").fill(TAXPAYER["phone"])
    await desk.get_by_role("button", name="Create engagement").click()
    await expect(desk.get_by_text("Engagement created.")).to_be_visible()
    eid = int(re.search(r"/engagements/(\d+)", desk.url).group(1))  # type: ignore[union-attr]

    # Customer Portal → email → "The link has successfully been sent!"
    await desk.locator("#signer-taxpayer").get_by_role("button", name=re.compile("^Customer Portal")).click()
    await desk.get_by_role("button", name="Email: she*****com").click()
    await expect(desk.get_by_text("The link has successfully been sent!")).to_be_visible()
    message = await portal.message("invite", TAXPAYER["email"])
    link = re.search(r"https?://\S+/invite/\S+", message["body"]).group(0)  # type: ignore[union-attr]

    # The dashboard row moves by itself while the client registers, verifies and (later) signs.
    await desk.get_by_role("link", name="Dashboard").first.click()
    row = desk.locator(f"#row-{eid}")
    await expect(row.locator(".stage-badge")).to_have_text("Link sent", timeout=20_000)
    await expect(desk.locator(f"#row-{stalled}")).to_have_class(re.compile("attention"), timeout=20_000)
    shelby = Client(portal, client_api, TAXPAYER)
    await shelby.register(link, "shelby")
    await expect(row.locator(".stage-badge")).to_have_text("Account created", timeout=15_000)
    await shelby.verify()
    await expect(row.locator(".stage-badge")).to_have_text("Verified", timeout=15_000)
    await expect(row.locator("td.waiting")).to_have_text("Preparer")
    await expect(desk.locator(".count-chip.stage-verified .n")).to_have_text("1")
    # Counts filter when clicked; search finds by phone.
    await desk.locator(".count-chip.stage-needs_attention").click()
    await expect(desk.locator(".dash-table tbody tr")).to_have_count(1)
    await expect(desk.locator(f"#row-{stalled}")).to_be_visible()
    await desk.get_by_role("link", name="All", exact=False).first.click()
    await desk.get_by_label("Search").fill("(702) 555-0197")
    await desk.get_by_role("button", name="Apply").click()
    await expect(desk.locator(f"#row-{eid}")).to_be_visible()
    await expect(desk.locator(f"#row-{joint}")).to_have_count(0)
    await desk.get_by_role("link", name="Clear").click()
    await expect(desk.locator(".dash-table tbody tr")).to_have_count(3)
    await shot(desk, "preparer-dashboard-desktop")

    # Send the return: two PDFs, each with who signs.
    await row.get_by_role("link", name="Shelby O'Neil").click()
    await desk.locator("#file-0").set_input_files(
        {"name": "Form 8879.pdf", "mimeType": "application/pdf", "buffer": make_pdf(1, "Form 8879")}
    )
    await desk.locator("#who-0").select_option("taxpayer")
    await desk.locator("#file-1").set_input_files(
        {"name": "Return 2025.pdf", "mimeType": "application/pdf", "buffer": make_pdf(3, "Form 1040")}
    )
    await desk.locator("#who-1").select_option("none")
    await expect(desk.locator("[data-file-chosen]").first).to_have_text("Form 8879.pdf")
    await desk.get_by_role("button", name="Send Tax Return Documents to Customer Portal").click()
    await expect(
        desk.get_by_text("Transfer Completed - Documents are now on Customer Portal")
    ).to_be_visible()
    await expect(desk.locator("#doc-lists")).to_contain_text("Form 8879.pdf")
    documents = await shelby.call("GET", "/api/taxpayer/documents")
    form = next(d for d in documents if d["name"] == "Form 8879.pdf")

    # Chat both ways: the client's reply shows up without a reload.
    await desk.get_by_label("Message", exact=True).fill("Your return is ready: please sign Form 8879.")
    await desk.get_by_role("button", name="Send", exact=True).click()
    await expect(desk.locator("#chat-log .msg.mine")).to_have_count(1)
    assert [m["body"] for m in await shelby.call("GET", "/api/taxpayer/messages")] == [
        "Your return is ready: please sign Form 8879."
    ]
    await shelby.call("POST", "/api/taxpayer/messages", json={"body": "Signing now, thanks!"})
    await expect(desk.locator("#chat-log .msg.theirs")).to_contain_text("Signing now, thanks!")

    # The client uploads a W-2 and signs; the page's status, documents and timeline follow.
    await shelby.call(
        "POST",
        "/api/taxpayer/uploads",
        files=[("files", ("W-2 Acme.pdf", make_pdf(1, "W-2"), "application/pdf"))],
    )
    await shelby.call(
        "PUT", "/api/taxpayer/signature", files={"image": ("s.png", signature_png(), "image/png")}
    )
    await shelby.call("POST", f"/api/taxpayer/documents/{form['id']}/sign")
    await expect(desk.locator("#status-panel .stage-badge")).to_have_text("Completed", timeout=30_000)
    await expect(desk.locator(f"#sent-{form['id']}")).to_contain_text("Shelby O'Neil: signed")
    await expect(desk.locator("#doc-lists")).to_contain_text("W-2 Acme.pdf")
    await expect(desk.locator("#timeline")).to_contain_text("Signed Form 8879.pdf")
    await expect(desk.locator("#timeline")).to_contain_text("Grace Preparer")
    await shot(desk, "preparer-engagement-desktop")

    # Downloads: the signed PDF (with a valid signature) and the client's upload.
    async with desk.expect_download() as signed_download:
        await desk.locator(f"#sent-{form['id']}").get_by_role("link", name=re.compile("^Signed PDF")).click()
    signed_path = await (await signed_download.value).path()
    ca = portal.settings.data_dir / "signing" / "dev-ca-cert.pem"
    reports = await asyncio.to_thread(pdfsign.read_signatures, signed_path.read_bytes(), [ca])
    assert ("Taxpayer", True, True) in [(r.field_name, r.intact, r.trusted) for r in reports]
    async with desk.expect_download() as upload_download:
        await desk.locator("#doc-lists").get_by_role("link", name=re.compile("^Download W-2")).click()
    assert (await (await upload_download.value).path()).read_bytes().startswith(b"%PDF-")

    await desk.get_by_role("link", name="Dashboard").first.click()
    await expect(desk.locator(f"#row-{eid} .stage-badge")).to_have_text("Completed")
    await expect(desk.locator(f"#row-{eid} .step.done")).to_have_count(6)

    # Settings and the template preview, at desktop size.
    await desk.get_by_role("link", name="Firm settings").first.click()
    await expect(desk.get_by_role("heading", name="Firm settings")).to_be_visible()
    await shot(desk, "preparer-settings-desktop")
    await desk.get_by_role("link", name="Invitation (Text message)").click()
    await desk.get_by_label("Message", exact=True).fill(
        "{firm_name}: hi {first_name}, your portal is ready: {link}"
    )
    await expect(desk.locator("#preview")).to_contain_text("Lovelace Tax: hi Shelby, your portal is ready")
    await desk.get_by_role("button", name="Save template").click()
    await expect(desk.get_by_text("Template saved.")).to_be_visible()
    await shot(desk, "preparer-template-desktop")

    # The same pages at phone size, in a new browser (a new login with the next code).
    mobile = await (await portal.person(phone=True)).new_page()
    await mobile.goto(f"{portal.url}/preparer")
    await shot(mobile, "preparer-login-phone")
    await log_in(mobile, portal, GRACE, phone, "preparer-code-phone")
    await shot(mobile, "preparer-dashboard-phone")
    await mobile.goto(f"{portal.url}/preparer/engagements/{eid}")
    await expect(mobile.locator("#status-panel .stage-badge")).to_have_text("Completed")
    await shot(mobile, "preparer-engagement-phone")
    await mobile.goto(f"{portal.url}/preparer/engagements/{joint}")
    await (
        mobile.locator("#signer-taxpayer").get_by_role("button", name=re.compile("^Customer Portal")).click()
    )
    await shot(mobile, "preparer-engagement-choice-phone")
    await mobile.goto(f"{portal.url}/preparer/engagements/new")
    await mobile.get_by_text("Joint return: add the spouse").click()
    await shot(mobile, "preparer-new-engagement-phone")
    await mobile.goto(f"{portal.url}/preparer/settings")
    await shot(mobile, "preparer-settings-phone")


GOOD_CSV = (
    "tax_year,taxpayer_first_name,taxpayer_last_name,taxpayer_ssn,taxpayer_email,taxpayer_phone,"
    "taxpayer_time_zone,spouse_first_name,spouse_last_name,spouse_ssn,spouse_email\n"
    "2025,Maria,Garcia,111-22-3333,maria@example.com,(305) 555-0101,Eastern,,,,\n"
    "2025,Tom,Baker,222-33-4444,,+1 312 555 0102,Central,Tina,Baker,333-44-5555,tina@example.com\n"
    "2025,Yuki,Tanaka,444-55-6666,yuki@example.com,,,,,,\n"
)
BAD_CSV = (
    "tax_year,taxpayer_first_name,taxpayer_last_name,taxpayer_ssn,taxpayer_email,taxpayer_phone,"
    "taxpayer_time_zone,spouse_first_name,spouse_last_name,spouse_ssn,spouse_email\n"
    "2025,Maria,Garcia,111-22-3333,maria@example.com,(305) 555-0101,Eastern,,,,\n"
    "1899,Tom,Baker,222-33-44,,555,Central,Tina,Baker,333-44-5555,tina@example.com\n"
    "2025,Yuki,,444-55-6666,,,Moon/Base,,,,\n"
    "2025,Maria,Garcia,111-22-3333,maria@example.com,,,,,,\n"
)


async def test_bulk_import_and_firm_isolation(portal: Portal) -> None:
    phone = Authenticator(enrol_directly(portal.resources, GRACE, "Lovelace Tax", "Grace Preparer"))
    page = await (await portal.person()).new_page()
    await log_in(page, portal, GRACE, phone, "preparer-code-desktop")
    await page.get_by_role("link", name="Import").first.click()
    await expect(page.get_by_role("heading", name="Import engagements")).to_be_visible()

    # Bad rows: every problem listed by line, nothing created.
    await page.locator("#file").set_input_files(
        {"name": "export.csv", "mimeType": "text/csv", "buffer": BAD_CSV.encode()}
    )
    await page.get_by_role("button", name="Import", exact=True).click()
    await expect(page.get_by_text("nothing was imported")).to_be_visible()
    errors = page.locator(".import-errors tbody tr")
    await expect(page.locator(".import-errors tr[data-line='3']")).to_have_count(3)  # year, SSN, phone
    await expect(page.locator(".import-errors tr[data-line='4']")).to_have_count(2)  # last name, time zone
    await expect(page.locator(".import-errors tr[data-line='5']")).to_contain_text("same return")
    assert await errors.count() == 6
    await shot(page, "preparer-import-desktop")
    assert (await portal.preparer.get("/api/engagements")).json()["total"] == 0

    # Good file: checked, imported; importing it again creates nothing.
    await page.locator("#file").set_input_files(
        {"name": "export.csv", "mimeType": "text/csv", "buffer": GOOD_CSV.encode()}
    )
    await page.get_by_role("button", name="Check file").click()
    await expect(page.get_by_text("3 new engagements")).to_be_visible()
    await page.locator("#file").set_input_files(
        {"name": "export.csv", "mimeType": "text/csv", "buffer": GOOD_CSV.encode()}
    )
    await page.get_by_role("button", name="Import", exact=True).click()
    await expect(page.get_by_text("3 engagements created, 0 already imported")).to_be_visible()
    await page.locator("#file").set_input_files(
        {"name": "export.csv", "mimeType": "text/csv", "buffer": GOOD_CSV.encode()}
    )
    await page.get_by_role("button", name="Import", exact=True).click()
    await expect(page.get_by_text("0 engagements created, 3 already imported")).to_be_visible()
    mobile = await (await portal.person(phone=True)).new_page()
    await log_in(mobile, portal, GRACE, phone)
    await mobile.goto(f"{portal.url}/preparer/import")
    await shot(mobile, "preparer-import-phone")
    listing = (await portal.preparer.get("/api/engagements?sort=taxpayer&order=asc")).json()
    assert [i["taxpayer_name"] for i in listing["items"]] == ["Maria Garcia", "Tom Baker", "Yuki Tanaka"]
    assert listing["items"][1]["spouse_name"] == "Tina Baker"
    mine = listing["items"][0]["id"]

    # Another firm: its own first login (at phone size), an empty dashboard, and no way into ours.
    add_preparer(portal.resources, "hopper@other.test", "Hopper & Co", "Grace Hopper")
    other = await (await portal.person(phone=True)).new_page()
    await enrol(other, portal, "hopper@other.test", "phone")
    await expect(other.get_by_role("heading", name="Start with your first return")).to_be_visible()
    await expect(other.get_by_role("link", name="Import a CSV file")).to_have_attribute(
        "href", "/preparer/import"
    )
    await expect(other.locator(".count-chip.active .n")).to_have_text("0")
    await other.goto(f"{portal.url}/preparer?q=garcia")
    await expect(other.locator(".dash-table")).to_have_count(0)
    response = await other.goto(f"{portal.url}/preparer/engagements/{mine}")
    assert response is not None and response.status == 404
    await expect(other.get_by_role("heading", name="Not found")).to_be_visible()
    for url in (
        f"/preparer/engagements/{mine}/live",
        f"/preparer/engagements/{mine}/messages/feed",
        f"/preparer/engagements/{mine}/documents/1/download",
        f"/api/engagements/{mine}",
    ):
        assert (await other.request.get(portal.url + url)).status == 404, url
