"""A person who forgot their password resets it with a code sent to their verified email or phone, through
the JSON API and the pages: an unknown login gets the same answer (and no message), the code is bound to the
browser that asked and locks after five wrong tries, the new password meets the rules, and a reset ends
every session and remembered browser of the account and tells its owner.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from invitation_steps import invited_taxpayer
from journey import PASSWORD, TAXPAYER, Person, code_in, latest
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from core import throttle
from core.config import Settings
from core.context import Resources
from core.models import AuditEntry, OutboxMessage, TaxpayerAccount, TrustedDevice, WebSession
from core.passwords import verify_password

pytestmark = pytest.mark.e2e
NEW_PASSWORD = "a brand new passphrase 2026"
PHONE_E164 = "+17025550197"
RESET = "/api/taxpayer/password-reset"
CONFIRM = "/api/taxpayer/password-reset/confirm"
NEUTRAL = "If an account uses this, we sent a code"


@pytest.fixture
async def stack(
    db_settings: Settings, api: Any, dev_server: WorkflowEnvironment
) -> AsyncIterator[dict[str, Any]]:
    """A verified taxpayer logged in on a remembered browser, and the preparer reading the dev outbox."""
    async with invited_taxpayer(api, db_settings, dev_server) as invited:
        taxpayer = api.client("198.51.100.2")
        person = Person(taxpayer, TAXPAYER)
        registered = await taxpayer.post(
            f"/api/invitations/{invited.token}/register", json=person.registration()
        )
        assert registered.status_code == 201, registered.text
        assert (await taxpayer.post("/api/taxpayer/code", json={"channel": "email"})).status_code == 200
        code = code_in(await latest(invited.preparer, "code", TAXPAYER["email"]))
        verified = await taxpayer.post("/api/taxpayer/verify", json={"code": code, "remember_device": True})
        assert verified.status_code == 200, verified.text
        yield {"api": api, "resources": invited.resources, "preparer": invited.preparer, "taxpayer": taxpayer}
        await taxpayer.aclose()


async def reset_messages(
    preparer: httpx.AsyncClient, purpose: str = "password_reset_code"
) -> list[dict[str, Any]]:
    return [m for m in (await preparer.get("/api/dev/outbox")).json() if m["purpose"] == purpose]


def reset_cookie(http: httpx.AsyncClient) -> str | None:
    return next((value for name, value in http.cookies.items() if "portico_reset" in name), None)


def audit_entries(resources: Resources, prefix: str = "account.password_reset") -> list[tuple[str, str]]:
    with Session(resources.engine) as db:
        rows = db.exec(select(AuditEntry).order_by(AuditEntry.id)).all()  # type: ignore[arg-type]
    return [(e.action, e.detail) for e in rows if e.action.startswith(prefix)]


async def ask(http: httpx.AsyncClient, login: str, channel: str = "email") -> httpx.Response:
    response = await http.post(RESET, json={"login": login, "channel": channel})
    assert response.status_code == 200, response.text
    return response


# ---- asking for a code --------------------------------------------------------------------------------


async def test_an_unknown_login_gets_the_same_answer_and_no_message(stack: dict[str, Any]) -> None:
    api, preparer = stack["api"], stack["preparer"]
    async with api.client("198.51.100.3") as stranger, api.client("198.51.100.4") as owner:
        unknown = await ask(stranger, "nobody.here@example.com")
        assert await reset_messages(preparer) == []
        known = await ask(owner, "Shelby.ONeil@Example.com")  # the account's email, in any case
        assert (
            unknown.json()
            == known.json()
            == {"message": f"{NEUTRAL} to its email address. It expires in 10 minutes."}
        )
        assert sorted(unknown.headers) == sorted(known.headers)  # the same shape: a reset cookie for both
        assert reset_cookie(stranger) and reset_cookie(owner)
        [sent] = await reset_messages(preparer)
        assert sent["destination"] == TAXPAYER["email"] and "password reset code" in sent["body"]
        assert "Lovelace Tax" in sent["subject"]  # in the firm's name

        by_text = await ask(owner, "(702) 555-0197", channel="sms")  # the phone, as people write it
        assert "phone by text message" in by_text.json()["message"]
        assert [m["destination"] for m in await reset_messages(preparer)].count(PHONE_E164) == 1
    outcomes = [json.loads(detail) for action, detail in audit_entries(stack["resources"])]
    assert {"reason": "no account"} in outcomes
    assert {"channel": "email", "to": "she*****com"} in outcomes and {
        "channel": "sms",
        "to": "70*****97",
    } in outcomes


async def test_an_unverified_account_gets_no_code(
    db_settings: Settings, api: Any, dev_server: WorkflowEnvironment
) -> None:
    async with (
        invited_taxpayer(api, db_settings, dev_server) as invited,
        api.client("198.51.100.2") as taxpayer,
    ):
        registered = await taxpayer.post(
            f"/api/invitations/{invited.token}/register", json=Person(taxpayer, TAXPAYER).registration()
        )
        assert registered.status_code == 201
        await ask(taxpayer, "shelby")
        assert await reset_messages(invited.preparer) == []
        assert [json.loads(d) for _, d in audit_entries(invited.resources)] == [{"reason": "not verified"}]


# ---- the code -----------------------------------------------------------------------------------------


async def test_wrong_codes_count_and_the_sixth_is_locked_for_known_and_unknown_alike(
    stack: dict[str, Any],
) -> None:
    api, preparer = stack["api"], stack["preparer"]
    answers: dict[str, list[tuple[int, str]]] = {}
    for login, ip in (("shelby", "198.51.100.3"), ("nobody", "198.51.100.4")):
        async with api.client(ip) as browser:
            await ask(browser, login)
            tries = []
            for _ in range(6):
                wrong = await browser.post(CONFIRM, json={"code": "000000", "new_password": NEW_PASSWORD})
                tries.append((wrong.status_code, wrong.json()["detail"]))
            answers[login] = tries
            if login == "shelby":  # the right code is locked out too
                code = code_in(await latest(preparer, "password_reset_code", TAXPAYER["email"]))
                right = await browser.post(CONFIRM, json={"code": code, "new_password": NEW_PASSWORD})
                assert right.status_code == 423, right.text
    assert answers["shelby"] == answers["nobody"]  # trying codes says nothing about the account
    assert answers["shelby"][:4] == [
        (422, f"That code is not right. {n} {'try' if n == 1 else 'tries'} left.") for n in (4, 3, 2, 1)
    ]
    assert [status for status, _ in answers["shelby"][4:]] == [423, 423]
    assert "Too many wrong codes" in answers["shelby"][5][1]
    with Session(stack["resources"].engine) as db:
        account = db.exec(select(TaxpayerAccount)).one()
        assert verify_password(account.password_hash, PASSWORD)
    async with api.client("198.51.100.5") as new_browser:  # reset codes are a book of their own:
        login = await new_browser.post(
            "/api/taxpayer/login", json={"username": "shelby", "password": PASSWORD}
        )
        assert login.status_code == 202  # their lock does not lock the login codes
        login_code = await new_browser.post("/api/taxpayer/login/code", json={"channel": "email"})
        assert login_code.status_code == 200, login_code.text


async def test_a_code_from_another_browser_is_refused(stack: dict[str, Any]) -> None:
    api, preparer = stack["api"], stack["preparer"]
    async with api.client("198.51.100.3") as asked, api.client("198.51.100.4") as other:
        await ask(asked, "shelby")
        code = code_in(await latest(preparer, "password_reset_code", TAXPAYER["email"]))
        no_attempt = await other.post(CONFIRM, json={"code": code, "new_password": NEW_PASSWORD})
        assert no_attempt.status_code == 422 and no_attempt.json()["detail"] == "Ask for a code first."
        await ask(other, "shelby")  # its own attempt: a code of its own, which is not the first one
        before = len(await reset_messages(preparer))
        assert before == 2
        elsewhere = await other.post(CONFIRM, json={"code": code, "new_password": NEW_PASSWORD})
        assert elsewhere.status_code == 422 and "That code is not right" in elsewhere.json()["detail"]
        here = await asked.post(CONFIRM, json={"code": code, "new_password": NEW_PASSWORD})
        assert here.status_code == 200, here.text
        again = await asked.post(CONFIRM, json={"code": code, "new_password": NEW_PASSWORD})
        assert again.status_code == 422  # used, and the attempt's cookie is gone
        assert reset_cookie(asked) is None


async def test_a_weak_new_password_is_refused_and_the_code_still_works(stack: dict[str, Any]) -> None:
    api, preparer, resources = stack["api"], stack["preparer"], stack["resources"]
    async with api.client("198.51.100.3") as browser:
        await ask(browser, "shelby")
        code = code_in(await latest(preparer, "password_reset_code", TAXPAYER["email"]))
        common = await browser.post(CONFIRM, json={"code": code, "new_password": "password123"})
        assert common.status_code == 422 and "too common" in common.json()["detail"]
        short = await browser.post(CONFIRM, json={"code": code, "new_password": "short"})
        assert short.status_code == 422 and "at least 8 characters" in short.json()["detail"]
        own_email = await browser.post(CONFIRM, json={"code": code, "new_password": TAXPAYER["email"]})
        assert own_email.status_code == 422 and "user name or email" in own_email.json()["detail"]
        with Session(resources.engine) as db:
            assert verify_password(db.exec(select(TaxpayerAccount)).one().password_hash, PASSWORD)
        ok = await browser.post(CONFIRM, json={"code": code, "new_password": NEW_PASSWORD})
        assert ok.status_code == 200, ok.text
    reasons = [
        json.loads(d)["reason"] for a, d in audit_entries(resources) if a == "account.password_reset_refused"
    ]
    assert reasons == ["rules", "rules", "rules"]


# ---- the reset ----------------------------------------------------------------------------------------


async def test_a_reset_ends_every_session_and_remembered_browser_and_tells_the_owner(
    stack: dict[str, Any],
) -> None:
    api, preparer, resources, taxpayer = (
        stack["api"],
        stack["preparer"],
        stack["resources"],
        stack["taxpayer"],
    )
    assert (await taxpayer.get("/api/taxpayer/me")).status_code == 200
    async with api.client("198.51.100.3") as browser:
        await ask(browser, "SHELBY")
        code = code_in(await latest(preparer, "password_reset_code", TAXPAYER["email"]))
        done = await browser.post(CONFIRM, json={"code": code, "new_password": NEW_PASSWORD})
        assert done.status_code == 200 and "Log in with your new password" in done.json()["message"]
        assert reset_cookie(browser) is None

    assert (await taxpayer.get("/api/taxpayer/me")).status_code == 401  # the old session ended
    with Session(resources.engine) as db:
        assert db.exec(select(TrustedDevice)).all() == []
        assert db.exec(select(WebSession).where(WebSession.kind == "taxpayer")).all() == []
    old = await taxpayer.post("/api/taxpayer/login", json={"username": "shelby", "password": PASSWORD})
    assert old.status_code == 401
    new = await taxpayer.post("/api/taxpayer/login", json={"username": "shelby", "password": NEW_PASSWORD})
    assert new.status_code == 202, new.text  # the remembered browser is forgotten: a login code again
    assert new.json()["next"] == "login_code"

    notices = await reset_messages(preparer, "password_reset_done")
    assert sorted(n["destination"] for n in notices) == sorted([TAXPAYER["email"], PHONE_E164])
    assert all("If this wasn't you, contact your preparer" in n["body"] for n in notices)
    entries = audit_entries(resources)
    assert [a for a, _ in entries] == [
        "account.password_reset_code_sent",
        "account.password_reset",
        "account.password_reset_notice",
        "account.password_reset_notice",
    ]
    assert json.loads(entries[1][1]) == {"sessions_ended": 1}
    logged = json.dumps(entries)
    assert code not in logged and NEW_PASSWORD not in logged  # never the code or the password
    with Session(resources.engine) as db:
        outbox = db.exec(select(OutboxMessage).where(OutboxMessage.purpose == "password_reset_code")).all()
        assert [m.engagement_id for m in outbox] != [None]  # filed under the return, in the firm's name


async def test_asking_is_throttled_per_ip_and_per_login(stack: dict[str, Any], monkeypatch: Any) -> None:
    api = stack["api"]
    frozen = throttle.utcnow()
    monkeypatch.setattr(throttle, "utcnow", lambda: frozen)  # waits are exact, however slow the machine
    async with api.client("198.51.100.5") as one_place:
        for n in range(throttle.IP.free):
            assert (await one_place.post(RESET, json={"login": f"someone{n}"})).status_code == 200
        refused = await one_place.post(RESET, json={"login": "someone else"})
        assert refused.status_code == 429 and "Too many attempts" in refused.json()["detail"]
        assert int(refused.headers["retry-after"]) >= 1
    for n in range(throttle.ACCOUNT.free):
        async with api.client(f"198.51.100.{10 + n}") as place:
            assert (await place.post(RESET, json={"login": "Shelby"})).status_code == 200
    async with api.client("198.51.100.30") as elsewhere:
        same_login = await elsewhere.post(RESET, json={"login": "shelby"})
        assert same_login.status_code == 429
        unknown_login = await elsewhere.post(RESET, json={"login": "nobody"})
        assert unknown_login.status_code == 200


# ---- the pages ----------------------------------------------------------------------------------------


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


async def test_the_pages_reset_a_password_with_csrf(stack: dict[str, Any]) -> None:
    api, preparer = stack["api"], stack["preparer"]
    async with api.client("198.51.100.3") as browser:
        login_page = await browser.get("/portal/login")
        assert (
            'href="/portal/password-reset"' in login_page.text and "Forgot your password?" in login_page.text
        )
        form = await browser.get("/portal/password-reset")
        forged = await browser.post("/portal/password-reset", data={"login": "shelby"})
        assert forged.status_code == 403
        token = csrf_of(form.text)
        asked = await browser.post("/portal/password-reset", data={"login": "shelby", "csrf_token": token})
        assert (
            asked.status_code == 303 and asked.headers["location"] == "/portal/password-reset/code?by=email"
        )
        page = await browser.get(asked.headers["location"])
        assert "If an account uses this, we sent a code to its email address." in page.text
        code = code_in(await latest(preparer, "password_reset_code", TAXPAYER["email"]))

        action = "/portal/password-reset/code?by=email"
        weak = await browser.post(
            action, data={"code": code, "new_password": "password123", "csrf_token": token}
        )
        assert weak.status_code == 422 and "too common" in weak.text
        wrong = await browser.post(
            action, data={"code": "111111", "new_password": NEW_PASSWORD, "csrf_token": token}
        )
        assert wrong.status_code == 422 and "That code is not right. 4 tries left." in wrong.text
        done = await browser.post(
            action, data={"code": code, "new_password": NEW_PASSWORD, "csrf_token": token}
        )
        assert done.status_code == 303 and done.headers["location"] == "/portal/password-reset/done"
        notice = await browser.get("/portal/password-reset/done")
        assert "Your password is reset. Log in with your new password." in notice.text
        logged_in = await browser.post(
            "/portal/login", data={"username": "shelby", "password": NEW_PASSWORD, "csrf_token": token}
        )
        assert logged_in.status_code == 303 and logged_in.headers["location"].startswith("/portal/login/code")
