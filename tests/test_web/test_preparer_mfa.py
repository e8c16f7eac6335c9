"""Two-step login for preparers: enrolment (QR + recovery codes), TOTP at every login, replay and
lock-out, recovery codes, and the pages' refusal of a session without the second factor."""

from __future__ import annotations

import re

import pyotp
import pytest
from preparer_steps import PASSWORD, Authenticator, add_preparer, csrf_of, enrol_directly, post_form
from sqlmodel import Session, col, select

from core.context import Resources
from core.models import AuditEntry, RecoveryCode

pytestmark = pytest.mark.e2e


@pytest.fixture
def resources_for(settings):  # type: ignore[no-untyped-def]
    res = Resources.from_settings(settings)
    yield res
    res.engine.dispose()


async def test_json_api_enrolment_then_code_at_every_login(api, resources_for) -> None:  # type: ignore[no-untyped-def]
    email = "ada@firm.test"
    add_preparer(resources_for, email, "Lovelace Tax")
    async with api.client() as first:
        login = await first.post("/api/preparer/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200 and login.json()["next"] == "enrol"
        enrol = (await first.post("/api/preparer/mfa/enrol")).json()
        assert enrol["otpauth_uri"].startswith("otpauth://totp/")
        phone = Authenticator(enrol["secret"])
        wrong = await first.post("/api/preparer/mfa/confirm", json={"code": "000000"})
        assert wrong.status_code == 422
        done = await first.post("/api/preparer/mfa/confirm", json={"code": phone.code()})
        assert done.status_code == 200, done.text
        codes = done.json()["recovery_codes"]
        assert len(codes) == 10 and all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in codes)
        assert (await first.get("/api/engagements")).status_code == 200  # a fresh session with both factors

    async with api.client() as second:
        step1 = await second.post("/api/preparer/login", json={"email": email, "password": PASSWORD})
        assert step1.json()["next"] == "code"
        assert (await second.get("/api/engagements")).status_code == 401  # the password alone opens nothing
        bad = await second.post("/api/preparer/login/code", json={"code": "123456"})
        assert bad.status_code == 422
        code = phone.code()
        ok = await second.post("/api/preparer/login/code", json={"code": code})
        assert ok.status_code == 200 and ok.json()["next"] == "done"
        assert (await second.get("/api/engagements")).status_code == 200

    async with api.client() as replay:  # the same code, a second time: refused
        response = await replay.post(
            "/api/preparer/login", json={"email": email, "password": PASSWORD, "code": code}
        )
        assert response.status_code == 422 and "already used" in response.json()["detail"]

    async with api.client() as recovery:
        used = await recovery.post(
            "/api/preparer/login", json={"email": email, "password": PASSWORD, "code": codes[0].upper()}
        )
        assert used.status_code == 200, used.text
        again = await api.client().post(
            "/api/preparer/login", json={"email": email, "password": PASSWORD, "code": codes[0]}
        )
        assert again.status_code == 422

    with Session(resources_for.engine) as db:
        left = db.exec(select(RecoveryCode).where(col(RecoveryCode.used_at).is_(None))).all()
        assert len(left) == 9
        actions = [a.action for a in db.exec(select(AuditEntry).order_by(col(AuditEntry.id)))]
    assert "preparer.mfa_enrolled" in actions
    assert "preparer.recovery_code_used" in actions
    assert actions.count("preparer.mfa_failed") >= 2


async def test_wrong_codes_lock_the_second_factor(api, resources_for) -> None:  # type: ignore[no-untyped-def]
    email = "lock@firm.test"
    phone = Authenticator(enrol_directly(resources_for, email, "Lovelace Tax"))
    async with api.client() as http:
        # Digits of another script are no code (and no server error): a wrong code, counted like one.
        other_script = await http.post(
            "/api/preparer/login", json={"email": email, "password": PASSWORD, "code": "١٢٣٤٥٦"}
        )
        assert other_script.status_code == 422, other_script.text
        for _ in range(4):
            response = await http.post(
                "/api/preparer/login", json={"email": email, "password": PASSWORD, "code": "000000"}
            )
        assert response.status_code == 423
        locked = await http.post(
            "/api/preparer/login", json={"email": email, "password": PASSWORD, "code": phone.code()}
        )
        assert locked.status_code in (423, 429)  # even the right code waits (MFA lock or login throttle)


