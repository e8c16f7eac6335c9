"""Steps of the engagement journey through the HTTP API, shared by the end-to-end tests."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

import httpx
import pdfs
from preparer_steps import Authenticator, api_enrol
from sqlmodel import Session

from core.context import Resources
from portico.cli import _add_preparer

TAXPAYER = {
    "first_name": "Shelby",
    "last_name": "O'Neil",
    "ssn": "123-45-6789",
    "email": "shelby.oneil@example.com",
    "phone": "+1 702 555 0197",
    "time_zone": "America/Los_Angeles",
}
SPOUSE = {
    "first_name": "Jordan",
    "last_name": "O'Neil",
    "ssn": "234-56-7890",
    "email": "jordan.oneil@example.com",
    "phone": "+1 702 555 0142",
    "time_zone": "America/Los_Angeles",
}
PASSWORD = "correct horse battery staple"


def make_preparer(resources: Resources, email: str = "ada@firm.test", firm: str = "Lovelace Tax") -> str:
    with Session(resources.engine) as db:
        _add_preparer(db, firm, email, "Ada Preparer", PASSWORD)
    return email


# Each preparer's authenticator, by email: the first login sets one up, later logins read its codes.
# A fresh database makes the preparer set up again, replacing the entry.
_PHONES: dict[str, Authenticator] = {}


async def login_preparer(http: httpx.AsyncClient, email: str) -> None:
    """Logs in through the JSON API with both factors, setting up two-step login the first time."""
    response = await http.post("/api/preparer/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    if response.json()["next"] == "enrol":
        _PHONES[email] = await api_enrol(http)
        return
    assert response.json()["next"] == "code", response.text
    done = await http.post("/api/preparer/login/code", json={"code": _PHONES[email].code()})
    assert done.status_code == 200, done.text


async def outbox(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await http.get("/api/dev/outbox")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


async def latest(
    http: httpx.AsyncClient, purpose: str, destination: str, timeout: float = 20
) -> dict[str, Any]:
    """The newest message of a purpose to a destination, waiting for it: the workflow sends
    messages from an activity, so the stage can move a moment before the message is in the outbox."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        for message in await outbox(http):
            if message["purpose"] == purpose and message["destination"] == destination:
                return message
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no {purpose} message to {destination}")
        await asyncio.sleep(0.1)


def invite_token(message: dict[str, Any]) -> str:
    match = re.search(r"/invite/([A-Za-z0-9_\-.]+)", message["body"])
    assert match, message["body"]
    return match.group(1)


def code_in(message: dict[str, Any]) -> str:
    match = re.search(r"\b(\d{6})\b", message["body"])
    assert match, message["body"]
    return match.group(1)


@dataclass
class Person:
    http: httpx.AsyncClient
    data: dict[str, str]
    role: str = "taxpayer"

    @property
    def username(self) -> str:
        return self.data["first_name"].lower()

    def registration(self, **changes: str) -> dict[str, str]:
        body = {
            "username": self.username,
            "password": PASSWORD,
            "email": self.data["email"],
            "phone": self.data["phone"],
            "last_name": self.data["last_name"],
            "ssn_last4": self.data["ssn"][-4:],
        }
        body.update(changes)
        return body


async def register_and_verify(person: Person, token: str, outbox_reader: httpx.AsyncClient) -> None:
    response = await person.http.post(f"/api/invitations/{token}/register", json=person.registration())
    assert response.status_code == 201, response.text
    response = await person.http.post("/api/taxpayer/code", json={"channel": "email"})
    assert response.status_code == 200, response.text
    code = code_in(await latest(outbox_reader, "code", person.data["email"]))
    response = await person.http.post("/api/taxpayer/verify", json={"code": code})
    assert response.status_code == 200, response.text
    await agree_to_sign_electronically(person.http)


async def agree_to_sign_electronically(http: httpx.AsyncClient) -> None:
    """The consent to sign electronically (ESIGN Act) that signing needs, to the text's current version."""
    version = (await http.get("/api/taxpayer/consent")).json()["version"]
    response = await http.post("/api/taxpayer/consent", json={"version": version})
    assert response.status_code == 200, response.text


def signature_png() -> bytes:
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (300, 100), (255, 255, 255, 0))
    ImageDraw.Draw(img).line([(10, 80), (80, 20), (150, 70), (290, 30)], fill=(0, 0, 0, 255), width=4)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


async def joint_return(api, worker: Resources, **options: Any) -> tuple[Any, Person, Person, int]:  # type: ignore[no-untyped-def]
    """Both spouses registered and verified (which agrees to the consent: journey.register_and_verify), and
    Form 8879 sent for both to sign. `options`: more of the engagement's fields (a signing order)."""
    preparer = api.client()
    await login_preparer(preparer, make_preparer(worker))
    eid = (
        await preparer.post(
            "/api/engagements", json={"tax_year": 2025, "taxpayer": TAXPAYER, "spouse": SPOUSE, **options}
        )
    ).json()["id"]
    taxpayer, spouse = Person(api.client("203.0.113.9"), TAXPAYER), Person(api.client(), SPOUSE, "spouse")
    for person in (taxpayer, spouse):
        sent = await preparer.post(
            f"/api/engagements/{eid}/invite", json={"role": person.role, "channel": "email"}
        )
        assert sent.status_code == 200, sent.text
        token = invite_token(await latest(preparer, "invite", person.data["email"]))
        await register_and_verify(person, token, preparer)
    files = [("files", ("Form 8879.pdf", pdfs.make_form_8879(with_fields=True), "application/pdf"))]
    docs = await preparer.post(f"/api/engagements/{eid}/documents", files=files, data={"signers": ["both"]})
    assert docs.status_code == 200, docs.text
    return preparer, taxpayer, spouse, docs.json()["documents"][0]["id"]
