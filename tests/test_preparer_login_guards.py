"""What a preparer's password alone can do: over the JSON API, only finish two-step set-up; on the login
page, only a few guesses before the same throttle as the API's. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from preparer_steps import PASSWORD, Authenticator, add_preparer, csrf_of, enrol_directly
from sqlmodel import Session, select

from api.deps import PREPARER_SETUP_KIND, cookie_name
from core import sessions, throttle
from core.config import Settings
from core.context import Resources
from core.models import AuditEntry, WebSession, utcnow

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