async def test_pages_need_both_factors(api, resources_for) -> None:  # type: ignore[no-untyped-def]
    email = "pages@firm.test"
    add_preparer(resources_for, email, "Lovelace Tax")
    async with api.client() as http:
        # A password-only session from the JSON API (not enrolled yet) does not open the workspace.
        await http.post("/api/preparer/login", json={"email": email, "password": PASSWORD})
        page = await http.get("/preparer")
        assert page.status_code == 303 and page.headers["location"].startswith("/preparer/login")
        # The page login sends a new preparer to enrolment, with the QR code inline (no inline style).
        first = await post_form(
            http, "/preparer/login", "/preparer/login", {"email": email, "password": PASSWORD}
        )
        assert first.headers["location"].startswith("/preparer/enrol")
        enrol = await http.get(first.headers["location"])
        assert "<svg" in enrol.text and "style=" not in enrol.text
        secret = re.search(r"data-totp-secret>([A-Z2-7 ]+)<", enrol.text)
        assert secret
        phone = Authenticator(secret.group(1).replace(" ", ""))
        wrong = await http.post("/preparer/enrol", data={"code": "111111", "csrf_token": csrf_of(enrol.text)})
        assert wrong.status_code == 422 and "does not match" in wrong.text
        done = await http.post(
            "/preparer/enrol", data={"code": phone.code(), "csrf_token": csrf_of(enrol.text)}
        )
        assert done.status_code == 200 and done.text.count("<li><code>") == 10
        assert (await http.get("/preparer")).status_code == 200
        # Without the CSRF token a form post is refused.
        assert (await http.post("/preparer/logout")).status_code == 403


async def test_totp_codes_from_pyotp_match(resources_for) -> None:  # type: ignore[no-untyped-def]
    from core.models import utcnow
    from services.preparer_auth import _matching_step

    secret = pyotp.random_base32()
    totp = pyotp.TOTP(secret)
    now = utcnow()
    assert _matching_step(secret, totp.at(now), now) == totp.timecode(now)
    assert _matching_step(secret, totp.at(now.timestamp() - 30), now) == totp.timecode(now) - 1
    assert _matching_step(secret, totp.at(now.timestamp() - 90), now) is None


async def test_polling_does_not_keep_an_idle_workspace_logged_in(api, resources_for) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from preparer_steps import page_login

    from core.models import WebSession, utcnow

    email = "idle@firm.test"
    phone = Authenticator(enrol_directly(resources_for, email, "Lovelace Tax"))
    poll = {"hx-request": "true", "hx-trigger": "results"}

    def age_session(minutes: int) -> None:
        with Session(resources_for.engine) as db:
            row = db.exec(select(WebSession).where(WebSession.kind == "preparer")).one()
            row.last_seen_at = utcnow() - timedelta(minutes=minutes)
            db.add(row)
            db.commit()

    def last_seen() -> object:
        with Session(resources_for.engine) as db:
            return db.exec(select(WebSession.last_seen_at).where(WebSession.kind == "preparer")).one()

    async with api.client() as http:
        await page_login(http, email, phone)
        age_session(10)
        before = last_seen()
        assert (await http.get("/preparer/dashboard/results", headers=poll)).status_code == 200
        assert last_seen() == before  # the poll did not count as activity
        age_session(16)  # past the preparers' 15-minute idle limit
        expired = await http.get("/preparer/dashboard/results", headers=poll)
        assert expired.status_code == 204 and expired.headers["hx-redirect"].startswith("/preparer/login")
        page = await http.get("/preparer")
        assert page.status_code == 303 and page.headers["location"].startswith("/preparer/login")


def test_qr_svg_draws_exactly_the_qr_matrix() -> None:
    import qrcode

    from services.preparer_auth import qr_svg

    uri = "otpauth://totp/Portico%20%28Lovelace%20Tax%29:ada%40firm.test?secret=JBSWY3DPEHPK3PXP"
    svg = qr_svg(uri)
    assert "style" not in svg and "<script" not in svg
    drawn = set()
    for x, y, width in re.findall(r"M(\d+),(\d+)h(\d+)v1h-\d+z", svg):
        drawn |= {(int(x) + i, int(y)) for i in range(int(width))}
    qr = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(uri)
    qr.make(fit=True)
    expected = {(x, y) for y, line in enumerate(qr.get_matrix()) for x, dark in enumerate(line) if dark}
    assert drawn == expected
