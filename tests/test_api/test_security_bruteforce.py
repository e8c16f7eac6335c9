"""Scripted guessing of passwords and codes is slowed to a crawl: per account and per IP, increasing delays,
a 429 with `Retry-After` and the wait in words, the state in the database, lockouts in the audit log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from journey import (
    PASSWORD,
    TAXPAYER,
    Person,
    code_in,
    invite_token,
    latest,
    login_preparer,
    make_preparer,
    outbox,
    register_and_verify,
)
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from core import throttle
from core.config import Settings
from core.context import Resources
from core.models import AuditEntry, OutboxMessage, ThrottleState, utcnow
from worker.main import build_worker

pytestmark = pytest.mark.e2e


class Clock:
    """The throttle's clock, frozen: waits are exact and don't depend on how fast the machine is."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    frozen = Clock()
    monkeypatch.setattr(throttle, "utcnow", frozen)
    return frozen


def wait_out(resources: Resources) -> None:
    """As if the caller waited what they were told to: the clock moves past every wait."""
    with Session(resources.engine) as db:
        latest = max(
            (r.next_allowed_at for r in db.exec(select(ThrottleState)).all() if r.next_allowed_at),
            default=None,
        )
    clock = throttle.utcnow
    assert isinstance(clock, Clock)
    if latest is not None:
        clock.now = max(clock.now, latest) + timedelta(seconds=1)


def assert_throttled(response: Any) -> int:
    assert response.status_code == 429, (response.status_code, response.text)
    wait = int(response.headers["retry-after"])
    assert wait >= 1
    assert "Too many attempts" in response.json()["detail"] and "wait" in response.json()["detail"]
    return wait


def test_delays_grow_and_cap() -> None:
    rule = throttle.ACCOUNT
    delays = [rule.delay(n) for n in range(1, 30)]
    assert delays[: rule.free - 1] == [0.0] * (rule.free - 1)
    assert delays[rule.free - 1 : rule.free + 3] == [1.0, 2.0, 4.0, 8.0]
    assert max(delays) == rule.cap and delays == sorted(delays)
    assert throttle.wait_text(1) == "1 second" and throttle.wait_text(600) == "10 minutes"


def test_count_is_shared_and_compare_and_set(resources: Resources) -> None:
    """Two 'processes' (engines) on one database see one count; a burst can't exceed the free attempts."""
    from core.db import make_engine

    other = make_engine(resources.settings.database_url)
    rule = throttle.Rule(free=3, base=60)
    for engine in (resources.engine, other, resources.engine):
        throttle.attempt(engine, "t:account", "alice", rule)
    with pytest.raises(throttle.Throttled) as caught:
        throttle.attempt(other, "t:account", "alice", rule)
    assert caught.value.retry_after == 60
    throttle.attempt(other, "t:account", "bob", rule)  # another key is unaffected
    throttle.succeeded(resources.engine, "t:account", "alice", forget=True)
    throttle.attempt(other, "t:account", "alice", rule)
    other.dispose()


@pytest.fixture
async def people(
    api: Any, settings: Settings, dev_server: WorkflowEnvironment
) -> AsyncIterator[dict[str, Any]]:
    resources = Resources.from_settings(settings)
    async with (
        build_worker(dev_server.client, resources),
        api.client("198.51.100.1") as preparer,
        api.client("198.51.100.2") as taxpayer,
    ):
        await login_preparer(preparer, make_preparer(resources))
        eid = (await preparer.post("/api/engagements", json={"tax_year": 2025, "taxpayer": TAXPAYER})).json()[
            "id"
        ]
        sent = await preparer.post(f"/api/engagements/{eid}/invite", json={"channel": "email"})
        assert sent.status_code == 200, sent.text
        for _ in range(100):
            if any(m["purpose"] == "invite" for m in await outbox(preparer)):
                break
            await asyncio.sleep(0.1)
        token = invite_token(await latest(preparer, "invite", TAXPAYER["email"]))
        yield {
            "api": api,
            "resources": resources,
            "preparer": preparer,
            "taxpayer": taxpayer,
            "token": token,
            "eid": eid,
        }
    resources.engine.dispose()


