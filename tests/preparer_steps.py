"""Steps of the preparer workspace shared by its tests: two-step login (pages and JSON API, set-up
included), forms with CSRF, firms."""

from __future__ import annotations

import re
import time
from html import unescape
from typing import Any

import httpx
import pyotp
from sqlmodel import Session, select

from core.context import Resources
from core.models import Preparer, PreparerMfa, utcnow
from portico.cli import _add_preparer

PASSWORD = "correct horse battery staple"


def add_preparer(resources: Resources, email: str, firm: str, name: str = "Ada Preparer") -> int:
    with Session(resources.engine) as db:
        return _add_preparer(db, firm, email, name, PASSWORD).id or 0


def enrol_directly(resources: Resources, email: str, firm: str, name: str = "Ada Preparer") -> str:
    """A preparer with two-step login already on (as after enrolment); returns the TOTP secret."""
    secret = pyotp.random_base32()
    with Session(resources.engine) as db:
        preparer = db.exec(select(Preparer).where(Preparer.email == email)).first()
        if preparer is None:
            preparer = _add_preparer(db, firm, email, name, PASSWORD)
        db.add(
            PreparerMfa(
                preparer_id=preparer.id or 0,
                secret_encrypted=resources.cipher.encrypt_text(secret, "totp"),
                enrolled_at=utcnow(),
            )
        )
        db.commit()
    return secret


class Authenticator:
    """The preparer's phone: hands out each time step's code once, like a person waiting for the next."""

    def __init__(self, secret: str) -> None:
        self.totp = pyotp.TOTP(secret)
        self.last_step = 0

    def code(self) -> str:
        now = time.time()
        step = max(int(now // 30), self.last_step + 1)
        if step > int(now // 30) + 1:  # both the current and the next step were used: wait for a new one
            time.sleep(30 - now % 30 + 0.5)
            return self.code()
        self.last_step = step
        return self.totp.generate_otp(step)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, html[:500]
    return unescape(match.group(1))


async def post_form(
    http: httpx.AsyncClient, page_url: str, action: str, data: dict[str, Any], **kwargs: Any
) -> httpx.Response:
    """Opens the page (for its CSRF token) and submits a form on it, as a browser would."""
    page = await http.get(page_url)
    assert page.status_code == 200, (page_url, page.status_code, page.text[:300])
    return await http.post(action, data={**data, "csrf_token": csrf_of(page.text)}, **kwargs)


async def page_login(http: httpx.AsyncClient, email: str, phone: Authenticator) -> httpx.Response:
    """Email + password, then the authenticator code, through the pages; answers the last redirect."""
    first = await post_form(
        http, "/preparer/login", "/preparer/login", {"email": email, "password": PASSWORD}
    )
    assert first.status_code == 303 and first.headers["location"].startswith("/preparer/login/code"), (
        first.text
    )
    second = await post_form(http, first.headers["location"], "/preparer/login/code", {"code": phone.code()})
    assert second.status_code == 303, second.text
    return second


async def api_login(http: httpx.AsyncClient, email: str, phone: Authenticator) -> None:
    response = await http.post(
        "/api/preparer/login", json={"email": email, "password": PASSWORD, "code": phone.code()}
    )
    assert response.status_code == 200 and response.json()["next"] == "done", response.text


async def api_enrol(http: httpx.AsyncClient) -> Authenticator:
    """Finishes two-step set-up over the JSON API, after a login that answered `next: "enrol"`."""
    enrol = await http.post("/api/preparer/mfa/enrol")
    assert enrol.status_code == 200, enrol.text
    phone = Authenticator(enrol.json()["secret"])
    done = await http.post("/api/preparer/mfa/confirm", json={"code": phone.code()})
    assert done.status_code == 200, done.text
    return phone


def api_login_sync(
    http: httpx.Client, email: str, password: str = PASSWORD, phone: Authenticator | None = None
) -> Authenticator:
    """The JSON API login for synchronous clients: sets up the authenticator at the first login (answers
    it), and gives `phone`'s code at later ones."""
    response = http.post("/api/preparer/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    step = response.json()["next"]
    if step == "code":
        assert phone is not None, f"{email} has two-step login already: pass their authenticator"
        done = http.post("/api/preparer/login/code", json={"code": phone.code()})
        assert done.status_code == 200, done.text
        return phone
    assert step == "enrol", response.text
    enrol = http.post("/api/preparer/mfa/enrol")
    assert enrol.status_code == 200, enrol.text
    phone = Authenticator(enrol.json()["secret"])
    done = http.post("/api/preparer/mfa/confirm", json={"code": phone.code()})
    assert done.status_code == 200, done.text
    return phone
