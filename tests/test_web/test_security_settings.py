"""Sign-in by email and the security settings, through the real stack (API, pages, worker, dev server):
a login names the account by any verified email (any case) or the user name, and an address without an
account gets the same password step and the same refusal; the per-account throttle counts both spellings
as one; another email is added with a code (and recognised on a later invitation), removed (never the last
one); sessions are listed and ended, remembered browsers forgotten; another account's ids are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from invitation_steps import invite_by_email, invited_taxpayer
from journey import PASSWORD, TAXPAYER, Person, code_in, latest
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from core import throttle
from core.config import Settings
from core.context import Resources
from core.models import (
    AccountEmail,
    AuditEntry,
    TaxpayerAccount,
    ThrottleState,
    TrustedDevice,
    WebSession,
)
from services import returning_clients
from services.accounts import read_invitation

pytestmark = pytest.mark.e2e
ADDED = "shelby.work@example.org"
UNKNOWN = "nobody.here@example.org"


@pytest.fixture
async def stack(
    db_settings: Settings, api: Any, dev_server: WorkflowEnvironment
) -> AsyncIterator[dict[str, Any]]:
    """A verified taxpayer (API session, this browser remembered) and the preparer reading the dev outbox."""
    async with invited_taxpayer(api, db_settings, dev_server) as invited:
        preparer = invited.preparer
        taxpayer = api.client("198.51.100.2")
        person = Person(taxpayer, TAXPAYER)
        assert (
            await taxpayer.post(f"/api/invitations/{invited.token}/register", json=person.registration())
        ).status_code == 201
        assert (await taxpayer.post("/api/taxpayer/code", json={"channel": "email"})).status_code == 200
        code = code_in(await latest(preparer, "code", TAXPAYER["email"]))
        assert (
            await taxpayer.post("/api/taxpayer/verify", json={"code": code, "remember_device": True})
        ).status_code == 200
        yield {"api": api, "resources": invited.resources, "preparer": preparer, "taxpayer": taxpayer}
        await taxpayer.aclose()


def csrf_of(page: httpx.Response) -> str:
    return page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def audited(resources: Resources, action: str) -> int:
    with Session(resources.engine) as db:
        return len(db.exec(select(AuditEntry).where(AuditEntry.action == action)).all())


async def messages_to(preparer: httpx.AsyncClient, purpose: str, destination: str) -> list[dict[str, Any]]:
    listed = (await preparer.get("/api/dev/outbox")).json()
    return [m for m in listed if m["purpose"] == purpose and m["destination"] == destination]


async def add_email(stack: dict[str, Any], address: str = ADDED) -> None:
    """Adds `address` through the Account page: a wrong code is refused, the right one adds it."""
    taxpayer, preparer = stack["taxpayer"], stack["preparer"]
    token = csrf_of(await taxpayer.get("/portal/account"))
    wrong_password = await taxpayer.post(
        "/portal/account/emails/code",
        data={"csrf_token": token, "value": address, "current_password": "not mine"},
    )
    assert wrong_password.status_code == 403 and "not your current password" in wrong_password.text
    sent = await taxpayer.post(
        "/portal/account/emails/code",
        data={"csrf_token": token, "value": address, "current_password": PASSWORD},
    )
    assert sent.status_code == 200 and "We sent a 6-digit code to" in sent.text, sent.text
    code = code_in(await latest(preparer, "contact_code", address))
    wrong = "000000" if code != "000000" else "111111"
    refused = await taxpayer.post(
        "/portal/account/emails", data={"csrf_token": token, "value": address, "code": wrong}
    )
    assert refused.status_code == 422 and "That code is not right" in refused.text
    with Session(stack["resources"].engine) as db:
        assert not db.exec(select(AccountEmail).where(AccountEmail.email == address)).all()
    done = await taxpayer.post(
        "/portal/account/emails", data={"csrf_token": token, "value": address, "code": code}
    )
    assert done.status_code == 303 and done.headers["location"] == "/portal/account?m=email-added", done.text


async def page_login(http: httpx.AsyncClient, login: str, password: str) -> httpx.Response:
    """The two-step login page: the login, Continue, then the password."""
    first = await http.get("/portal/login")
    assert "Enter your email address (or user name) and click Continue" in first.text
    token = csrf_of(first)
    step = await http.post("/portal/login/continue", data={"csrf_token": token, "login": login})
    assert step.status_code == 200 and 'name="password"' in step.text, step.text
    assert "If you don't have an account yet, use the link in your invitation to sign up" in step.text
    return await http.post("/portal/login", data={"csrf_token": token, "login": login, "password": password})


# ---- sign-in by email --------------------------------------------------------------------------------


async def test_login_by_any_verified_email_in_any_case_or_by_user_name(stack: dict[str, Any]) -> None:
    api = stack["api"]
    await add_email(stack)
    for login in (TAXPAYER["email"].upper(), "Shelby.Work@Example.org", "shelby"):
        async with api.client("198.51.100.9") as other:  # a new browser: the password, then a code
            answer = await other.post("/api/taxpayer/login", json={"login": login, "password": PASSWORD})
            assert answer.status_code == 202 and answer.json()["next"] == "login_code", (login, answer.text)
    async with api.client("198.51.100.9") as other:  # the older field still works
        answer = await other.post("/api/taxpayer/login", json={"username": "shelby", "password": PASSWORD})
        assert answer.status_code == 202
        neither = await other.post("/api/taxpayer/login", json={"password": PASSWORD})
        assert neither.status_code == 422
    async with api.client("198.51.100.10") as browser:
        done = await page_login(browser, "SHELBY.ONEIL@example.com", PASSWORD)
        assert done.status_code == 303 and done.headers["location"].startswith("/portal/login/code")


async def test_an_unknown_email_gets_the_same_password_step_and_the_same_refusal(
    stack: dict[str, Any],
) -> None:
    api = stack["api"]
    async with api.client("198.51.100.11") as browser:
        unknown = await page_login(browser, UNKNOWN, PASSWORD)
        known = await page_login(browser, TAXPAYER["email"], "a wrong password entirely")
        assert unknown.status_code == known.status_code == 401
        for answer in (unknown, known):
            assert "Wrong user name or password." in answer.text and 'name="password"' in answer.text
        malformed = await browser.post(
            "/portal/login/continue",
            data={"csrf_token": csrf_of(await browser.get("/portal/login")), "login": "a b"},
        )
        assert malformed.status_code == 422 and "Enter your email address or user name." in malformed.text
    async with api.client("198.51.100.12") as client:
        one = await client.post("/api/taxpayer/login", json={"login": UNKNOWN, "password": PASSWORD})
        two = await client.post(
            "/api/taxpayer/login", json={"login": TAXPAYER["email"], "password": "wrong!!"}
        )
        assert one.status_code == two.status_code == 401 and one.json() == two.json()


async def test_the_per_account_throttle_counts_email_and_user_name_as_one(stack: dict[str, Any]) -> None:
    api, resources = stack["api"], stack["resources"]
    async with api.client("198.51.100.13") as attacker:
        for i in range(throttle.ACCOUNT.free):
            login = TAXPAYER["email"].upper() if i % 2 else "shelby"
            wrong = await attacker.post(
                "/api/taxpayer/login", json={"login": login, "password": f"guess {i}"}
            )
            assert wrong.status_code == 401
        # Five wrong passwords, by email and by user name alternately, are five for the one account.
        with Session(resources.engine) as db:
            counts = {
                key: db.get(ThrottleState, ("taxpayer-login:account", throttle.key_hash(key)))
                for key in ("shelby", TAXPAYER["email"])
            }
        held_back = counts["shelby"]
        assert held_back is not None and held_back.attempts == throttle.ACCOUNT.free
        assert counts[TAXPAYER["email"]] is None
        waits_until = held_back.next_allowed_at
        assert waits_until is not None and waits_until > held_back.last_attempt_at  # either way, it waits
        # Another account's count is its own: an unknown address is not held back by the victim's.
        other = await attacker.post("/api/taxpayer/login", json={"login": UNKNOWN, "password": PASSWORD})
        assert other.status_code == 401


# ---- another email -------------------------------------------------------------------------------------


async def test_add_an_email_with_a_code_and_an_invitation_to_it_finds_the_account(
    stack: dict[str, Any],
) -> None:
    resources, preparer, taxpayer = stack["resources"], stack["preparer"], stack["taxpayer"]
    await add_email(stack)
    with Session(resources.engine) as db:
        row = db.exec(select(AccountEmail).where(AccountEmail.email == ADDED)).one()
        assert row.verified_at is not None
    notice = await messages_to(preparer, "email_added", TAXPAYER["email"])
    assert len(notice) == 1 and "If this wasn't you" in notice[0]["body"]
    assert not await messages_to(preparer, "email_added", ADDED)
    assert audited(resources, "account.email_added") == 1
    listed = (await taxpayer.get("/api/taxpayer/account/security")).json()
    assert [(e["email"], e["primary"]) for e in listed["emails"]] == [
        (TAXPAYER["email"], True),
        (ADDED, False),
    ]
    # Next year's invitation goes to the added address (and another phone): it names this account.
    other = {**TAXPAYER, "email": ADDED, "phone": "+1 702 555 0166"}
    _, token = await invite_by_email(preparer, other, tax_year=2026)
    with Session(resources.engine) as db:
        found = returning_clients.account_for_invitation(db, read_invitation(db, resources, token))
        assert found is not None and found.username == "shelby"
    shown = (await taxpayer.get(f"/api/invitations/{token}")).json()
    assert shown["has_account"] is True


async def test_remove_an_email_but_never_the_last(stack: dict[str, Any]) -> None:
    resources, preparer, taxpayer = stack["resources"], stack["preparer"], stack["taxpayer"]
    emails = (await taxpayer.get("/api/taxpayer/account/security")).json()["emails"]
    assert len(emails) == 1
    last = await taxpayer.delete(f"/api/taxpayer/account/emails/{emails[0]['id']}")
    assert last.status_code == 409 and "only email address" in last.json()["detail"]
    await add_email(stack)
    # Removing the primary address makes the added one primary: messages and sign-in follow.
    page = await taxpayer.get("/portal/account")
    gone = await taxpayer.post(
        f"/portal/account/emails/{emails[0]['id']}/remove", data={"csrf_token": csrf_of(page)}
    )
    assert gone.status_code == 303 and gone.headers["location"] == "/portal/account?m=email-removed"
    with Session(resources.engine) as db:
        account = db.exec(select(TaxpayerAccount)).one()
        assert account.email == ADDED
    assert await messages_to(preparer, "email_removed", TAXPAYER["email"])
    assert audited(resources, "account.email_removed") == 1
    async with stack["api"].client("198.51.100.14") as other:
        old = await other.post("/api/taxpayer/login", json={"login": TAXPAYER["email"], "password": PASSWORD})
        assert old.status_code == 401
        new = await other.post("/api/taxpayer/login", json={"login": ADDED, "password": PASSWORD})
        assert new.status_code == 202
    left = (await taxpayer.get("/api/taxpayer/account/security")).json()["emails"]
    assert [e["email"] for e in left] == [ADDED]
    again = await taxpayer.delete(f"/api/taxpayer/account/emails/{left[0]['id']}")
    assert again.status_code == 409


# ---- sessions and remembered browsers ----------------------------------------------------------------------


async def test_list_and_end_another_session_and_forget_a_browser(stack: dict[str, Any]) -> None:
    api, resources, preparer, taxpayer = (
        stack["api"],
        stack["resources"],
        stack["preparer"],
        stack["taxpayer"],
    )
    laptop = api.client("198.51.100.20")
    for name, value in taxpayer.cookies.items():  # the remembered browser's cookie: no code needed
        if "device" in name:
            laptop.cookies.set(name, value, domain="portico.test")
    assert (
        await laptop.post("/api/taxpayer/login", json={"login": "shelby", "password": PASSWORD})
    ).status_code == 200
    listed = (await taxpayer.get("/api/taxpayer/account/security")).json()
    assert len(listed["sessions"]) == 2 and [s["this_browser"] for s in listed["sessions"]].count(True) == 1
    mine = next(s for s in listed["sessions"] if s["this_browser"])
    theirs = next(s for s in listed["sessions"] if not s["this_browser"])
    assert theirs["ip"] == "198.51.100.20"
    assert len(listed["devices"]) == 1 and listed["devices"][0]["this_browser"]
    page = await taxpayer.get("/portal/account")
    assert "This browser" in page.text and "Where you're logged in" in page.text
    assert (await taxpayer.delete(f"/api/taxpayer/account/sessions/{mine['ref']}")).status_code == 409

    ended = await taxpayer.post(
        f"/portal/account/sessions/{theirs['ref']}/end", data={"csrf_token": csrf_of(page)}
    )
    assert ended.status_code == 303 and ended.headers["location"] == "/portal/account?m=session-ended"
    assert (await laptop.get("/api/taxpayer/me")).status_code == 401
    assert (await taxpayer.get("/api/taxpayer/me")).status_code == 200
    assert await messages_to(preparer, "session_ended", TAXPAYER["email"])
    assert audited(resources, "account.session_ended") == 1

    device = listed["devices"][0]["ref"]
    forgot = await taxpayer.post(
        f"/portal/account/devices/{device}/forget", data={"csrf_token": csrf_of(page)}
    )
    assert forgot.status_code == 303 and forgot.headers["location"] == "/portal/account?m=device-forgotten"
    with Session(resources.engine) as db:
        assert db.exec(select(TrustedDevice)).all() == []
    again = await laptop.post("/api/taxpayer/login", json={"login": "shelby", "password": PASSWORD})
    assert again.status_code == 202  # the browser is no longer remembered: a code again
    assert await messages_to(preparer, "device_forgotten", TAXPAYER["email"])
    assert audited(resources, "account.device_forgotten") == 1
    await laptop.aclose()


async def test_another_accounts_ids_are_refused_and_left_alone(stack: dict[str, Any]) -> None:
    api, resources, preparer, taxpayer = (
        stack["api"],
        stack["resources"],
        stack["preparer"],
        stack["taxpayer"],
    )
    listed = (await taxpayer.get("/api/taxpayer/account/security")).json()
    victim = {
        "email": listed["emails"][0]["id"],
        "session": listed["sessions"][0]["ref"],
        "device": listed["devices"][0]["ref"],
    }
    # A second client of the same firm, verified, with a session of their own.
    other_person = {
        **TAXPAYER,
        "first_name": "Morgan",
        "email": "morgan@example.net",
        "phone": "+1 702 555 0111",
    }
    _, token = await invite_by_email(preparer, other_person, tax_year=2025)
    async with api.client("203.0.113.5") as mallory:
        person = Person(mallory, other_person)
        registration = {**person.registration(), "username": "morgan"}
        assert (
            await mallory.post(f"/api/invitations/{token}/register", json=registration)
        ).status_code == 201
        assert (await mallory.post("/api/taxpayer/code", json={"channel": "email"})).status_code == 200
        code = code_in(await latest(preparer, "code", other_person["email"]))
        assert (await mallory.post("/api/taxpayer/verify", json={"code": code})).status_code == 200
        page = await mallory.get("/portal/account")
        csrf = {"csrf_token": csrf_of(page)}
        calls = [
            mallory.delete(f"/api/taxpayer/account/emails/{victim['email']}"),
            mallory.delete(f"/api/taxpayer/account/sessions/{victim['session']}"),
            mallory.delete(f"/api/taxpayer/account/devices/{victim['device']}"),
            mallory.post(f"/portal/account/emails/{victim['email']}/remove", data=csrf),
            mallory.post(f"/portal/account/sessions/{victim['session']}/end", data=csrf),
            mallory.post(f"/portal/account/devices/{victim['device']}/forget", data=csrf),
        ]
        for call in calls:
            answer = await call
            assert answer.status_code == 404, answer.text
            assert TAXPAYER["email"] not in answer.text
    with Session(resources.engine) as db:
        shelby = db.exec(select(TaxpayerAccount).where(TaxpayerAccount.username == "shelby")).one()
        assert db.exec(select(AccountEmail).where(AccountEmail.account_id == shelby.id)).all()
        assert db.exec(select(TrustedDevice).where(TrustedDevice.account_id == shelby.id)).all()
        assert db.exec(
            select(WebSession).where(WebSession.kind == "taxpayer", WebSession.subject_id == shelby.id)
        ).all()
    assert (await taxpayer.get("/api/taxpayer/me")).status_code == 200
    for action in ("email_removed", "session_ended", "device_forgotten"):
        assert audited(resources, f"account.{action}") == 0
