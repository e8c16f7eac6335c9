"""Portal security without a browser: headers, CSRF, cross-site refusal, and login codes for a new device
through the JSON API (single use, wrong tries not reset by a new code, remembered devices)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from journey import PASSWORD, TAXPAYER, Person, code_in, invite_token, latest, login_preparer, make_preparer
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from core.context import Resources
from core.models import LoginCode, TrustedDevice
from web import STATIC_DIR
from web.security import CONTENT_SECURITY_POLICY
from worker.main import build_worker

pytestmark = pytest.mark.e2e
SMS = "+17025550197"


@pytest.fixture
async def worker(settings: Settings, dev_server: WorkflowEnvironment) -> AsyncIterator[Resources]:
    settings.code_resend_cooldown = timedelta(0)
    resources = Resources.from_settings(settings)
    async with build_worker(dev_server.client, resources):
        yield resources
    resources.engine.dispose()


async def test_pages_send_security_headers_and_refuse_forms_without_a_token(api) -> None:  # type: ignore[no-untyped-def]
    async with api.client() as browser:
        page = await browser.get("/portal/login")
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert (
            "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
            and "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
        )
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        assert page.headers["cache-control"] == "no-store"
        assert (
            "<script>" not in page.text and " style=" not in page.text and " on" + "click=" not in page.text
        )

        # No token, a wrong token: refused before anything is looked at.
        form = {"username": "shelby", "password": PASSWORD}
        assert (await browser.post("/portal/login", data=form)).status_code == 403
        wrong = await browser.post("/portal/login", data={**form, "csrf_token": "x" * 43})
        assert wrong.status_code == 403
        for odd in ("é" * 43, "١٢٣"):  # not ASCII: refused like any wrong token, not a server error
            assert (await browser.post("/portal/login", data={**form, "csrf_token": odd})).status_code == 403
        token = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        ok = await browser.post("/portal/login", data={**form, "csrf_token": token})
        assert ok.status_code == 401 and "Wrong user name or password." in ok.text
        by_header = await browser.post("/portal/logout", headers={"X-CSRF-Token": token})
        assert by_header.status_code == 303

        # A browser marks a cross-site POST: the JSON API refuses it too.
        cross = await browser.post("/api/taxpayer/login", json=form, headers={"Sec-Fetch-Site": "cross-site"})
        assert cross.status_code == 403

        # Not logged in: the portal sends you to log in, and comes back afterwards.
        home = await browser.get("/portal/files")
        assert home.status_code == 303 and home.headers["location"] == "/portal/login?next=/portal/files"
        assert (await browser.get("/portal/login?next=https://evil.example")).text.count(
            'name="next" value="/portal"'
        ) == 1
        # GET never changes anything: logging out needs a POST.
        assert (await browser.get("/portal/logout")).status_code == 405


def test_vendored_files_carry_their_licences() -> None:
    vendor = STATIC_DIR / "vendor"
    for script, licence in (
        ("htmx.min.js", "htmx.LICENSE"),
        ("signature_pad.umd.min.js", "signature_pad.LICENSE"),
    ):
        assert (vendor / script).stat().st_size > 1000
        assert (vendor / licence).read_text().strip()
    for page in (STATIC_DIR.parent / "templates").glob("*.html"):
        text = page.read_text()
        assert "<script>" not in text and " style=" not in text and "hx-on" not in text, page.name
        assert "http://" not in text and "https://" not in text, page.name  # nothing from a CDN


async def _registered(api, worker) -> tuple[Person, object, int]:  # type: ignore[no-untyped-def]
    preparer = api.client()
    await login_preparer(preparer, make_preparer(worker))
    eid = (await preparer.post("/api/engagements", json={"tax_year": 2025, "taxpayer": TAXPAYER})).json()[
        "id"
    ]
    await preparer.post(f"/api/engagements/{eid}/invite", json={"role": "taxpayer", "channel": "email"})
    for _ in range(100):
        try:
            token = invite_token(await latest(preparer, "invite", TAXPAYER["email"]))
            break
        except AssertionError:
            await asyncio.sleep(0.1)
    person = Person(api.client(), TAXPAYER)
    assert (
        await person.http.post(f"/api/invitations/{token}/register", json=person.registration())
    ).status_code == 201
    assert (await person.http.post("/api/taxpayer/code", json={"channel": "email"})).status_code == 200
    code = code_in(await latest(preparer, "code", TAXPAYER["email"]))
    assert (await person.http.post("/api/taxpayer/verify", json={"code": code})).status_code == 200
    return person, preparer, eid


async def test_login_from_a_new_device_through_the_api(api, worker) -> None:  # type: ignore[no-untyped-def]
    person, preparer, _ = await _registered(api, worker)
    credentials = {"username": "shelby", "password": PASSWORD}
    async with api.client() as laptop:
        challenge = await laptop.post("/api/taxpayer/login", json=credentials)
        assert challenge.status_code == 202, challenge.text
        assert challenge.json()["next"] == "login_code"
        assert [c["masked"] for c in challenge.json()["channels"]] == ["she*****com", "70*****97"]
        assert (await laptop.get("/api/taxpayer/me")).status_code == 401  # not logged in yet

        sent = await laptop.post("/api/taxpayer/login/code", json={"channel": "sms"})
        assert sent.status_code == 200 and sent.json()["message"] == "Code sent to 70*****97."
        code = code_in(await latest(preparer, "login_code", SMS))
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        for left in (4, 3):
            bad = await laptop.post("/api/taxpayer/login/verify", json={"code": wrong})
            assert (
                bad.status_code == 422
                and bad.json()["detail"] == f"That code is not right. {left} tries left."
            )
        # A new code does not reset the count.
        assert (await laptop.post("/api/taxpayer/login/code", json={"channel": "email"})).status_code == 200
        code = code_in(await latest(preparer, "login_code", TAXPAYER["email"]))
        bad = await laptop.post(
            "/api/taxpayer/login/verify", json={"code": wrong if wrong != code else "000000"}
        )
        assert bad.json()["detail"] == "That code is not right. 2 tries left."
        ok = await laptop.post("/api/taxpayer/login/verify", json={"code": code, "remember_device": True})
        assert ok.status_code == 200, ok.text
        assert ok.json()["username"] == "shelby"
        again = await laptop.post("/api/taxpayer/login/verify", json={"code": code})
        assert again.status_code == 401  # the pending login is over; the code was single use anyway

        # Remembered: the next login from this client needs no code.
        await laptop.post("/api/taxpayer/logout")
        assert (await laptop.post("/api/taxpayer/login", json=credentials)).status_code == 200

        with Session(worker.engine) as db:
            codes = db.exec(select(LoginCode)).all()
            assert sum(c.wrong_tries for c in codes) == 3 and all(len(c.code_digest) == 64 for c in codes)
            devices = db.exec(select(TrustedDevice)).all()
            assert len(devices) == 1 and devices[0].token_hash not in laptop.cookies.values()

        # Log out everywhere: this session and the remembered device are gone.
        assert (await person.http.post("/api/taxpayer/logout-everywhere")).status_code == 200
        assert (await laptop.get("/api/taxpayer/me")).status_code == 401
        assert (await laptop.post("/api/taxpayer/login", json=credentials)).status_code == 202
    await person.http.aclose()
    await preparer.aclose()


async def test_five_wrong_login_codes_lock_even_the_right_one(api, worker) -> None:  # type: ignore[no-untyped-def]
    person, preparer, _ = await _registered(api, worker)
    async with api.client() as laptop:
        assert (
            await laptop.post("/api/taxpayer/login", json={"username": "shelby", "password": PASSWORD})
        ).status_code == 202
        await laptop.post("/api/taxpayer/login/code", json={"channel": "email"})
        code = code_in(await latest(preparer, "login_code", TAXPAYER["email"]))
        wrong = f"{(int(code) + 5) % 1_000_000:06d}"
        statuses = [
            (await laptop.post("/api/taxpayer/login/verify", json={"code": wrong})).status_code
            for _ in range(5)
        ]
        assert statuses == [422, 422, 422, 422, 423]
        locked = await laptop.post("/api/taxpayer/login/verify", json={"code": code})
        assert locked.status_code == 423 and "Too many wrong codes" in locked.json()["detail"]
        assert (await laptop.post("/api/taxpayer/login/code", json={"channel": "email"})).status_code == 423
    await person.http.aclose()
    await preparer.aclose()


async def test_item15_production_sends_hsts_and_hides_the_api_docs(settings: Settings) -> None:
    import httpx

    from portico.app import create_app

    async def get(app: Any, path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="https://portico.test") as http:
            return await http.get(path)

    development = create_app(settings)
    assert (await get(development, "/openapi.json")).status_code == 200
    assert "strict-transport-security" not in (await get(development, "/healthz")).headers
    settings.environment = "production"
    production = create_app(settings)
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert (await get(production, path)).status_code == 404, path
    assert (await get(production, "/healthz")).headers["strict-transport-security"] == (
        "max-age=31536000; includeSubDomains"
    )
    settings.api_docs = True  # an operator who wants the map of the API in production turns it on
    assert (await get(create_app(settings), "/openapi.json")).status_code == 200
