"""Live updates with the API as two processes (issue 15): a client's event stream on process A delivers what
the preparer did through process B, because the stream reads the shared database, not one process's memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import _postgres_url, drop_postgres_database, fresh_postgres_database
from journey import TAXPAYER, login_preparer, make_preparer
from soak_stack import free_port, wait_for_port
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from core import sessions
from core.client_accounts import link_signer
from core.config import Settings
from core.context import Resources
from core.models import Signer, TaxpayerAccount, utcnow

pytestmark = pytest.mark.e2e


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    """PostgreSQL where the machine has one (as production runs several API processes), else a file."""
    if _postgres_url() is None:
        yield f"sqlite:///{tmp_path / 'portico.db'}"
        return
    url = fresh_postgres_database()
    yield url
    drop_postgres_database(url)


@pytest.fixture
def two_apis(
    tmp_path: Path, database: str, master_key: str, dev_server: WorkflowEnvironment
) -> Iterator[tuple[str, str, Settings]]:
    # Development: plain-http cookie names without Secure, so a plain HTTP client keeps its session.
    env = {
        **os.environ,
        "PORTICO_ENVIRONMENT": "development",
        "PORTICO_DATA_DIR": str(tmp_path / "var"),
        "PORTICO_DATABASE_URL": database,
        "PORTICO_ENCRYPTION_KEY": master_key,
        "PORTICO_TASK_QUEUE": "two-apis",
        "PORTICO_TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
    }
    subprocess.run(
        [sys.executable, "-m", "portico.cli", "db", "upgrade"], env=env, check=True, capture_output=True
    )
    ports = [free_port(), free_port()]
    log = (tmp_path / "api.log").open("ab")
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "portico.cli", "api", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for port in ports
    ]
    try:
        for port, process in zip(ports, processes, strict=True):
            wait_for_port(port, process)
        settings = Settings(
            environment="development",
            data_dir=tmp_path / "var",
            database_url=database,
            encryption_key=master_key,  # type: ignore[arg-type]
            _env_file=None,  # type: ignore[call-arg]
        )
        yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}", settings
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def client_session(resources: Resources, engagement_id: int) -> str:
    """A verified client account on the return's taxpayer, signed in: its session token."""
    with Session(resources.engine) as db:
        signer = db.exec(select(Signer).where(Signer.engagement_id == engagement_id)).one()
        account = TaxpayerAccount(
            signer_id=signer.id or 0,
            firm_id=1,
            username="shelby",
            password_hash="unused",
            email=TAXPAYER["email"],
            phone="+17025550197",
            verified_at=utcnow(),
            verified_channel="email",
        )
        db.add(account)
        db.flush()
        link_signer(db, account, signer, via="registration")
        db.commit()
        return sessions.start(db, "taxpayer", account.id or 0, "127.0.0.1", "pytest")


async def read_events(response: httpx.Response, into: list[tuple[str, dict[str, object]]]) -> None:
    name = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            into.append((name, json.loads(line[len("data: ") :])))


async def test_a_stream_on_one_process_delivers_what_another_process_wrote(
    two_apis: tuple[str, str, Settings],
) -> None:
    url_a, url_b, settings = two_apis
    resources = Resources.from_settings(settings)
    headers = {"user-agent": "pytest-portico", "sec-fetch-site": "same-origin"}
    try:
        async with httpx.AsyncClient(base_url=url_b, headers=headers, timeout=20) as preparer:
            await login_preparer(preparer, make_preparer(resources))
            created = await preparer.post("/api/engagements", json={"tax_year": 2025, "taxpayer": TAXPAYER})
            assert created.status_code == 201, created.text
            engagement_id = created.json()["id"]
            token = client_session(resources, engagement_id)

            events: list[tuple[str, dict[str, object]]] = []
            cookie = {"cookie": f"portico_session={token}"}
            async with (
                httpx.AsyncClient(base_url=url_a, headers=headers, timeout=20) as browser,
                browser.stream("GET", "/portal/events", headers=cookie) as stream,
            ):
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                reader = asyncio.create_task(read_events(stream, events))
                for _ in range(50):  # the count, at once
                    if events:
                        break
                    await asyncio.sleep(0.1)
                assert events[0] == ("unread", {"unread": 0, "label": "Notifications, 0 unread"})

                sent = await preparer.post(
                    f"/api/engagements/{engagement_id}/messages", json={"body": "Hello <b>from B</b>"}
                )
                assert sent.status_code == 201, sent.text
                for _ in range(50):  # within a few seconds, on the other process
                    if {"chat", "notification"} <= {name for name, _ in events} and events[-1][0] == "unread":
                        break
                    await asyncio.sleep(0.1)
                reader.cancel()
            names = [name for name, _ in events]
            assert "notification" in names and "chat" in names, events
            note = next(data for name, data in events if name == "notification")
            assert note["title"] == "New message from Ada Preparer" and note["link"] == "/portal/messages"
            chat = next(data for name, data in events if name == "chat")
            assert "Hello &lt;b&gt;from B&lt;/b&gt;" in str(chat["html"])
            assert ("unread", {"unread": 1, "label": "Notifications, 1 unread"}) in events

            # Without a session the stream is refused, on either process.
            async with httpx.AsyncClient(base_url=url_a, headers=headers) as nobody:
                assert (await nobody.get("/portal/events")).status_code == 401
    finally:
        resources.engine.dispose()
