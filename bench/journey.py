"""An engagement's journey through the HTTP API, as tests/test_api/test_journey_api.py walks it, for load.

The people read their invitation links and codes from the dev outbox table (their "inbox"), by engagement,
instead of the outbox page, so polling for mail does not load the API being measured.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pyotp
from PIL import Image, ImageDraw
from reportlab.lib.pagesizes import LETTER
from reportlab.pdfgen import canvas
from sqlmodel import Session, col, select

from core.context import Resources
from core.models import OutboxMessage
from portico.cli import _add_preparer

PASSWORD = "correct horse battery staple"
PREPARER_EMAIL = "bench@firm.test"
HTTP_TIMEOUT = httpx.Timeout(60.0)
# Drop idle connections before uvicorn does (after 5 s), so a request never races the server's close.
HTTP_LIMITS = httpx.Limits(keepalive_expiry=2.0)


class JourneyError(RuntimeError):
    """A step answered something the journey did not expect."""


def make_pdf(pages: int = 1, title: str = "Form 8879") -> bytes:
    """A small text-only PDF (the same bytes every run). Its last page prints the taxpayer's and the
    spouse's signature lines: sending refuses a document with no place for a signer."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=LETTER, invariant=1)
    pdf.setTitle(title)
    for number in range(1, pages + 1):
        pdf.drawString(72, 720, f"{title} - page {number} of {pages}")
        if number == pages:
            for label, y in (("Taxpayer's signature", 200), ("Spouse's signature", 140)):
                pdf.drawString(72, y, label)
                pdf.line(190, y - 2, 400, y - 2)
                pdf.drawString(420, y, "Date")
                pdf.line(450, y - 2, 540, y - 2)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def signature_png() -> bytes:
    img = Image.new("RGBA", (300, 100), (255, 255, 255, 0))
    ImageDraw.Draw(img).line([(10, 80), (80, 20), (150, 70), (290, 30)], fill=(0, 0, 0, 255), width=4)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def expect(response: httpx.Response, *codes: int) -> Any:
    if response.status_code not in codes:
        raise JourneyError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:300]}"
        )
    return response.json() if response.content else None


def make_preparer(resources: Resources) -> str:
    with Session(resources.engine) as db:
        _add_preparer(db, "Bench Tax Practice", PREPARER_EMAIL, "Bench Preparer", PASSWORD)
    return PREPARER_EMAIL


# The bench preparer's authenticator: its secret and the newest time step whose code was used. The first
# login on a database sets up two-step login (replacing this), later ones give a code not used before.
_TOTP: dict[str, tuple[str, int]] = {}