async def test_password_guessing_is_throttled_per_account(people: dict[str, Any]) -> None:
    api, resources = people["api"], people["resources"]
    await register_and_verify(Person(people["taxpayer"], TAXPAYER), people["token"], people["preparer"])
    waits = []
    async with api.client("203.0.113.9") as attacker:
        for guess in range(throttle.ACCOUNT.free):
            wrong = await attacker.post(
                "/api/taxpayer/login", json={"username": "shelby", "password": f"guess{guess}"}
            )
            assert wrong.status_code == 401, wrong.text
        # Now even the right password waits: the attacker learns nothing from it.
        right = await attacker.post("/api/taxpayer/login", json={"username": "shelby", "password": PASSWORD})
        waits.append(assert_throttled(right))
        for _ in range(3):  # each further wrong guess after waiting doubles the wait
            wait_out(resources)
            wrong = await attacker.post(
                "/api/taxpayer/login", json={"username": "shelby", "password": "nope"}
            )
            assert wrong.status_code == 401
            waits.append(
                assert_throttled(
                    await attacker.post("/api/taxpayer/login", json={"username": "Shelby ", "password": "x"})
                )
            )
        assert waits == [1, 2, 4, 8], waits
    # From another address the account is throttled too (per account, not only per IP).
    async with api.client("192.0.2.77") as elsewhere:
        assert_throttled(
            await elsewhere.post("/api/taxpayer/login", json={"username": "shelby", "password": PASSWORD})
        )
    wait_out(resources)
    async with api.client("192.0.2.77") as owner:  # the owner, after waiting, logs in; the count is cleared
        ok = await owner.post("/api/taxpayer/login", json={"username": "shelby", "password": PASSWORD})
        assert ok.status_code in (200, 202), ok.text
    with Session(resources.engine) as db:
        assert db.exec(select(AuditEntry).where(AuditEntry.action == "throttle.lockout")).first() is not None
        assert db.exec(select(AuditEntry).where(AuditEntry.action == "taxpayer.login_failed")).all()


async def test_password_spraying_is_throttled_per_ip(people: dict[str, Any]) -> None:
    api = people["api"]
    async with api.client("203.0.113.50") as sprayer, api.client("203.0.113.51") as neighbour:
        codes = []
        for i in range(throttle.IP.free + 3):
            r = await sprayer.post(
                "/api/taxpayer/login", json={"username": f"user{i}", "password": "Winter2025!"}
            )
            codes.append(r.status_code)
        assert codes[: throttle.IP.free] == [401] * throttle.IP.free
        assert set(codes[throttle.IP.free + 1 :]) == {429}, codes
        # Someone at another address is not slowed by the sprayer.
        other = await neighbour.post("/api/taxpayer/login", json={"username": "user0", "password": "x"})
        assert other.status_code == 401


async def test_code_guessing_is_locked_out(people: dict[str, Any]) -> None:
    taxpayer, preparer = people["taxpayer"], people["preparer"]
    registered = await taxpayer.post(
        f"/api/invitations/{people['token']}/register", json=Person(taxpayer, TAXPAYER).registration()
    )
    assert registered.status_code == 201, registered.text
    assert (await taxpayer.post("/api/taxpayer/code", json={"channel": "email"})).status_code == 200
    for _ in range(50):
        try:
            message = await latest(preparer, "code", TAXPAYER["email"])
            break
        except AssertionError:
            await asyncio.sleep(0.1)
    real = code_in(message)
    answers = []
    for guess in range(12):
        code = f"{(int(real) + guess + 1) % 1_000_000:06d}"
        answers.append((await taxpayer.post("/api/taxpayer/verify", json={"code": code})).status_code)
    assert 200 not in answers
    assert answers[0] == 422 and set(answers[-3:]) <= {409, 423, 429}, answers  # 409: locked since
    # The right code no longer helps: locked (workflow) or throttled.
    final = await taxpayer.post("/api/taxpayer/verify", json={"code": real})
    assert final.status_code in (409, 423, 429), final.text
    me = await taxpayer.get("/api/taxpayer/me")
    assert me.json()["verified"] is False


