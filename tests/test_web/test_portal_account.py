"""A signed-in taxpayer changes their password, email address and phone number, through the JSON API and
the Account page: the current password is asked again (and counted by the login throttle), a new address is
proven with a code sent to it, the old address is told, and messages — reminders included — go to the new one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from invitation_steps import invite_by_email, invited_taxpayer
from journey import PASSWORD, SPOUSE, TAXPAYER, Person, code_in, latest
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from activities.engagement import EngagementActivities
from activities.types import MessageRequest
from core import throttle
from core.config import Settings
from core.context import Resources
from core.models import (
    AuditEntry,
    LoginCode,
    OutboxMessage,
    Signer,
    TaxpayerAccount,
    TrustedDevice,
    WebSession,
)
from core.passwords import verify_password
from esign import records
from services import cookies

pytestmark = pytest.mark.e2e
NEW_PASSWORD = "a brand new passphrase 2026"
NEW_EMAIL = "shelby.new@example.org"
NEW_PHONE = "+1 702 555 0123"
NEW_PHONE_E164 = "+17025550123"
OLD_PHONE_E164 = "+17025550197"


@pytest.fixture
async def stack(
    db_settings: Settings, api: Any, dev_server: WorkflowEnvironment
) -> AsyncIterator[dict[str, Any]]:
    """A verified taxpayer (API session) and the preparer reading the dev outbox."""
    async with invited_taxpayer(api, db_settings, dev_server) as invited:
        preparer = invited.preparer
        taxpayer = api.client("198.51.100.2")
        person = Person(taxpayer, TAXPAYER)
        assert (
            await taxpayer.post(f"/api/invitations/{invited.token}/register", json=person.registration())
        ).status_code == 201
        assert (await taxpayer.post("/api/taxpayer/code", json={"channel": "email"})).status_code == 200
        code = code_in(await latest(preparer, "code", TAXPAYER["email"]))
        # This browser is remembered: a second session of the account logs in without a code.
        assert (
            await taxpayer.post("/api/taxpayer/verify", json={"code": code, "remember_device": True})
        ).status_code == 200
        yield {
            "api": api,
            "resources": invited.resources,
            "preparer": preparer,
            "taxpayer": taxpayer,
            "eid": invited.engagement_id,
        }
        await taxpayer.aclose()


def actions(resources: Resources) -> list[str]:
    with Session(resources.engine) as db:
        return [e.action for e in db.exec(select(AuditEntry).order_by(AuditEntry.id)).all()]  # type: ignore[arg-type]


async def messages_to(preparer: httpx.AsyncClient, purpose: str, destination: str) -> list[dict[str, Any]]:
    listed = (await preparer.get("/api/dev/outbox")).json()
    return [m for m in listed if m["purpose"] == purpose and m["destination"] == destination]


# ---- password ----------------------------------------------------------------------------------------


async def test_password_change_through_the_api(stack: dict[str, Any]) -> None:
    api, resources, preparer, taxpayer = (
        stack["api"],
        stack["resources"],
        stack["preparer"],
        stack["taxpayer"],
    )
    url = "/api/taxpayer/account/password"
    async with api.client("198.51.100.3") as laptop:  # a second session of the same account
        for name, value in taxpayer.cookies.items():  # the remembered device: logs in without a code
            if "device" in name:
                laptop.cookies.set(name, value, domain="portico.test")
        logged_in = await laptop.post(
            "/api/taxpayer/login", json={"username": "shelby", "password": PASSWORD}
        )
        assert logged_in.status_code == 200, logged_in.text
        assert (await laptop.get("/api/taxpayer/me")).status_code == 200

        wrong = await taxpayer.post(url, json={"current_password": "not it", "new_password": NEW_PASSWORD})
        assert wrong.status_code == 403 and wrong.json()["detail"] == "That is not your current password."
        common = await taxpayer.post(url, json={"current_password": PASSWORD, "new_password": "password123"})
        assert common.status_code == 422 and "too common" in common.json()["detail"]
        short = await taxpayer.post(url, json={"current_password": PASSWORD, "new_password": "short"})
        assert short.status_code == 422 and "at least 8 characters" in short.json()["detail"]
        same = await taxpayer.post(url, json={"current_password": PASSWORD, "new_password": PASSWORD})
        assert same.status_code == 422 and "different" in same.json()["detail"]
        with Session(resources.engine) as db:  # nothing changed so far
            account = db.exec(select(TaxpayerAccount)).one()
            assert verify_password(account.password_hash, PASSWORD)

        before = dict(taxpayer.cookies)
        ok = await taxpayer.post(url, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
        assert ok.status_code == 200, ok.text
        assert dict(taxpayer.cookies) != before  # a new session id for this browser
        assert (await taxpayer.get("/api/taxpayer/me")).status_code == 200
        assert (await laptop.get("/api/taxpayer/me")).status_code == 401  # every other session ended

    with Session(resources.engine) as db:
        account = db.exec(select(TaxpayerAccount)).one()
        assert account.password_hash.startswith("$argon2id$") and verify_password(
            account.password_hash, NEW_PASSWORD
        )
        assert len(db.exec(select(WebSession).where(WebSession.kind == "taxpayer")).all()) == 1
    async with api.client("198.51.100.4") as other:
        old = await other.post("/api/taxpayer/login", json={"username": "shelby", "password": PASSWORD})
        assert old.status_code == 401
        new = await other.post("/api/taxpayer/login", json={"username": "shelby", "password": NEW_PASSWORD})
        assert new.status_code in (200, 202), new.text

    notices = await messages_to(preparer, "password_changed", TAXPAYER["email"])
    assert len(notices) == 1 and "If this wasn't you, contact your preparer" in notices[0]["body"]
    done = actions(resources)
    assert done.count("account.change_refused") == 4 and "account.password_changed" in done
    assert "account.change_notice" in done


async def test_wrong_current_passwords_share_the_login_throttle(
    stack: dict[str, Any], monkeypatch: Any
) -> None:
    api, taxpayer = stack["api"], stack["taxpayer"]
    frozen = throttle.utcnow()
    monkeypatch.setattr(throttle, "utcnow", lambda: frozen)  # waits are exact, however slow the machine
    url = "/api/taxpayer/account/contact/code"
    body = {"kind": "email", "value": NEW_EMAIL, "current_password": "guess"}
    answers = [(await taxpayer.post(url, json=body)).status_code for _ in range(throttle.ACCOUNT.free)]
    assert answers == [403] * throttle.ACCOUNT.free
    # The next try waits, even with the right password, here and on the login form alike.
    right = await taxpayer.post(url, json={**body, "current_password": PASSWORD})
    assert right.status_code == 429 and "Too many attempts" in right.json()["detail"]
    assert int(right.headers["retry-after"]) >= 1
    async with api.client("192.0.2.10") as elsewhere:
        login = await elsewhere.post("/api/taxpayer/login", json={"username": "shelby", "password": PASSWORD})
        assert login.status_code == 429
    assert (await messages_to(stack["preparer"], "contact_code", NEW_EMAIL)) == []
    with Session(stack["resources"].engine) as db:
        refused = db.exec(select(AuditEntry).where(AuditEntry.action == "account.change_refused")).all()
        assert {json.loads(e.detail)["reason"] for e in refused} == {"wrong password", "throttled"}


# ---- email and phone ---------------------------------------------------------------------------------


async def test_email_change_is_proven_by_a_code_and_reminders_follow(stack: dict[str, Any]) -> None:
    resources, preparer, taxpayer = stack["resources"], stack["preparer"], stack["taxpayer"]
    start = "/api/taxpayer/account/contact/code"
    finish = "/api/taxpayer/account/contact"
    bad = await taxpayer.post(
        start, json={"kind": "email", "value": "not an address", "current_password": PASSWORD}
    )
    assert bad.status_code == 422 and bad.json()["detail"] == "Enter an email address."
    same = await taxpayer.post(
        start, json={"kind": "email", "value": TAXPAYER["email"].upper(), "current_password": PASSWORD}
    )
    assert same.status_code == 422 and "already your email address" in same.json()["detail"]
    early = await taxpayer.post(finish, json={"kind": "email", "value": NEW_EMAIL, "code": "123456"})
    assert early.status_code == 422 and early.json()["detail"] == "Ask for a code first."

    sent = await taxpayer.post(
        start, json={"kind": "email", "value": NEW_EMAIL, "current_password": PASSWORD}
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["message"] == "Code sent to she*****org."
    code = code_in((await messages_to(preparer, "contact_code", NEW_EMAIL))[0])
    # Nothing changes before the code comes back; a code for one address does not prove another.
    with Session(resources.engine) as db:
        assert db.exec(select(Signer)).one().email == TAXPAYER["email"]
    other = await taxpayer.post(finish, json={"kind": "email", "value": "someone@else.example", "code": code})
    assert other.status_code == 422 and "not right" in other.json()["detail"]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    miss = await taxpayer.post(finish, json={"kind": "email", "value": NEW_EMAIL, "code": wrong})
    assert miss.status_code == 422 and "3 tries left" in miss.json()["detail"]
    with Session(resources.engine) as db:  # the code belongs to the session that asked for it
        row = db.exec(select(LoginCode)).one()
        assert row.attempt_hash.startswith("change:") and row.channel == "email"

    ok = await taxpayer.post(finish, json={"kind": "email", "value": f" {NEW_EMAIL.upper()} ", "code": code})
    assert ok.status_code == 200, ok.text
    again = await taxpayer.post(finish, json={"kind": "email", "value": NEW_EMAIL, "code": code})
    assert again.status_code == 422  # single use

    with Session(resources.engine) as db:
        assert db.exec(select(Signer)).one().email == NEW_EMAIL
        assert db.exec(select(TaxpayerAccount)).one().email == NEW_EMAIL
    notice = await messages_to(preparer, "email_changed", TAXPAYER["email"])
    assert len(notice) == 1 and "contact your preparer" in notice[0]["body"]
    me = (await taxpayer.get("/api/taxpayer/me")).json()
    assert [c["masked"] for c in me["channels"] if c["channel"] == "email"] == ["she*****org"]

    # The workflow's reminders go through the send_message activity, which reads the contact when it sends.
    activities = EngagementActivities(resources, None, {})  # type: ignore[arg-type]
    request = MessageRequest(
        idempotency_key="test:signature_reminder:1",
        engagement_id=stack["eid"],
        recipient="taxpayer",
        channel="email",
        purpose="signature_reminder",
        reminder_number=1,
    )
    await asyncio.to_thread(activities.send_message, request)
    with Session(resources.engine) as db:
        reminder = db.exec(
            select(OutboxMessage).where(OutboxMessage.idempotency_key == "test:signature_reminder:1")
        ).one()
        assert reminder.destination == NEW_EMAIL
    done = actions(resources)
    assert "account.contact_code_sent" in done and "account.email_changed" in done


async def test_phone_change_texts_the_new_number_and_tells_the_old_one(stack: dict[str, Any]) -> None:
    resources, preparer, taxpayer = stack["resources"], stack["preparer"], stack["taxpayer"]
    sent = await taxpayer.post(
        "/api/taxpayer/account/contact/code",
        json={"kind": "phone", "value": NEW_PHONE, "current_password": PASSWORD},
    )
    assert sent.status_code == 200 and sent.json()["message"] == "Code sent to 70*****23."
    code = code_in((await messages_to(preparer, "contact_code", NEW_PHONE_E164))[0])
    ok = await taxpayer.post(
        "/api/taxpayer/account/contact", json={"kind": "phone", "value": "(702) 555-0123", "code": code}
    )
    assert ok.status_code == 200, ok.text
    with Session(resources.engine) as db:
        assert db.exec(select(Signer)).one().phone == NEW_PHONE_E164
    assert len(await messages_to(preparer, "phone_changed", OLD_PHONE_E164)) == 1


async def change_contact(stack: dict[str, Any], kind: str, value: str, destination: str) -> None:
    """The whole change through the API: password and code request, the code from the outbox, confirm."""
    preparer, taxpayer = stack["preparer"], stack["taxpayer"]
    sent = await taxpayer.post(
        "/api/taxpayer/account/contact/code",
        json={"kind": kind, "value": value, "current_password": PASSWORD},
    )
    assert sent.status_code == 200, sent.text
    code = code_in((await messages_to(preparer, "contact_code", destination))[0])
    ok = await taxpayer.post(
        "/api/taxpayer/account/contact", json={"kind": kind, "value": value, "code": code}
    )
    assert ok.status_code == 200, ok.text


async def found_by(preparer: httpx.AsyncClient, search: str) -> list[int]:
    listing = await preparer.get("/api/engagements", params={"q": search})
    assert listing.status_code == 200, listing.text
    return [item["id"] for item in listing.json()["items"]]


async def test_the_dashboard_finds_a_taxpayer_by_a_new_email_and_phone(stack: dict[str, Any]) -> None:
    preparer, eid = stack["preparer"], stack["eid"]
    assert await found_by(preparer, NEW_EMAIL) == []
    assert await found_by(preparer, "702 555 0123") == []

    await change_contact(stack, "email", NEW_EMAIL, NEW_EMAIL)
    await change_contact(stack, "phone", NEW_PHONE, NEW_PHONE_E164)

    for search in (NEW_EMAIL, "Shelby.New@", "(702) 555-0123", "7025550123", "0123"):
        assert await found_by(preparer, search) == [eid], search
    # The address the preparer entered on the return still finds it.
    assert await found_by(preparer, TAXPAYER["email"]) == [eid]
    assert await found_by(preparer, "702 555 0197") == [eid]


async def test_the_signature_record_names_where_the_verification_code_went(stack: dict[str, Any]) -> None:
    """The code that verified the account went to the old address: the record says so after a change."""
    resources, eid = stack["resources"], stack["eid"]
    with Session(resources.engine) as db:  # registration kept the phone as E.164, not as typed
        assert db.exec(select(TaxpayerAccount)).one().phone == OLD_PHONE_E164
    await change_contact(stack, "email", NEW_EMAIL, NEW_EMAIL)

    with Session(resources.engine) as db:
        record = records.collect_record(db, resources.store, eid)
        # The record finds the verification code's outbox row by the workflow's idempotency key.
        [code_row] = db.exec(select(OutboxMessage).where(OutboxMessage.purpose == "code")).all()
        assert records.CODE_KEY.format(role="taxpayer") in code_row.idempotency_key
    [taxpayer] = record.signers
    assert taxpayer.masked_email == "she*****org"  # the address in use now
    assert "one-time code sent by email to she*****com," in taxpayer.authentication
    assert "she*****org" not in taxpayer.authentication
    changes = [e for e in taxpayer.authentication_events if e.action.startswith("account.")]
    assert [e.action for e in changes] == [
        "account.contact_code_sent",
        "account.email_changed",
        "account.change_notice",
    ]
    assert changes[1].detail == {"from": "she*****com", "to": "she*****org"}


# ---- the Account page ----------------------------------------------------------------------------------


def csrf_of(page: httpx.Response) -> str:
    return page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


async def test_account_page_changes_email_and_password(stack: dict[str, Any]) -> None:
    resources, preparer, taxpayer = stack["resources"], stack["preparer"], stack["taxpayer"]
    home = await taxpayer.get("/portal")
    assert 'href="/portal/account"' in home.text
    page = await taxpayer.get("/portal/account")
    assert page.status_code == 200 and TAXPAYER["email"] in page.text
    assert "<dd>(702) 555-0197</dd>" in page.text and OLD_PHONE_E164 not in page.text
    token = csrf_of(page)

    no_token = await taxpayer.post("/portal/account/password", data={"current_password": PASSWORD})
    assert no_token.status_code == 403
    wrong = await taxpayer.post(
        "/portal/account/contact/code",
        data={"csrf_token": token, "kind": "email", "value": NEW_EMAIL, "current_password": "nope"},
    )
    assert wrong.status_code == 403 and "That is not your current password." in wrong.text
    sent = await taxpayer.post(
        "/portal/account/contact/code",
        data={"csrf_token": token, "kind": "email", "value": NEW_EMAIL, "current_password": PASSWORD},
    )
    assert sent.status_code == 200 and "We sent a 6-digit code to she*****org" in sent.text
    code = code_in((await messages_to(preparer, "contact_code", NEW_EMAIL))[0])
    miss = await taxpayer.post(
        "/portal/account/contact",
        data={"csrf_token": token, "kind": "email", "value": NEW_EMAIL, "code": "12"},
    )
    assert miss.status_code == 422 and "Enter the 6-digit code." in miss.text and 'name="code"' in miss.text
    done = await taxpayer.post(
        "/portal/account/contact",
        data={"csrf_token": token, "kind": "email", "value": NEW_EMAIL, "code": code},
    )
    assert done.status_code == 303 and done.headers["location"] == "/portal/account?m=email-changed"
    shown = await taxpayer.get(done.headers["location"])
    assert "Your email address is changed" in shown.text and NEW_EMAIL in shown.text

    changed = await taxpayer.post(
        "/portal/account/password",
        data={"csrf_token": token, "current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 303 and changed.headers["location"] == "/portal/account?m=password-changed"
    assert (await taxpayer.get("/portal/account")).status_code == 200  # still logged in, on a new session id
    # The notice goes to the address in use now (the new email).
    assert len(await messages_to(preparer, "password_changed", NEW_EMAIL)) == 1
    bad_kind = await taxpayer.post(
        "/portal/account/contact/code",
        data={"csrf_token": token, "kind": "fax", "value": "1", "current_password": PASSWORD},
    )
    assert bad_kind.status_code == 404
    with Session(resources.engine) as db:
        assert verify_password(db.exec(select(TaxpayerAccount)).one().password_hash, NEW_PASSWORD)


async def test_item15_contact_codes_only_to_allowed_countries_and_capped_per_day(
    stack: dict[str, Any],
) -> None:
    """A new number gets a code only in the countries the firm allows (US and Canada by default; +1 alone
    is not enough: Jamaica shares it), and an account gets at most `contact_codes_per_day` codes a day."""
    resources, preparer, taxpayer = stack["resources"], stack["preparer"], stack["taxpayer"]
    url = "/api/taxpayer/account/contact/code"
    for abroad, e164 in (("+1 876 927 1234", "+18769271234"), ("+44 20 7946 0958", "+442079460958")):
        refused = await taxpayer.post(
            url, json={"kind": "phone", "value": abroad, "current_password": PASSWORD}
        )
        assert refused.status_code == 422 and "only to phone numbers in CA, US" in refused.text, refused.text
        assert await messages_to(preparer, "contact_code", e164) == []
    canada = await taxpayer.post(
        url, json={"kind": "phone", "value": "+1 416 979 1234", "current_password": PASSWORD}
    )
    assert canada.status_code == 200, canada.text

    resources.settings.code_resend_cooldown = timedelta(0)  # only the daily cap holds them back here
    resources.settings.contact_codes_per_day = 3
    answers = [
        (
            await taxpayer.post(
                url, json={"kind": "email", "value": f"new{n}@example.org", "current_password": PASSWORD}
            )
        ).status_code
        for n in range(4)
    ]
    assert answers == [200, 200, 429, 429], answers  # the Canadian code counted as the day's first


async def test_item12_password_change_ends_remembered_browsers(stack: dict[str, Any]) -> None:
    """The stack's browser was remembered at verification: after a password change no remembered browser
    skips the login code any more (whoever knew the old password may have remembered one)."""
    resources, taxpayer = stack["resources"], stack["taxpayer"]
    with Session(resources.engine) as db:
        assert db.exec(select(TrustedDevice)).all() != []
    changed = await taxpayer.post(
        "/api/taxpayer/account/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert changed.status_code == 200, changed.text
    with Session(resources.engine) as db:
        assert db.exec(select(TrustedDevice)).all() == []


async def test_item12_taxpayer_session_id_rotates_when_the_account_is_verified(
    db_settings: Settings, api: Any, dev_server: WorkflowEnvironment
) -> None:
    async with (
        invited_taxpayer(api, db_settings, dev_server) as invited,
        api.client("198.51.100.3") as browser,
    ):
        person = Person(browser, TAXPAYER)
        registered = await browser.post(
            f"/api/invitations/{invited.token}/register", json=person.registration()
        )
        assert registered.status_code == 201, registered.text
        name = cookies.name(invited.resources, cookies.SESSION)
        before = browser.cookies[name]
        assert (await browser.post("/api/taxpayer/code", json={"channel": "email"})).status_code == 200
        code = code_in(await latest(invited.preparer, "code", TAXPAYER["email"]))
        assert (await browser.post("/api/taxpayer/verify", json={"code": code})).status_code == 200
        after = browser.cookies[name]
        assert after != before  # a new id for the verified session
        assert (await browser.get("/api/taxpayer/me")).status_code == 200
        browser.cookies.set(name, before, domain="portico.test")
        assert (await browser.get("/api/taxpayer/me")).status_code == 401  # the old id ended


async def test_item14_registration_tells_a_user_name_is_taken_only_after_the_identity_matched(
    db_settings: Settings, api: Any, dev_server: WorkflowEnvironment
) -> None:
    """Through any invitation link, a stranger could ask "is `shelby` taken?": the answer to details that
    don't match the return is the same whatever the user name; only the matching person hears it."""
    other = {**SPOUSE, "last_name": "Quist", "email": "robin.quist@example.com", "phone": "+1 702 555 0164"}
    async with (
        invited_taxpayer(api, db_settings, dev_server) as invited,
        api.client("198.51.100.4") as shelby,
    ):
        first = await shelby.post(
            f"/api/invitations/{invited.token}/register", json=Person(shelby, TAXPAYER).registration()
        )
        assert first.status_code == 201, first.text
        _, token = await invite_by_email(invited.preparer, other)
        url = f"/api/invitations/{token}/register"
        async with api.client("203.0.113.44") as stranger:
            person = Person(stranger, other)
            answers = [
                await stranger.post(url, json=person.registration(username=name, ssn_last4="0000"))
                for name in (Person(shelby, TAXPAYER).username, "nobody-has-this-name")
            ]
            assert [a.status_code for a in answers] == [422, 422], [a.text for a in answers]
            assert all("taken" not in a.text for a in answers)
            assert answers[0].json()["detail"].split("(")[0] == answers[1].json()["detail"].split("(")[0]
            taken = await stranger.post(
                url, json=person.registration(username=Person(shelby, TAXPAYER).username)
            )
            assert taken.status_code == 409 and "user name is taken" in taken.text  # the right details
            assert (await stranger.post(url, json=person.registration())).status_code == 201