def _next_code(secret: str, last_step: int) -> tuple[str, int]:
    now = time.time()
    step = max(int(now // 30), last_step + 1)
    if step > int(now // 30) + 1:  # the current and the next step are used: wait for a fresh one
        time.sleep(30 - now % 30 + 0.5)
        return _next_code(secret, last_step)
    return pyotp.TOTP(secret).generate_otp(step), step


async def login_preparer(http: httpx.AsyncClient) -> None:
    """Logs in with both factors through the JSON API; the first login sets up the authenticator."""
    body = {"email": PREPARER_EMAIL, "password": PASSWORD}
    answer = expect(await http.post("/api/preparer/login", json=body), 200)
    key = PREPARER_EMAIL
    if answer["next"] == "enrol":
        secret = expect(await http.post("/api/preparer/mfa/enrol"), 200)["secret"]
        code, step = _next_code(secret, 0)
        expect(await http.post("/api/preparer/mfa/confirm", json={"code": code}), 200)
    else:
        secret, last = _TOTP[key]
        code, step = _next_code(secret, last)
        expect(await http.post("/api/preparer/login/code", json={"code": code}), 200)
    _TOTP[key] = (secret, step)


class Inbox:
    """Reads what Portico sent a person, from the outbox table (what their mail app would show)."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    def _latest(self, engagement_id: int, purpose: str, destination: str) -> str | None:
        with Session(self.resources.engine) as db:
            row = db.exec(
                select(OutboxMessage)
                .where(
                    OutboxMessage.engagement_id == engagement_id,
                    OutboxMessage.purpose == purpose,
                    OutboxMessage.destination == destination,
                )
                .order_by(col(OutboxMessage.id).desc())
            ).first()
            return self.resources.cipher.decrypt_text(row.body_encrypted, "outbox") if row else None

    async def wait(self, engagement_id: int, purpose: str, destination: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = await asyncio.to_thread(self._latest, engagement_id, purpose, destination)
            if body is not None:
                return body
            await asyncio.sleep(0.05)
        raise JourneyError(f"no {purpose} message for engagement {engagement_id} in {timeout:.0f}s")


def invite_token(body: str) -> str:
    match = re.search(r"/invite/([A-Za-z0-9_\-.]+)", body)
    if not match:
        raise JourneyError(f"no invitation link in {body!r}")
    return match.group(1)


def code_in(body: str) -> str:
    match = re.search(r"\b(\d{6})\b", body)
    if not match:
        raise JourneyError(f"no code in {body!r}")
    return match.group(1)


@dataclass
class Person:
    """A signer with their own browser (cookie jar)."""

    role: str
    first_name: str
    last_name: str
    ssn: str
    email: str
    phone: str = "+1 702 555 0197"
    http: httpx.AsyncClient | None = field(default=None, repr=False)

    @property
    def contact(self) -> dict[str, str]:
        return {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "ssn": self.ssn,
            "email": self.email,
            "phone": self.phone,
            "time_zone": "America/Los_Angeles",
        }

    @property
    def browser(self) -> httpx.AsyncClient:
        if self.http is None:
            raise JourneyError("no browser")
        return self.http


def household(tag: str, joint: bool = True) -> list[Person]:
    """A taxpayer (and spouse) with contacts unique to `tag`, so inboxes and user names never collide."""
    people = [Person("taxpayer", "Shelby", "Oneil", "123-45-6789", f"tp-{tag}@example.com")]
    if joint:
        people.append(
            Person("spouse", "Jordan", "Oneil", "234-56-7890", f"sp-{tag}@example.com", "+1 702 555 0142")
        )
    return people


async def create_engagement(preparer: httpx.AsyncClient, people: list[Person]) -> int:
    body: dict[str, Any] = {"tax_year": 2025, "taxpayer": people[0].contact}
    if len(people) > 1:
        body["spouse"] = people[1].contact
    created = expect(await preparer.post("/api/engagements", json=body), 201)
    return int(created["id"])


async def invite(preparer: httpx.AsyncClient, engagement_id: int, person: Person) -> None:
    url = f"/api/engagements/{engagement_id}/invite"
    expect(await preparer.post(url, json={"role": person.role, "channel": "email"}), 200)


async def onboard(person: Person, engagement_id: int, inbox: Inbox, tag: str, png: bytes) -> None:
    """Open the invitation, register, ask for a code, verify, and draw the signature once."""
    http = person.browser
    token = invite_token(await inbox.wait(engagement_id, "invite", person.email))
    registration = {
        "username": f"{person.role[:2]}{tag}",
        "password": PASSWORD,
        "email": person.email,
        "phone": person.phone,
        "last_name": person.last_name,
        "ssn_last4": person.ssn[-4:],
    }
    expect(await http.post(f"/api/invitations/{token}/register", json=registration), 201)
    expect(await http.post("/api/taxpayer/code", json={"channel": "email"}), 200)
    code = code_in(await inbox.wait(engagement_id, "code", person.email))
    expect(await http.post("/api/taxpayer/verify", json={"code": code}), 200)
    # The consent to sign electronically (ESIGN Act), to the disclosure's current version, before signing.
    version = expect(await http.get("/api/taxpayer/consent"), 200)["version"]
    expect(await http.post("/api/taxpayer/consent", json={"version": version}), 200)
    files = {"image": ("signature.png", png, "image/png")}
    expect(await http.put("/api/taxpayer/signature", files=files), 200)


async def send_documents(
    preparer: httpx.AsyncClient, engagement_id: int, pdfs: list[tuple[str, bytes]], who: str
) -> list[int]:
    files = [("files", (name, data, "application/pdf")) for name, data in pdfs]
    sent = expect(
        await preparer.post(
            f"/api/engagements/{engagement_id}/documents", files=files, data={"signers": [who] * len(pdfs)}
        ),
        200,
    )
    names = {name for name, _ in pdfs}
    return [int(d["id"]) for d in sent["documents"] if d["name"] in names]


async def sign(person: Person, document_id: int) -> None:
    signed = expect(await person.browser.post(f"/api/taxpayer/documents/{document_id}/sign"), 200)
    if signed.get("message") != "Signed!":
        raise JourneyError(f"sign answered {signed}")


_addresses = itertools.count()


def next_address() -> str:
    """A loopback address of its own for each person: households reach Portico from their own IPs, and
    the per-IP throttle (30 guessable steps an hour) would otherwise stop the load after a few people."""
    n = next(_addresses)
    return f"127.1.{n // 250 % 250}.{n % 250 + 1}"


def browser(base_url: str, address: str | None = None) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address, limits=HTTP_LIMITS)
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=HTTP_TIMEOUT,
        headers={"user-agent": "portico-bench", "sec-fetch-site": "same-origin"},  # as a browser's own
        transport=transport,
    )
