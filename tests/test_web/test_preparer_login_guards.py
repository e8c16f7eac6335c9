"""What a preparer's password alone can do: over the JSON API, only finish two-step set-up; on the login
page, only a few guesses before the same throttle as the API's. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime

import httpx
import pyotp
import pytest
from preparer_steps import PASSWORD, Authenticator, add_preparer, csrf_of, enrol_directly
from sqlmodel import Session, select

from core import sessions, throttle
from core.config import Settings
from core.context import Resources
from core.models import AuditEntry, ThrottleState, WebSession, utcnow
from services.deps import PREPARER_SETUP_KIND, cookie_name

pytestmark = pytest.mark.e2e

# Every route of a full preparer session, tried with a set-up-only one: all refused.
GUARDED = [
    ("GET", "/api/engagements"),
    ("POST", "/api/engagements"),
    ("GET", "/api/engagements/1"),
    ("POST", "/api/engagements/1/invite"),
    ("POST", "/api/engagements/1/cancel"),
    ("GET", "/api/engagements/1/messages"),
    ("GET", "/api/engagements/1/record"),
]


@pytest.fixture
def res(db_settings: Settings) -> Iterator[Resources]:
    resources = Resources.from_settings(db_settings)
    yield resources
    resources.engine.dispose()


def _kinds(res: Resources) -> list[str]:
    with Session(res.engine) as db:
        return sorted(row.kind for row in db.exec(select(WebSession)))


async def _refused(http: httpx.AsyncClient) -> None:
    for method, path in GUARDED:
        response = await http.request(method, path, json={})
        assert response.status_code == 403, (method, path, response.status_code, response.text)
        assert "two-step login" in response.json()["detail"], response.text


async def test_a_set_up_session_reaches_only_enrolment_then_becomes_a_full_one(res, api) -> None:  # type: ignore[no-untyped-def]
    email = "new@firm.test"
    add_preparer(res, email, "Lovelace Tax")
    async with api.client() as http, api.client() as other_tab:
        login = await http.post("/api/preparer/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200 and login.json()["next"] == "enrol", login.text
        setup_token = http.cookies[cookie_name(res)]
        assert _kinds(res) == [PREPARER_SETUP_KIND]
        await _refused(http)
        page = await http.get("/preparer")  # nor does it open the workspace pages
        assert page.status_code == 303 and page.headers["location"].startswith("/preparer/login")

        enrol = await http.post("/api/preparer/mfa/enrol")
        assert enrol.status_code == 200, enrol.text
        phone = Authenticator(enrol.json()["secret"])
        other_tab.cookies.set(cookie_name(res), setup_token)
        done = await http.post("/api/preparer/mfa/confirm", json={"code": phone.code()})
        assert done.status_code == 200, done.text

        assert http.cookies[cookie_name(res)] != setup_token  # a new session id, with both factors
        assert _kinds(res) == ["preparer"]
        assert (await http.get("/api/engagements")).status_code == 200
        assert (await other_tab.get("/api/engagements")).status_code == 401  # the set-up session ended
    with Session(res.engine) as db:
        logins = [a for a in db.exec(select(AuditEntry)) if a.action == "preparer.login"]
    assert [json.loads(login.detail).get("authentication") for login in logins] == ["password", "totp"]


async def test_logout_ends_a_set_up_session(res, api) -> None:  # type: ignore[no-untyped-def]
    email = "leaving@firm.test"
    add_preparer(res, email, "Lovelace Tax")
    async with api.client() as http:
        await http.post("/api/preparer/login", json={"email": email, "password": PASSWORD})
        assert (await http.post("/api/preparer/logout")).status_code == 200
        assert _kinds(res) == []
        assert (await http.post("/api/preparer/mfa/enrol")).status_code == 401


async def test_a_full_session_without_two_step_login_is_refused_too(res, api) -> None:  # type: ignore[no-untyped-def]
    """A session opened with the password alone before this rule existed, or kept after a reset."""
    preparer_id = add_preparer(res, "old@firm.test", "Lovelace Tax")
    with Session(res.engine) as db:
        token = sessions.start(db, "preparer", preparer_id, "203.0.113.1", "pytest")
    async with api.client() as http:
        http.cookies.set(cookie_name(res), token)
        await _refused(http)


# ---- the login page's password step ---------------------------------------------------------------------


class FrozenClock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    """The throttle's clock stands still, so a wait can't run out between two attempts on a slow machine."""
    frozen = FrozenClock()
    monkeypatch.setattr(throttle, "utcnow", frozen)
    return frozen


async def _page_login(http: httpx.AsyncClient, token: str, email: str, password: str) -> httpx.Response:
    return await http.post(
        "/preparer/login", data={"email": email, "password": password, "csrf_token": token}
    )


async def test_the_page_throttles_password_guesses_per_account(res, api, clock) -> None:  # type: ignore[no-untyped-def]
    email = "ada@firm.test"
    enrol_directly(res, email, "Lovelace Tax")
    async with api.client("203.0.113.20") as attacker, api.client("198.51.100.30") as api_caller:
        token = csrf_of((await attacker.get("/preparer/login")).text)
        for _ in range(throttle.ACCOUNT.free):
            wrong = await _page_login(attacker, token, email, "guess-1234")
            assert wrong.status_code == 401 and "Wrong email or password." in wrong.text
        refused = await _page_login(attacker, token, email.upper(), PASSWORD)  # even the right password
        assert refused.status_code == 429, refused.text
        wait = int(refused.headers["retry-after"])
        assert f"Too many attempts. Please wait {throttle.wait_text(wait)} and try again." in refused.text
        assert 'role="alert"' in refused.text
        assert _kinds(res) == []  # no pending login was opened
        # The JSON API counts in the same place: switching to it gains nothing.
        api_try = await api_caller.post("/api/preparer/login", json={"email": email, "password": PASSWORD})
        assert api_try.status_code == 429 and "Too many attempts" in api_try.json()["detail"]

        clock.now = clock.now.replace(microsecond=0) + throttle.ACCOUNT.window  # long after: forgiven
        ok = await _page_login(attacker, token, email, PASSWORD)
        assert ok.status_code == 303 and ok.headers["location"].startswith("/preparer/login/code")
    with Session(res.engine) as db:
        lockouts = [a for a in db.exec(select(AuditEntry)) if a.action == "throttle.lockout"]
    assert len(lockouts) == 1 and json.loads(lockouts[0].detail)["scope"] == "preparer-login:account"


async def test_the_page_throttles_password_guesses_per_address(res, api, clock) -> None:  # type: ignore[no-untyped-def]
    async with api.client("203.0.113.21") as sprayer, api.client("198.51.100.31") as colleague:
        token = csrf_of((await sprayer.get("/preparer/login")).text)
        for n in range(throttle.IP.free):  # one guess per account: no account throttle ever starts
            wrong = await _page_login(sprayer, token, f"person{n}@firm.test", "guess-1234")
            assert wrong.status_code == 401, (n, wrong.status_code)
        refused = await _page_login(sprayer, token, "someone.else@firm.test", "guess-1234")
        assert refused.status_code == 429 and "Too many attempts" in refused.text
        # Another address is not slowed down by it.
        token = csrf_of((await colleague.get("/preparer/login")).text)
        assert (await _page_login(colleague, token, "person0@firm.test", "guess-1234")).status_code == 401


# ---- the authenticator step ------------------------------------------------------------------------------


def _wrong_codes(secret: str, count: int) -> list[str]:
    totp = pyotp.TOTP(secret)
    now = totp.timecode(utcnow())
    right = {totp.generate_otp(step) for step in range(now - 2, now + 3)}
    return [
        code for code in (f"{n * 7919 % 1_000_000:06d}" for n in range(1, count * 2)) if code not in right
    ][:count]


async def test_item3_concurrent_authenticator_guesses_judged_at_most_5(res, api) -> None:  # type: ignore[no-untyped-def]
    """Forty wrong codes fired at once at the pending login: each attempt is claimed in SQL before its code
    is compared, so at most five are judged (the rest are locked or throttled, never compared)."""
    email = "grace@firm.test"
    secret = enrol_directly(res, email, "Hopper Tax")
    async with api.client("203.0.113.40") as http:
        login = await http.post("/api/preparer/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200 and login.json()["next"] == "code", login.text
        guesses = await asyncio.gather(
            *(http.post("/api/preparer/login/code", json={"code": code}) for code in _wrong_codes(secret, 40))
        )
    statuses = [guess.status_code for guess in guesses]
    assert set(statuses) <= {422, 423, 429}, statuses
    with Session(res.engine) as db:
        judged = [a for a in db.exec(select(AuditEntry)) if a.action == "preparer.mfa_failed"]
    assert 1 <= len(judged) <= 5, (len(judged), statuses)
    assert statuses.count(422) + statuses.count(423) >= len(judged) and statuses.count(422) <= 5, statuses
    # And the step is throttled per account like the password step: the lock is what a person sees first,
    # the throttle's count is there as well.
    with Session(res.engine) as db:
        counted = db.exec(select(ThrottleState).where(ThrottleState.scope == "preparer-login-code:account"))
        assert [row.attempts for row in counted] and all(row.attempts >= 5 for row in counted)


async def test_a_page_with_a_query_string_comes_back_whole_after_the_login(res, api) -> None:  # type: ignore[no-untyped-def]
    """The dashboard filtered by stage and search: both parameters survive the login's redirects."""
    from urllib.parse import parse_qs, urlsplit

    email = "grace@firm.test"
    enrol_directly(res, email, "Hopper Tax")
    wanted = "/preparer?stage=signing&q=smith"
    async with api.client() as http:
        page = await http.get(wanted)
        assert page.status_code == 303
        login_url = urlsplit(page.headers["location"])
        assert login_url.path == "/preparer/login" and parse_qs(login_url.query)["next"] == [wanted]
        token = csrf_of((await http.get(page.headers["location"])).text)
        step = await http.post(
            "/preparer/login",
            data={"email": email, "password": PASSWORD, "csrf_token": token, "next": wanted},
        )
        code_url = urlsplit(step.headers["location"])
        assert code_url.path == "/preparer/login/code" and parse_qs(code_url.query)["next"] == [wanted]
