"""A worker killed mid-journey: the engagement still completes, and nothing is sent or signed twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import pytest
from journey import (
    TAXPAYER,
    Person,
    invite_token,
    latest,
    login_preparer,
    make_preparer,
    register_and_verify,
    signature_png,
)
from pdfs import make_pdf
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from core.context import Resources
from core.models import OutboxMessage, Signature
from esign import pdfsign

pytestmark = pytest.mark.e2e


class WorkerProcess:
    """`portico worker` as its own process, so it can be killed like a crashed machine."""

    def __init__(self, settings: Settings, address: str) -> None:
        self.env = {
            **os.environ,
            "PORTICO_ENVIRONMENT": settings.environment,
            "PORTICO_DATA_DIR": str(settings.data_dir),
            "PORTICO_DATABASE_URL": settings.database_url,
            "PORTICO_ENCRYPTION_KEY": settings.encryption_key.get_secret_value(),
            "PORTICO_TASK_QUEUE": settings.task_queue,
            "PORTICO_TEMPORAL_ADDRESS": address,
            "PORTICO_WORKFLOW_ID_PREFIX": settings.workflow_id_prefix,
            "PORTICO_PUBLIC_URL": settings.public_url,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "portico.cli", "worker"], env=self.env)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def worker_process(settings: Settings, dev_server: WorkflowEnvironment) -> Iterator[WorkerProcess]:
    Resources.from_settings(settings).engine.dispose()  # tables and dev certificates exist before it starts
    worker = WorkerProcess(settings, dev_server.client.service_client.config.target_host)
    worker.start()
    yield worker
    worker.stop()


async def test_worker_killed_twice_mid_journey_still_completes_once(api, worker_process, settings) -> None:  # type: ignore[no-untyped-def]
    resources = Resources.from_settings(settings)
    async with api.client() as preparer, api.client() as browser:
        await login_preparer(preparer, make_preparer(resources))
        eid = (await preparer.post("/api/engagements", json={"tax_year": 2025, "taxpayer": TAXPAYER})).json()[
            "id"
        ]
        assert (
            await preparer.post(f"/api/engagements/{eid}/invite", json={"channel": "email"})
        ).status_code == 200

        worker_process.kill()  # right after the invite was accepted: the send may or may not have run
        worker_process.start()
        # The activity that died with the worker is retried once its start-to-close timeout lapses.
        for _ in range(600):
            try:
                token = invite_token(await latest(preparer, "invite", TAXPAYER["email"]))
                break
            except AssertionError:
                await asyncio.sleep(0.1)
        await register_and_verify(Person(browser, TAXPAYER), token, preparer)
        files = [("files", ("8879.pdf", make_pdf(1), "application/pdf"))]
        docs = await preparer.post(
            f"/api/engagements/{eid}/documents", files=files, data={"signers": ["taxpayer"]}
        )
        doc_id = docs.json()["documents"][0]["id"]
        sig = await browser.put(
            "/api/taxpayer/signature", files={"image": ("s.png", signature_png(), "image/png")}
        )
        assert sig.status_code == 200

        # Kill the worker while the Sign request is in flight; the request waits, the new worker finishes it.
        sign = asyncio.create_task(browser.post(f"/api/taxpayer/documents/{doc_id}/sign"))
        await asyncio.sleep(0.05)
        worker_process.kill()
        await asyncio.sleep(1)
        worker_process.start()
        response = await sign
        while response.status_code == 504:  # "taking longer than it should": the person clicks again
            response = await browser.post(f"/api/taxpayer/documents/{doc_id}/sign")
        assert response.status_code == 200, response.text
        for _ in range(200):
            if (await preparer.get(f"/api/engagements/{eid}")).json()["status"]["stage"] == "completed":
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the engagement did not complete after the worker restarts")

        with Session(resources.engine) as db:
            messages = db.exec(select(OutboxMessage)).all()
            signatures = db.exec(select(Signature)).all()
        keys = Counter(m.idempotency_key for m in messages)
        assert max(keys.values()) == 1
        purposes = Counter(m.purpose for m in messages)
        assert purposes["invite"] == 1 and purposes["code"] == 1 and purposes["completed"] == 1
        assert [(s.role, s.signed_at is not None) for s in signatures] == [("taxpayer", True)]
        pdf = (await preparer.get(f"/api/engagements/{eid}/documents/{doc_id}/download")).content
        reports = await asyncio.to_thread(pdfsign.read_signatures, pdf)
        assert [r.field_name for r in reports].count("Taxpayer") == 1
        assert worker_process.kills == 2
