"""Crash soak: the Temporal dev server (file database), the worker and the API run as separate processes and
are SIGKILLed at random points, several times each, while engagements are driven through the API. Then every
engagement completes, no idempotency key has two sent messages, no document has two signatures by the same
signer, and every signed PDF validates.

CI runs 20 engagements; `make soak` (PORTICO_SOAK=long) runs 100. PORTICO_SOAK_SEED replays a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from journey import PASSWORD, signature_png
from pdfs import make_pdf
from preparer_steps import Authenticator
from soak_stack import Stack
from sqlalchemy import create_engine, text

pytestmark = [pytest.mark.soak, pytest.mark.e2e]

LONG = os.environ.get("PORTICO_SOAK", "").lower() == "long"
ENGAGEMENTS = 100 if LONG else 20
KILLS_EACH = 6 if LONG else 3
BUDGET = 1500.0 if LONG else 420.0  # seconds for the whole drive, kills included
PARALLEL = 10
SEED = int(os.environ.get("PORTICO_SOAK_SEED", str(random.SystemRandom().randrange(1 << 30))))
RETRYABLE = {429, 500, 502, 503, 504}


class Down(Exception):
    """The API didn't answer (killed, restarting) or answered 5xx: try again."""


def person(i: int) -> dict[str, str]:
    return {
        "first_name": f"Soak{i}",
        "last_name": f"Tester{i}",
        "ssn": f"123-45-{1000 + i:04d}",
        "email": f"soak{i}@example.com",
        "phone": f"+1 702 555 {1000 + i:04d}",
        "time_zone": "America/Los_Angeles",
    }


class Driver:
    """One HTTP client per person; every call is retried while the API is down or answers 5xx."""

    def __init__(self, stack: Stack, deadline: float) -> None:
        self.stack = stack
        self.deadline = deadline
        self.retries = 0

    def client(self, ip: str = "10.0.0.1") -> httpx.AsyncClient:
        # Each person at their own address (the API trusts X-Forwarded-For from 127.0.0.1, as behind a proxy),
        # so the per-IP throttle sees twenty households, not one.
        return httpx.AsyncClient(
            base_url=self.stack.base_url,
            timeout=30,
            headers={"x-forwarded-for": ip, "sec-fetch-site": "same-origin"},
        )

    async def call(
        self,
        http: httpx.AsyncClient,
        method: str,
        url: str,
        ok: Callable[[httpx.Response], bool],
        again: frozenset[int] = frozenset(),
        **kw: Any,
    ) -> httpx.Response:
        """`again`: answers that mean "not yet" (the workflow hasn't caught up after a restart): retried."""
        while True:
            if time.monotonic() > self.deadline:
                raise TimeoutError(f"soak budget spent at {method} {url}")
            try:
                response = await http.request(method, url, **kw)
                if response.status_code not in RETRYABLE | again:
                    if not ok(response):
                        raise AssertionError(
                            f"{method} {url} -> {response.status_code}: {response.text[:300]}"
                        )
                    return response
            except (httpx.TransportError, Down):
                pass
            self.retries += 1
            await asyncio.sleep(0.5)

    async def until(self, probe: Callable[[], Awaitable[Any]], what: str) -> Any:
        while True:
            if time.monotonic() > self.deadline:
                raise TimeoutError(f"soak budget spent waiting for {what}")
            try:
                found = await probe()
                if found:
                    return found
            except (httpx.TransportError, Down):
                pass
            await asyncio.sleep(0.3)


async def outbox_message(driver: Driver, http: httpx.AsyncClient, purpose: str, destination: str) -> str:
    async def probe() -> str | None:
        response = await http.get("/api/dev/outbox", params={"limit": 1000})
        if response.status_code != 200:
            raise Down
        for message in response.json():
            if message["purpose"] == purpose and message["destination"] == destination:
                return str(message["body"])
        return None

    body: str = await driver.until(probe, f"{purpose} to {destination}")
    return body