async def test_code_requests_and_registration_guessing_are_throttled(people: dict[str, Any]) -> None:
    api, taxpayer = people["api"], people["taxpayer"]
    async with api.client("203.0.113.70") as guesser:
        answers = []
        for last4 in range(12):
            body = Person(guesser, TAXPAYER).registration(ssn_last4=f"{last4:04d}", username=f"shelby{last4}")
            answers.append(
                (await guesser.post(f"/api/invitations/{people['token']}/register", json=body)).status_code
            )
        assert 201 not in answers and set(answers[-3:]) <= {409, 423, 429}, answers
    wait_out(people["resources"])
    # The real taxpayer's link may be locked by the guesser; the preparer unlocks it (spine rule).
    await people["preparer"].post(f"/api/engagements/{people['eid']}/unlock", json={"role": "taxpayer"})
    registered = await taxpayer.post(
        f"/api/invitations/{people['token']}/register", json=Person(taxpayer, TAXPAYER).registration()
    )
    assert registered.status_code == 201, registered.text
    sends = [
        (await taxpayer.post("/api/taxpayer/code", json={"channel": "email"})).status_code for _ in range(10)
    ]
    assert 429 in sends, sends
    codes = [m for m in await outbox(people["preparer"]) if m["purpose"] == "code"]
    assert len(codes) <= throttle.ACCOUNT.free


async def test_preparer_password_guessing_is_throttled(people: dict[str, Any]) -> None:
    api = people["api"]
    async with api.client("203.0.113.80") as attacker:
        for _ in range(throttle.ACCOUNT.free):
            wrong = await attacker.post(
                "/api/preparer/login", json={"email": "ada@firm.test", "password": "guess-1234"}
            )
            assert wrong.status_code == 401, wrong.text
        assert_throttled(
            await attacker.post("/api/preparer/login", json={"email": "ADA@firm.test", "password": PASSWORD})
        )


async def test_item2_account_throttle_reads_the_body_the_route_validates(people: dict[str, Any]) -> None:
    """`Application/JSON` is JSON to the route, so it is to the throttle: the guesses count on the account.
    Another JSON spelling (`application/x+json`) is refused outright with 415."""
    api = people["api"]
    body = json.dumps({"email": "ada@firm.test", "password": "guess-1234"})
    async with api.client("203.0.113.81") as attacker:
        for _ in range(throttle.ACCOUNT.free):
            wrong = await attacker.post(
                "/api/preparer/login", content=body, headers={"content-type": "Application/JSON"}
            )
            assert wrong.status_code == 401, wrong.text
        assert_throttled(
            await attacker.post(
                "/api/preparer/login",
                content=body,
                headers={"content-type": "APPLICATION/json; charset=utf-8"},
            )
        )
    async with api.client("203.0.113.82") as other:
        for spelling in ("application/x+json", "Application/Vnd.Portico+JSON"):
            refused = await other.post(
                "/api/preparer/login", content=body, headers={"content-type": spelling}
            )
            assert refused.status_code == 415, (spelling, refused.status_code, refused.text)


async def test_item2_hard_lockout_after_100_consecutive_failures_tells_the_owner(
    people: dict[str, Any], clock: Clock
) -> None:
    """However slowly they come (each wait sat out, the hourly forgiveness never reached), 100 wrong
    passwords in a row lock the account for a day, the right password too, and its owner gets an email."""
    api, resources = people["api"], people["resources"]
    email = "ada@firm.test"
    async with api.client("203.0.113.83") as attacker:
        for guess in range(throttle.LOCKOUT.free):
            clock.now += timedelta(minutes=16)  # past every ordinary wait (at most 15 minutes)
            wrong = await attacker.post("/api/preparer/login", json={"email": email, "password": f"g{guess}"})
            assert wrong.status_code == 401, (guess, wrong.status_code, wrong.text)
        clock.now += timedelta(minutes=16)
        locked = await attacker.post("/api/preparer/login", json={"email": email, "password": PASSWORD})
        assert assert_throttled(locked) > 20 * 3600
    with Session(resources.engine) as db:
        told = db.exec(select(OutboxMessage).where(OutboxMessage.purpose == "account-locked")).all()
        assert [m.destination for m in told] == [email]
        lockouts = db.exec(select(AuditEntry).where(AuditEntry.action == "throttle.lockout")).all()
        assert any("preparer-login:consecutive" in (entry.detail or "") for entry in lockouts)
    clock.now += timedelta(days=1)  # after the day the owner logs in, and the count starts again
    async with api.client("192.0.2.83") as owner:
        ok = await owner.post("/api/preparer/login", json={"email": email, "password": PASSWORD})
        assert ok.status_code == 200, ok.text
    with Session(resources.engine) as db:
        assert (
            db.exec(select(ThrottleState).where(ThrottleState.scope == "preparer-login:consecutive")).all()
            == []
        )
