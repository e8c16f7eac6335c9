"""The portal's forms are throttled like their JSON API counterparts: the same per-account and per-IP counts
(shared with the API), and the wait shown on the page with status 429 and `Retry-After`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from invitation_steps import invited_taxpayer
from journey import PASSWORD, TAXPAYER, Person, register_and_verify
from temporalio.testing import WorkflowEnvironment

from core import throttle
from core.config import Settings
from core.models import utcnow

pytestmark = pytest.mark.e2e
WAIT_ONE_SECOND = "Too many attempts. Please wait 1 second and try again."


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """The throttle's clock stands still: a wait never runs out while a test is slow."""
    now = utcnow()
    monkeypatch.setattr(throttle, "utcnow", lambda: now)
    return now


@pytest.fixture
async def invited(
    api: Any, settings: Settings, dev_server: WorkflowEnvironment
) -> AsyncIterator[dict[str, Any]]:
    async with invited_taxpayer(api, settings, dev_server) as invited:
        yield {"api": api, "preparer": invited.preparer, "token": invited.token}


@pytest.fixture
async def verified(invited: dict[str, Any]) -> dict[str, Any]:
    """The invited taxpayer registered and verified from their own browser: an account to attack."""
    async with invited["api"].client("198.51.100.2") as owner:
        await register_and_verify(Person(owner, TAXPAYER), invited["token"], invited["preparer"])
    return invited


async def csrf(http: httpx.AsyncClient, path: str) -> str:
    page = await http.get(path)
    return page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def assert_page_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("text/html")
    assert WAIT_ONE_SECOND in response.text
    assert response.headers["retry-after"] == "1"


async def test_login_page_password_step(verified: dict[str, Any]) -> None:
    api = verified["api"]
    async with api.client("203.0.113.9") as attacker:
        token = await csrf(attacker, "/portal/login")
        for guess in range(throttle.ACCOUNT.free):
            form = {"csrf_token": token, "username": "shelby", "password": f"guess{guess}"}
            wrong = await attacker.post("/portal/login", data=form)
            assert wrong.status_code == 401 and "Wrong user name or password." in wrong.text
        right = await attacker.post(
            "/portal/login", data={"csrf_token": token, "username": "Shelby", "password": PASSWORD}
        )
        assert_page_throttled(right)
        assert 'value="Shelby"' in right.text  # what was typed stays in the form
    async with api.client("192.0.2.7") as elsewhere:  # the same per-account count as the JSON API
        api_login = await elsewhere.post(
            "/api/taxpayer/login", json={"username": "shelby", "password": PASSWORD}
        )
        assert api_login.status_code == 429


async def test_login_page_code_steps(verified: dict[str, Any]) -> None:
    api = verified["api"]
    async with api.client("203.0.113.10") as laptop:
        token = await csrf(laptop, "/portal/login")
        first = await laptop.post(
            "/portal/login", data={"csrf_token": token, "username": "shelby", "password": PASSWORD}
        )
        assert first.status_code == 303 and first.headers["location"].startswith("/portal/login/code")
        # Asking for codes: counted per pending login, successes included (the API's rule).
        sends = []
        for _ in range(throttle.ACCOUNT.free + 1):
            sent = await laptop.post(
                "/portal/login/code/send", data={"csrf_token": token, "channel": "email"}
            )
            sends.append(sent)
        assert [s.status_code for s in sends[:-1]] == [303] * throttle.ACCOUNT.free
        assert_page_throttled(sends[-1])
        assert "Confirm it&#39;s you" in sends[-1].text or "Confirm it's you" in sends[-1].text
        # Entering codes: the login code locks first (five wrong), the throttle holds further guesses.
        answers = []
        for _ in range(throttle.LOCKED_BY_WORKFLOW.free + 1):
            answers.append(
                await laptop.post("/portal/login/code", data={"csrf_token": token, "code": "000000"})
            )
        statuses = [a.status_code for a in answers]
        assert statuses[:4] == [422] * 4 and set(statuses[4:-1]) == {423}, statuses
        assert_page_throttled(answers[-1])


async def test_registration_page(invited: dict[str, Any]) -> None:
    api, link = invited["api"], f"/invite/{invited['token']}"
    async with api.client("203.0.113.11") as guesser:
        token = await csrf(guesser, link)
        answers = []
        for last4 in range(throttle.LOCKED_BY_WORKFLOW.free + 1):
            body = Person(guesser, TAXPAYER).registration(ssn_last4=f"{last4:04d}", username=f"shelby{last4}")
            answers.append(await guesser.post(link, data={**body, "csrf_token": token}))
        statuses = [a.status_code for a in answers]
        assert 303 not in statuses and set(statuses[:-1]) == {422}, statuses
        assert_page_throttled(answers[-1])
    async with api.client("192.0.2.8") as elsewhere:  # the link's count is the API's too
        body = Person(elsewhere, TAXPAYER).registration()
        assert (
            await elsewhere.post(f"/api/invitations/{invited['token']}/register", json=body)
        ).status_code == 429


async def test_verify_page_code_request_and_entry(invited: dict[str, Any]) -> None:
    api = invited["api"]
    async with api.client("198.51.100.12") as taxpayer:
        registration = Person(taxpayer, TAXPAYER).registration()
        reply = await taxpayer.post(f"/api/invitations/{invited['token']}/register", json=registration)
        assert reply.status_code == 201, reply.text
        token = await csrf(taxpayer, "/portal/verify")
        sends = [
            await taxpayer.post("/portal/verify/send", data={"csrf_token": token, "channel": "email"})
            for _ in range(throttle.ACCOUNT.free + 1)
        ]
        assert [s.status_code for s in sends[:-1]] == [303] * throttle.ACCOUNT.free
        assert_page_throttled(sends[-1])
        assert "Verify your account" in sends[-1].text
        answers = [
            await taxpayer.post("/portal/verify", data={"csrf_token": token, "code": "000000"})
            for _ in range(throttle.LOCKED_BY_WORKFLOW.free + 1)
        ]
        statuses = [a.status_code for a in answers]
        assert 303 not in statuses and statuses[0] == 422, statuses
        assert_page_throttled(answers[-1])
        assert (await taxpayer.get("/api/taxpayer/me")).json()["verified"] is False