async def drive_one(driver: Driver, preparer: httpx.AsyncClient, i: int) -> int:
    """Creates one engagement and takes it to completed, surviving kills; answers its id."""
    data = person(i)
    call = driver.call

    async def existing() -> int | None:  # a create whose answer was lost may have happened
        found = await call(
            preparer, "GET", "/api/engagements", lambda r: r.status_code == 200, params={"q": data["email"]}
        )
        items = found.json()["items"]
        return int(items[0]["id"]) if items else None

    eid = await existing()
    while eid is None:
        try:
            created = await preparer.post("/api/engagements", json={"tax_year": 2025, "taxpayer": data})
            if created.status_code == 201:
                eid = int(created.json()["id"])
                break
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.5)
        eid = await existing()

    await call(
        preparer,
        "POST",
        f"/api/engagements/{eid}/invite",
        lambda r: r.status_code == 200,
        json={"channel": "email"},
    )
    async with driver.client(f"10.1.{i // 250}.{i % 250 + 1}") as taxpayer:
        username = f"soak{i}"
        registration = {
            "username": username,
            "password": PASSWORD,
            "email": data["email"],
            "phone": data["phone"],
            "last_name": data["last_name"],
            "ssn_last4": data["ssn"][-4:],
        }
        while True:
            # A retried invite (its answer lost in a kill) sends a newer link: always use the newest.
            body = await outbox_message(driver, preparer, "invite", data["email"])
            token = re.findall(r"/invite/([A-Za-z0-9_\-.]+)", body)[-1]
            reg = await call(
                taxpayer,
                "POST",
                f"/api/invitations/{token}/register",
                lambda r: r.status_code in (201, 409),
                json=registration,
            )
            if not (reg.status_code == 409 and "replaced" in reg.text):
                break
            await asyncio.sleep(0.5)
        if reg.status_code == 409:
            # Registered by an attempt whose answer was lost; the account row may still be being written.
            while True:
                login = await call(
                    taxpayer,
                    "POST",
                    "/api/taxpayer/login",
                    lambda r: r.status_code in (200, 202, 401),
                    json={"username": username, "password": PASSWORD},
                )
                if login.status_code != 401:
                    break
                await asyncio.sleep(1)
            if login.status_code == 202:  # verified by a lost attempt too: log in with a login code
                await call(
                    taxpayer,
                    "POST",
                    "/api/taxpayer/login/code",
                    lambda r: r.status_code == 200,
                    json={"channel": "email"},
                )
                code = re.findall(
                    r"\b(\d{6})\b", await outbox_message(driver, preparer, "login_code", data["email"])
                )[-1]
                await call(
                    taxpayer,
                    "POST",
                    "/api/taxpayer/login/verify",
                    lambda r: r.status_code == 200,
                    json={"code": code},
                )
        me = await call(taxpayer, "GET", "/api/taxpayer/me", lambda r: r.status_code == 200)
        while not me.json()["verified"]:
            asked = await call(
                taxpayer,
                "POST",
                "/api/taxpayer/code",
                lambda r: r.status_code in (200, 409, 422),
                json={"channel": "email"},
            )
            if asked.status_code != 200:  # the workflow hasn't caught up with the registration yet
                await asyncio.sleep(1)
                me = await call(taxpayer, "GET", "/api/taxpayer/me", lambda r: r.status_code == 200)
                continue
            code_body = await outbox_message(driver, preparer, "code", data["email"])
            code = re.findall(r"\b(\d{6})\b", code_body)[-1]
            await call(
                taxpayer,
                "POST",
                "/api/taxpayer/verify",
                lambda r: r.status_code in (200, 409, 422),
                json={"code": code},
            )
            me = await call(taxpayer, "GET", "/api/taxpayer/me", lambda r: r.status_code == 200)

        async def documents() -> list[dict[str, Any]]:
            got = await call(preparer, "GET", f"/api/engagements/{eid}", lambda r: r.status_code == 200)
            return list(got.json()["documents"])

        if not await documents():
            await call(
                preparer,
                "POST",
                f"/api/engagements/{eid}/documents",
                lambda r: r.status_code == 200,
                again=frozenset({409}),
                files=[("files", (f"8879-{i}.pdf", make_pdf(1), "application/pdf"))],
                data={"signers": ["taxpayer"]},
            )
        consent = await call(taxpayer, "GET", "/api/taxpayer/consent", lambda r: r.status_code == 200)
        await call(
            taxpayer,
            "POST",
            "/api/taxpayer/consent",
            lambda r: r.status_code == 200,
            json={"version": consent.json()["version"]},
        )
        await call(
            taxpayer,
            "PUT",
            "/api/taxpayer/signature",
            lambda r: r.status_code == 200,
            files={"image": ("s.png", signature_png(), "image/png")},
        )
        for doc in await documents():  # a retried send may have sent it twice: sign whatever is there
            await call(
                taxpayer, "POST", f"/api/taxpayer/documents/{doc['id']}/sign", lambda r: r.status_code == 200
            )

    async def completed() -> bool:
        got = await preparer.get(f"/api/engagements/{eid}")
        if got.status_code != 200:
            raise Down
        return bool(got.json()["status"]["stage"] == "completed")

    await driver.until(completed, f"engagement {eid} to complete")
    return eid