def zone_and_changes(resources: Resources) -> tuple[str, list[dict[str, Any]]]:
    with Session(resources.engine) as db:
        signer = db.exec(select(Signer).where(Signer.role == "taxpayer")).one()
        changes = [
            {**json.loads(e.detail), "by": e.actor.split(":")[0]}
            for e in db.exec(select(AuditEntry).where(AuditEntry.action == "time_zone.changed")).all()
        ]
        return signer.time_zone, changes


async def test_item6_client_and_preparer_correct_the_time_zone(stack: dict[str, Any]) -> None:
    """The 702 number made the guess Pacific; the client has moved to Denver. Either of them corrects it,
    the running workflow takes it (its quiet hours are tested in test_workflow_contact), the portal's
    times follow, and the change is in the audit log."""
    resources, preparer, taxpayer, eid = (
        stack["resources"],
        stack["preparer"],
        stack["taxpayer"],
        stack["eid"],
    )
    assert zone_and_changes(resources) == ("America/Los_Angeles", [])

    page = await taxpayer.get("/portal/account")
    assert '<option value="America/Los_Angeles" selected>' in page.text
    moved = await taxpayer.post(
        "/portal/account/time-zone", data={"csrf_token": csrf_of(page), "time_zone": "America/Denver"}
    )
    assert moved.status_code == 303 and moved.headers["location"] == "/portal/account?m=time-zone-changed"
    page = await taxpayer.get("/portal/account?m=time-zone-changed")
    assert "Your time zone is saved" in page.text
    assert '<option value="America/Denver" selected>' in page.text
    assert zone_and_changes(resources) == (
        "America/Denver",
        [{"role": "taxpayer", "from": "America/Los_Angeles", "to": "America/Denver", "by": "taxpayer"}],
    )

    unknown = await taxpayer.put("/api/taxpayer/account/time-zone", json={"time_zone": "Mars/Olympus_Mons"})
    assert unknown.status_code == 422 and "Choose a time zone" in unknown.text
    again = await taxpayer.put("/api/taxpayer/account/time-zone", json={"time_zone": "America/Denver"})
    assert again.status_code == 200  # nothing to change, nothing recorded twice
    assert len(zone_and_changes(resources)[1]) == 1

    by_preparer = await preparer.put(
        f"/api/engagements/{eid}/signers/taxpayer/time-zone", json={"time_zone": "America/Phoenix"}
    )
    assert by_preparer.status_code == 200, by_preparer.text
    no_spouse = await preparer.put(
        f"/api/engagements/{eid}/signers/spouse/time-zone", json={"time_zone": "America/Phoenix"}
    )
    assert no_spouse.status_code == 404
    zone, changes = zone_and_changes(resources)
    assert zone == "America/Phoenix" and changes[-1]["by"] == "preparer"
    shown = (await preparer.get(f"/api/engagements/{eid}")).json()
    assert [s["time_zone"] for s in shown["signers"]] == ["America/Phoenix"]
