"""A signed-in preparer changes their own password and login email, through the JSON API and the My account
page: the current password and an authenticator code (or a recovery code) are asked again and counted by the
login throttle, a new address is proven with a code sent to it, other sessions end with a new password, and
the old address is told."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from preparer_steps import PASSWORD, Authenticator, api_login, csrf_of, enrol_directly, page_login
from sqlmodel import Session, col, select
from starlette.requests import Request

from core import sessions, throttle
from core.config import Settings
from core.context import Resources
from core.models import AuditEntry, Preparer, WebSession
from core.passwords import verify_password
from services import cookies
from services import preparer_auth as auth
from services.preparer_account import EMAIL_TAKEN, WRONG_PASSWORD

pytestmark = pytest.mark.e2e
EMAIL = "ada@lovelace-tax.example.com"
NEW_EMAIL = "ada.preparer@example.org"
NEW_PASSWORD = "a brand new passphrase 2026"
PASSWORD_URL = "/api/preparer/account/password"
CODE_URL = "/api/preparer/account/email/code"
CONFIRM_URL = "/api/preparer/account/email"


@dataclass
class Stack:
    api: Any
    resources: Resources
    http: httpx.AsyncClient  # the preparer, logged in with both factors
    phone: Authenticator
    preparer_id: int


@pytest.fixture
async def stack(db_settings: Settings, api: Any) -> AsyncIterator[Stack]:
    resources = Resources.from_settings(db_settings)
    phone = Authenticator(enrol_directly(resources, EMAIL, "Lovelace Tax"))
    with Session(resources.engine) as db:
        preparer_id = db.exec(select(Preparer.id).where(Preparer.email == EMAIL)).one() or 0
    async with api.client("198.51.100.20") as http:
        await api_login(http, EMAIL, phone)
        yield Stack(api, resources, http, phone, preparer_id)
    resources.engine.dispose()


def other_session(stack: Stack, http: httpx.AsyncClient) -> None:
    """Another browser of the same preparer, already logged in (its code step is not what is tested)."""
    with Session(stack.resources.engine) as db:
        token = sessions.start(db, "preparer", stack.preparer_id, "198.51.100.30", "laptop")
    http.cookies.set(cookies.name(stack.resources, cookies.SESSION), token, domain="portico.test")


def recovery_codes(stack: Stack) -> list[str]:
    scope = {"type": "http", "headers": [], "client": ("127.0.0.1", 1)}
    with Session(stack.resources.engine, expire_on_commit=False) as db:
        preparer = db.get(Preparer, stack.preparer_id)
        assert preparer is not None
        return auth.new_recovery_codes(db, Request(scope), stack.resources, preparer)


def preparer_row(stack: Stack) -> Preparer:
    with Session(stack.resources.engine, expire_on_commit=False) as db:
        row = db.get(Preparer, stack.preparer_id)
        assert row is not None
        return row


def audit_rows(stack: Stack) -> list[AuditEntry]:
    with Session(stack.resources.engine) as db:
        return list(db.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all())


def refusals(stack: Stack) -> list[str]:
    rows = [r for r in audit_rows(stack) if r.action == "preparer.account_change_refused"]
    return [f"{d['what']}:{d['reason']}" for d in (json.loads(r.detail) for r in rows)]


async def messages(http: httpx.AsyncClient, purpose: str) -> list[dict[str, Any]]:
    listed = (await http.get("/api/dev/outbox")).json()
    return [m for m in listed if m["purpose"] == purpose]


def code_in(message: dict[str, Any]) -> str:
    match = re.search(r"\b(\d{6})\b", message["body"])
    assert match, message["body"]
    return match.group(1)


# ---- password ----------------------------------------------------------------------------------------


async def test_password_change_through_the_api(stack: Stack) -> None:
    api, http, phone = stack.api, stack.http, stack.phone
    async with api.client("198.51.100.30") as laptop, api.client("198.51.100.31") as half:
        other_session(stack, laptop)
        assert (await laptop.get("/api/engagements")).status_code == 200
        # A login that proved the password and waits for its code: it proved the old one, so it ends too.
        first = await half.post("/api/preparer/login", json={"email": EMAIL, "password": PASSWORD})
        assert first.json()["next"] == "code"

        def body(current: str = PASSWORD, code: str = "000000", new: str = NEW_PASSWORD) -> dict[str, str]:
            return {"current_password": current, "code": code, "new_password": new}

        wrong = await http.post(PASSWORD_URL, json=body(current="not it"))
        assert wrong.status_code == 403 and wrong.json()["detail"] == WRONG_PASSWORD
        bad_code = await http.post(PASSWORD_URL, json=body(code="000000"))
        assert bad_code.status_code == 422 and "code is not right" in bad_code.json()["detail"]
        common = await http.post(PASSWORD_URL, json=body(new="password123"))
        assert common.status_code == 422 and "too common" in common.json()["detail"]
        short = await http.post(PASSWORD_URL, json=body(new="short"))
        assert short.status_code == 422 and "at least 8 characters" in short.json()["detail"]
        as_email = await http.post(PASSWORD_URL, json=body(new=EMAIL.upper()))
        assert as_email.status_code == 422 and "email" in as_email.json()["detail"]
        same = await http.post(PASSWORD_URL, json=body(new=PASSWORD))
        assert same.status_code == 422 and "different" in same.json()["detail"]
        missing = await http.post(
            PASSWORD_URL, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        )
        assert missing.status_code == 422  # no second factor at all: the request model refuses it
        assert verify_password(preparer_row(stack).password_hash, PASSWORD)  # nothing changed so far
        assert (await laptop.get("/api/engagements")).status_code == 200

        before = dict(http.cookies)
        ok = await http.post(PASSWORD_URL, json=body(code=phone.code()))
        assert ok.status_code == 200, ok.text
        assert dict(http.cookies) != before  # a new session id for this browser
        assert (await http.get("/api/engagements")).status_code == 200
        assert (await laptop.get("/api/engagements")).status_code == 401  # every other session ended
        late = await half.post("/api/preparer/login/code", json={"code": "000000"})
        assert late.status_code == 401  # the pending login ended as well (refused before any code check)

    row = preparer_row(stack)
    assert row.password_hash.startswith("$argon2id$") and verify_password(row.password_hash, NEW_PASSWORD)
    with Session(stack.resources.engine) as db:
        left = db.exec(select(WebSession).where(WebSession.subject_id == stack.preparer_id)).all()
        assert [s.kind for s in left] == ["preparer"]
    async with api.client("198.51.100.32") as other:
        old = await other.post("/api/preparer/login", json={"email": EMAIL, "password": PASSWORD})
        assert old.status_code == 401
        new = await other.post("/api/preparer/login", json={"email": EMAIL, "password": NEW_PASSWORD})
        assert new.status_code == 200 and new.json()["next"] == "code"

    notices = await messages(http, "preparer_password_changed")
    assert [n["destination"] for n in notices] == [EMAIL]
    assert "If this wasn't you, tell an administrator" in notices[0]["body"]
    assert sorted(refusals(stack)) == sorted(
        ["password:wrong password", "password:wrong code"] + ["password:rules"] * 4
    )
    rows = audit_rows(stack)
    changed = [r for r in rows if r.action == "preparer.password_changed"]
    assert len(changed) == 1 and changed[0].ip == "198.51.100.20" and '"password+totp"' in changed[0].detail
    assert '"other_sessions_ended": 1' in changed[0].detail
    assert "preparer.mfa_failed" in [r.action for r in rows]
    assert any(r.action == "preparer.account_change_notice" and '"sent"' in r.detail for r in rows)


async def test_a_recovery_code_is_a_second_factor_once(stack: Stack) -> None:
    codes = recovery_codes(stack)
    body = {"current_password": PASSWORD, "code": codes[0].upper(), "new_password": NEW_PASSWORD}
    assert (await stack.http.post(PASSWORD_URL, json=body)).status_code == 200
    again = {"current_password": NEW_PASSWORD, "code": codes[0], "new_password": "yet another passphrase 9"}
    used = await stack.http.post(PASSWORD_URL, json=again)
    assert used.status_code == 422
    assert verify_password(preparer_row(stack).password_hash, NEW_PASSWORD)
    changed = [r for r in audit_rows(stack) if r.action == "preparer.password_changed"]
    assert len(changed) == 1 and '"password+recovery_code"' in changed[0].detail


async def test_wrong_answers_share_the_login_throttle(stack: Stack, monkeypatch: Any) -> None:
    frozen = throttle.utcnow()
    monkeypatch.setattr(throttle, "utcnow", lambda: frozen)  # waits are exact, however slow the machine
    wrong_password = {"current_password": "guess", "code": "000000", "new_password": NEW_PASSWORD}
    wrong_code = {"new_email": NEW_EMAIL, "current_password": PASSWORD, "code": "000000"}
    for _ in range(3):
        assert (await stack.http.post(PASSWORD_URL, json=wrong_password)).status_code == 403
    for _ in range(2):
        assert (await stack.http.post(CODE_URL, json=wrong_code)).status_code == 422
    waited = await stack.http.post(PASSWORD_URL, json=wrong_password)
    assert waited.status_code == 429 and "Too many attempts" in waited.json()["detail"]
    assert int(waited.headers["Retry-After"]) >= 1
    # The very same count as the login: the right password at the login must wait too, from anywhere.
    async with stack.api.client("198.51.100.40") as elsewhere:
        login = await elsewhere.post("/api/preparer/login", json={"email": EMAIL, "password": PASSWORD})
        assert login.status_code == 429
    assert sorted(refusals(stack)) == sorted(
        ["password:wrong password"] * 3 + ["email:wrong code"] * 2 + ["password:throttled"]
    )
    assert preparer_row(stack).email == EMAIL


# ---- login email -------------------------------------------------------------------------------------


async def test_email_change_through_the_api(stack: Stack) -> None:
    api, http, phone = stack.api, stack.http, stack.phone
    enrol_directly(stack.resources, "colin@other-firm.example.com", "Other Firm", "Colin Other")

    def start(email: str = NEW_EMAIL, current: str = PASSWORD, code: str = "000000") -> dict[str, str]:
        return {"new_email": email, "current_password": current, "code": code}

    early = await http.post(CONFIRM_URL, json={"new_email": NEW_EMAIL, "email_code": "123456"})
    assert early.status_code == 422 and early.json()["detail"] == "Ask for a code first."
    invalid = await http.post(CODE_URL, json=start(email="not an address"))
    assert invalid.status_code == 422 and "Enter an email address" in invalid.json()["detail"]
    same = await http.post(CODE_URL, json=start(email=EMAIL.upper()))
    assert same.status_code == 422 and "already your login email" in same.json()["detail"]
    wrong = await http.post(CODE_URL, json=start(current="not it"))
    assert wrong.status_code == 403 and wrong.json()["detail"] == WRONG_PASSWORD
    bad_code = await http.post(CODE_URL, json=start(code="000000"))
    assert bad_code.status_code == 422
    taken = await http.post(
        CODE_URL, json=start(email="Colin@Other-Firm.example.com", code=recovery_codes(stack)[0])
    )
    assert taken.status_code == 409 and taken.json()["detail"] == EMAIL_TAKEN
    assert await messages(http, "preparer_email_code") == []  # nothing sent so far

    sent = await http.post(CODE_URL, json=start(code=phone.code()))
    assert sent.status_code == 200, sent.text
    assert sent.json()["message"] == "Code sent to ada*****org."
    again = await http.post(CODE_URL, json=start())  # the wait is checked before the factors
    assert again.status_code == 429 and "wait" in again.json()["detail"]
    codes = await messages(http, "preparer_email_code")
    assert [m["destination"] for m in codes] == [NEW_EMAIL]
    code = code_in(codes[0])
    assert preparer_row(stack).email == EMAIL  # nothing changes before the code comes back

    wrong_digits = f"{(int(code) + 1) % 1_000_000:06d}"
    miss = await http.post(CONFIRM_URL, json={"new_email": NEW_EMAIL, "email_code": wrong_digits})
    assert miss.status_code == 422 and "not right" in miss.json()["detail"]
    elsewhere = await http.post(CONFIRM_URL, json={"new_email": "someone@example.net", "email_code": code})
    assert elsewhere.status_code == 422  # the code proves the address it was sent to, no other
    async with api.client("198.51.100.30") as laptop:  # nor in another session of the same preparer
        other_session(stack, laptop)
        other = await laptop.post(CONFIRM_URL, json={"new_email": NEW_EMAIL, "email_code": code})
        assert other.status_code == 422
    assert preparer_row(stack).email == EMAIL

    done = await http.post(
        CONFIRM_URL, json={"new_email": NEW_EMAIL.upper(), "email_code": code[:3] + " " + code[3:]}
    )
    assert done.status_code == 200, done.text
    assert done.json()["email"] == NEW_EMAIL
    replay = await http.post(CONFIRM_URL, json={"new_email": NEW_EMAIL, "email_code": code})
    assert replay.status_code == 422 and replay.json()["detail"] == "Ask for a code first."
    assert preparer_row(stack).email == NEW_EMAIL
    assert (await http.get("/api/engagements")).status_code == 200  # this session goes on

    async with api.client("198.51.100.33") as other:
        old = await other.post("/api/preparer/login", json={"email": EMAIL, "password": PASSWORD})
        assert old.status_code == 401
        new = await other.post("/api/preparer/login", json={"email": NEW_EMAIL, "password": PASSWORD})
        assert new.status_code == 200 and new.json()["next"] == "code"

    notices = await messages(http, "preparer_email_changed")
    assert [n["destination"] for n in notices] == [EMAIL]  # the old address is told, not the new one
    assert "ada*****org" in notices[0]["body"] and "If this wasn't you" in notices[0]["body"]
    assert sorted(refusals(stack)) == sorted(
        ["email:wrong password", "email:wrong code", "email:taken"] + ["email:wrong code"] * 3
    )
    actions = [r.action for r in audit_rows(stack)]
    assert actions.count("preparer.email_code_sent") == 1 and actions.count("preparer.email_changed") == 1
    changed = next(r for r in audit_rows(stack) if r.action == "preparer.email_changed")
    assert EMAIL in changed.detail and NEW_EMAIL in changed.detail


async def test_an_address_taken_while_the_code_travels_is_refused(stack: Stack) -> None:
    sent = await stack.http.post(
        CODE_URL, json={"new_email": NEW_EMAIL, "current_password": PASSWORD, "code": stack.phone.code()}
    )
    assert sent.status_code == 200, sent.text
    code = code_in((await messages(stack.http, "preparer_email_code"))[0])
    enrol_directly(stack.resources, NEW_EMAIL, "Other Firm", "Quick Other")
    late = await stack.http.post(CONFIRM_URL, json={"new_email": NEW_EMAIL, "email_code": code})
    assert late.status_code == 409 and late.json()["detail"] == EMAIL_TAKEN
    assert preparer_row(stack).email == EMAIL
    assert await messages(stack.http, "preparer_email_changed") == []


# ---- the page ------------------------------------------------------------------------------------------


async def post_page(http: httpx.AsyncClient, action: str, data: dict[str, str]) -> httpx.Response:
    page = await http.get("/preparer/account")
    assert page.status_code == 200, page.text[:300]
    return await http.post(action, data={**data, "csrf_token": csrf_of(page.text)})


async def test_my_account_page(db_settings: Settings, api: Any) -> None:
    resources = Resources.from_settings(db_settings)
    phone = Authenticator(enrol_directly(resources, EMAIL, "Lovelace Tax"))
    try:
        async with api.client("198.51.100.50") as http:
            await page_login(http, EMAIL, phone)
            page = await http.get("/preparer/account")
            assert page.status_code == 200
            assert 'href="/preparer/account" aria-current="page">My account</a>' in page.text
            assert "style=" not in page.text and "<script>" not in page.text
            assert "script-src 'self'" in page.headers["content-security-policy"]
            assert EMAIL in page.text and "Lovelace Tax" in page.text
            assert (await http.post("/preparer/account/password", data={})).status_code == 403  # no CSRF

            wrong = await post_page(
                http,
                "/preparer/account/password",
                {"current_password": "nope", "code": "000000", "new_password": NEW_PASSWORD},
            )
            assert wrong.status_code == 403 and WRONG_PASSWORD in wrong.text
            assert 'id="password-current"' in wrong.text and 'aria-invalid="true"' in wrong.text
            weak = await post_page(
                http,
                "/preparer/account/password",
                {"current_password": PASSWORD, "code": "000000", "new_password": "password1"},
            )
            assert weak.status_code == 422 and "too common" in weak.text
            changed = await post_page(
                http,
                "/preparer/account/password",
                {"current_password": PASSWORD, "code": phone.code(), "new_password": NEW_PASSWORD},
            )
            assert changed.status_code == 303 and changed.headers["location"].endswith("?m=password-changed")
            after = await http.get(changed.headers["location"])
            assert after.status_code == 200 and "Your password is changed." in after.text

            with Session(resources.engine, expire_on_commit=False) as db:
                preparer = db.exec(select(Preparer).where(Preparer.email == EMAIL)).one()
                scope = {"type": "http", "headers": [], "client": ("127.0.0.1", 1)}
                recovery = auth.new_recovery_codes(db, Request(scope), resources, preparer)
            invalid = await post_page(
                http,
                "/preparer/account/email/code",
                {"new_email": "  Not An Address ", "current_password": NEW_PASSWORD, "code": recovery[0]},
            )
            assert invalid.status_code == 422 and "Enter an email address" in invalid.text
            assert 'value="Not An Address"' in invalid.text  # what was typed comes back; passwords never do
            assert NEW_PASSWORD not in invalid.text
            sent = await post_page(
                http,
                "/preparer/account/email/code",
                {"new_email": NEW_EMAIL, "current_password": NEW_PASSWORD, "code": recovery[0]},
            )
            assert sent.status_code == 200 and "We sent a 6-digit code to ada*****org" in sent.text
            code = code_in((await messages(http, "preparer_email_code"))[0])
            miss = await post_page(
                http, "/preparer/account/email", {"new_email": NEW_EMAIL, "email_code": "000000"}
            )
            assert miss.status_code == 422 and "not right" in miss.text
            assert 'name="email_code"' in miss.text  # the code form again: the code may be retyped
            done = await post_page(
                http, "/preparer/account/email", {"new_email": NEW_EMAIL, "email_code": code}
            )
            assert done.status_code == 303 and done.headers["location"].endswith("?m=email-changed")
            final = await http.get(done.headers["location"])
            assert "Your login email is changed." in final.text
            assert f"<dd data-login-email>{NEW_EMAIL}</dd>" in final.text
            notices = await messages(http, "preparer_email_changed")
            assert [n["destination"] for n in notices] == [EMAIL]
    finally:
        resources.engine.dispose()


async def test_item12_new_recovery_codes_need_password_and_authenticator_code(
    db_settings: Settings, api: Any
) -> None:
    """A session left open is not enough to mint new recovery codes (a second factor of their own): the
    page asks for the current password and an authenticator code, like every other account change."""
    resources = Resources.from_settings(db_settings)
    phone = Authenticator(enrol_directly(resources, EMAIL, "Lovelace Tax"))
    try:
        async with api.client("198.51.100.51") as http:
            await page_login(http, EMAIL, phone)
            with Session(resources.engine) as db:
                preparer_id = db.exec(select(Preparer.id).where(Preparer.email == EMAIL)).one() or 0
            before = auth.recovery_codes_left(db=Session(resources.engine), preparer_id=preparer_id)
            url = "/preparer/security/recovery-codes"
            bare = await post_page(http, url, {})
            assert bare.status_code == 403 and WRONG_PASSWORD in bare.text, bare.status_code
            no_code = await post_page(http, url, {"current_password": PASSWORD, "code": "000000"})
            assert no_code.status_code == 422 and 'class="recovery-codes"' not in no_code.text
            assert 'id="recovery-totp"' in no_code.text and 'aria-invalid="true"' in no_code.text
            with Session(resources.engine) as db:
                assert auth.recovery_codes_left(db, preparer_id) == before  # nothing replaced
            made = await post_page(http, url, {"current_password": PASSWORD, "code": phone.code()})
            assert made.status_code == 200 and made.text.count("<li") >= 10, made.text[:300]
        with Session(resources.engine) as db:
            refusals = [a.action for a in db.exec(select(AuditEntry)) if "refused" in a.action]
            assert len(refusals) == 2 and auth.recovery_codes_left(db, preparer_id) == 10
    finally:
        resources.engine.dispose()