async def start_until_up(stack: Stack, name: str, log: list[str]) -> None:
    """Starts a part; one that exits at once (the API while Temporal is still starting) is tried again."""
    for attempt in range(30):
        try:
            await asyncio.to_thread(stack.start, name)
            return
        except RuntimeError as exc:
            log.append(f"{time.strftime('%H:%M:%S')} {name} start {attempt + 1} failed: {exc}")
            await asyncio.sleep(1)
    raise RuntimeError(f"{name} would not start")


async def chaos(stack: Stack, rng: random.Random, stop: asyncio.Event, log: list[str]) -> None:
    """SIGKILLs a random part at a random moment until each was killed KILLS_EACH times, restarting it after
    a random pause; restarts anything that exited on its own."""
    parts = ["worker", "api", "temporal"]
    while not stop.is_set():
        await asyncio.sleep(rng.uniform(2.0, 8.0))
        if stop.is_set():
            return
        due = [p for p in parts if stack.kills[p] < KILLS_EACH]
        if due:
            part = rng.choice(due)
            pause = rng.uniform(0.0, 2.0)
            log.append(f"{time.strftime('%H:%M:%S')} kill {part}, restart after {pause:.1f}s")
            await asyncio.to_thread(stack.kill, part)
            await asyncio.sleep(pause)
            await start_until_up(stack, part, log)
        for name in parts:
            if not stack.alive(name):
                log.append(f"{time.strftime('%H:%M:%S')} {name} had exited: restarted")
                await start_until_up(stack, name, log)


def figures(stack: Stack) -> str:
    """Stages, messages vs unique keys, double signatures, missing blobs: straight from the database."""
    engine = create_engine(stack.env["PORTICO_DATABASE_URL"])
    with engine.connect() as db:
        stages = Counter(r[0] for r in db.execute(text("SELECT stage FROM engagementstatus")))
        sent = db.execute(
            text("SELECT COUNT(*), COUNT(DISTINCT idempotency_key) FROM outboxmessage WHERE status = 'sent'")
        ).one()
        doubles = db.execute(
            text(
                "SELECT COUNT(*) FROM (SELECT document_id, role FROM signature WHERE signed_at IS NOT NULL "
                "GROUP BY document_id, role HAVING COUNT(*) > 1) AS d"
            )
        ).scalar_one()
        keys = [r[0] for r in db.execute(text("SELECT current_key FROM document"))]
    engine.dispose()
    root = stack.data_dir / "documents"
    missing = [
        k for k in keys if not (root / k.split("/")[0] / k.split("/")[1][:2] / k.split("/")[1]).exists()
    ]
    return (
        f"soak figures: stages {dict(stages)}, kills {dict(stack.kills)}, sent messages {sent[0]} vs "
        f"unique keys {sent[1]}, documents signed twice by one signer {doubles}, "
        f"documents whose blob is missing {missing}"
    )


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(tmp_path / "var", environment="development")
    try:
        stack.start_all()
        yield stack
    finally:
        stack.stop()


@pytest.mark.timeout(int(BUDGET) + 300)
async def test_crash_soak(stack: Stack) -> None:
    rng = random.Random(SEED)
    print(f"soak: seed {SEED}, {ENGAGEMENTS} engagements, {KILLS_EACH} kills per process")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "portico.cli",
            "create-preparer",
            "--email",
            "soak@firm.test",
            "--name",
            "Soak Preparer",
            "--firm",
            "Soak Firm",
            "--password",
            PASSWORD,
        ],
        env=stack.env,
        check=True,
        capture_output=True,
    )
    started = time.monotonic()
    driver = Driver(stack, started + BUDGET)
    log: list[str] = []
    stop = asyncio.Event()
    async with driver.client() as preparer:
        await driver.call(
            preparer,
            "POST",
            "/api/preparer/login",
            lambda r: r.status_code == 200,
            json={"email": "soak@firm.test", "password": PASSWORD},
        )
        # Two-step login is set up at the first login; the set-up session reaches nothing else.
        enrol = await driver.call(preparer, "POST", "/api/preparer/mfa/enrol", lambda r: r.status_code == 200)
        await driver.call(
            preparer,
            "POST",
            "/api/preparer/mfa/confirm",
            lambda r: r.status_code == 200,
            json={"code": Authenticator(enrol.json()["secret"]).code()},
        )
        gate = asyncio.Semaphore(PARALLEL)

        async def guarded(i: int) -> int:
            async with gate:
                return await drive_one(driver, preparer, i)

        monkey = asyncio.create_task(chaos(stack, rng, stop, log))
        try:
            ids = await asyncio.gather(*(guarded(i) for i in range(ENGAGEMENTS)))
            # Kills still owed (a fast drive): do them now, then check everything still holds.
            while min(stack.kills[p] for p in ("worker", "api", "temporal")) < KILLS_EACH:
                await asyncio.sleep(0.5)
                if time.monotonic() > driver.deadline:
                    break
        except BaseException:
            print(figures(stack))  # what state the stack was left in, for the report
            print("\n".join(log))
            raise
        finally:
            stop.set()
            monkey.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monkey
        for name in ("temporal", "worker", "api"):
            if not stack.alive(name):
                await start_until_up(stack, name, log)
        elapsed = time.monotonic() - started

        # Every signed PDF validates (the API's own verifier, trusting the firm's signing CA).
        checked = 0
        for eid in ids:
            detail = await driver.call(
                preparer, "GET", f"/api/engagements/{eid}", lambda r: r.status_code == 200
            )
            for doc in detail.json()["documents"]:
                pdf = await driver.call(
                    preparer,
                    "GET",
                    f"/api/engagements/{eid}/documents/{doc['id']}/download",
                    lambda r: r.status_code == 200,
                )
                report = await driver.call(
                    preparer,
                    "POST",
                    "/api/verify",
                    lambda r: r.status_code == 200,
                    files={"file": ("signed.pdf", pdf.content, "application/pdf")},
                )
                verdict = report.json()
                roles = [s["signer_name"] for s in verdict["signatures"] if s["kind"] == "approval"]
                assert verdict["all_signatures_hold"], (eid, doc["id"], verdict["summary"])
                assert len(roles) == 1, (eid, doc["id"], roles)
                checked += 1

    engine = create_engine(stack.env["PORTICO_DATABASE_URL"])
    with engine.connect() as db:
        stages = Counter(r[0] for r in db.execute(text("SELECT stage FROM engagementstatus")))
        messages = db.execute(text("SELECT idempotency_key, status, purpose FROM outboxmessage")).all()
        doubles = db.execute(
            text(
                "SELECT document_id, role, COUNT(*) FROM signature WHERE signed_at IS NOT NULL "
                "GROUP BY document_id, role HAVING COUNT(*) > 1"
            )
        ).all()
        signatures = db.execute(
            text("SELECT COUNT(*) FROM signature WHERE signed_at IS NOT NULL")
        ).scalar_one()
    engine.dispose()
    sent = [m for m in messages if m[1] == "sent"]
    per_key = Counter(m[0] for m in sent)
    print(
        f"soak: {len(ids)} engagements in {elapsed:.0f}s, stages {dict(stages)}, kills {dict(stack.kills)}, "
        f"messages {len(messages)} ({len(sent)} sent) vs {len(per_key)} unique keys, "
        f"purposes {dict(Counter(m[2] for m in messages))}, signatures {signatures}, "
        f"signed PDFs validated {checked}, client retries {driver.retries}"
    )
    print("\n".join(log))
    assert stages == {"completed": ENGAGEMENTS}, stages
    assert not [k for k, n in per_key.items() if n > 1]
    assert len(per_key) == len(sent)
    assert not doubles, doubles
    completed_notices = Counter(m[2] for m in sent)["completed"]
    assert completed_notices == ENGAGEMENTS, completed_notices
    assert all(stack.kills[p] >= KILLS_EACH for p in ("worker", "api", "temporal")), stack.kills
