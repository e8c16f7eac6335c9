"""Observability: JSON logs with request ids and nothing secret in them, /metrics on its own port (API and
worker), /readyz, and the landing page at /."""

from __future__ import annotations

import asyncio
import contextvars
import io
import json
import logging
import re
import types
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fake_providers import free_port
from journey import (
    TAXPAYER,
    Person,
    invite_token,
    latest,
    login_preparer,
    make_preparer,
    outbox,
    register_and_verify,
    signature_png,
)
from pdfs import make_pdf
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from core.context import Resources
from core.logs import (
    REQUEST_ID,
    JsonFormatter,
    RedactSecrets,
    accept_request_id,
    configure_logging,
    redact,
    request_id_bound,
)
from portico.app import create_app
from worker.main import build_worker
from worker.telemetry import metrics_runtime

# ---- logs: format and redaction ---------------------------------------------------------------------


def test_redaction_covers_the_obvious_shapes() -> None:
    line = redact(
        "ssn 123-45-6789 / 123456789, code 482913, GET /invite/WzEsInRheHBheWVyIiwxXQ.Zm9vYmFyYmF6cXV4cXV1, "
        "password=hunter2, Authorization: Bearer abc.def, key " + "f" * 40
    )
    for secret in ("123-45-6789", "123456789", "482913", "WzEsInRheHBheWVy", "hunter2", "abc.def", "f" * 40):
        assert secret not in line, line
    # What an operator needs stays: ids, ports, timestamps, UUIDs.
    kept = "engagement 42 on port 8000 at 2025-04-15T09:30:00 run 0f8c2b1e-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
    assert redact(kept) == kept


def test_json_formatter_writes_one_object_a_line_with_the_request_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger("portico.test-json")
    logger.addHandler(handler)
    logger.propagate = False
    token = REQUEST_ID.set("req-123")
    try:
        logger.warning("code %s for %s", "123456", "shelby", extra={"engagement_id": 7})
        try:
            raise ValueError("bad ssn 123-45-6789")
        except ValueError:
            logger.exception("failed")
    finally:
        REQUEST_ID.reset(token)
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "WARNING" and first["logger"] == "portico.test-json"
    assert first["message"] == "code [code] for shelby"
    assert first["request_id"] == "req-123" and first["engagement_id"] == 7
    assert first["timestamp"].endswith("+00:00")
    assert "123-45-6789" not in second["exception"] and "[ssn]" in second["exception"]


def test_a_bound_request_id_closed_from_another_context_raises_nothing() -> None:
    """A workflow handler still waiting when its workflow is evicted is closed by the garbage collector, in
    another Context: closing it must not raise (CI once failed on the "exception ignored" warning)."""

    @types.coroutine
    def suspend() -> Iterator[None]:
        yield

    async def handler() -> None:
        with request_id_bound("req-1"):
            await suspend()

    coroutine = handler()
    handler_context = contextvars.copy_context()
    handler_context.run(coroutine.send, None)  # suspended inside the binding, as a waiting handler is
    assert handler_context[REQUEST_ID] == "req-1"
    contextvars.copy_context().run(coroutine.close)  # GeneratorExit thrown in; the finally runs elsewhere


def test_incoming_request_ids_are_kept_only_when_sane() -> None:
    assert accept_request_id("abc-123_x.y:z") == "abc-123_x.y:z"
    for bad in (None, "", "x" * 65, "has space", 'quote"', "line\nbreak"):
        generated = accept_request_id(bad)
        assert generated != bad and re.fullmatch(r"[0-9a-f-]{36}", generated)


# ---- the API process: request ids, landing page, readiness, metrics -----------------------------------


@pytest.fixture
async def app_with_metrics(settings: Settings, dev_server: WorkflowEnvironment) -> AsyncIterator[Any]:
    settings.metrics_port = free_port()
    app = create_app(settings, temporal=dev_server.client)
    async with app.router.lifespan_context(app):
        yield app


def client_of(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
    headers = {"sec-fetch-site": "same-origin"}
    return httpx.AsyncClient(transport=transport, base_url="https://portico.test", headers=headers)


async def test_request_id_is_returned_and_an_incoming_sane_one_kept(app_with_metrics: Any) -> None:
    async with client_of(app_with_metrics) as http:
        mine = await http.get("/healthz", headers={"X-Request-ID": "lb-7f3a"})
        assert mine.headers["x-request-id"] == "lb-7f3a"
        made = await http.get("/healthz", headers={"X-Request-ID": "<script>"})
        assert re.fullmatch(r"[0-9a-f-]{36}", made.headers["x-request-id"])
        assert (await http.get("/nowhere")).headers["x-request-id"]


async def test_landing_page_links_the_portal_and_the_workspace(app_with_metrics: Any) -> None:
    async with client_of(app_with_metrics) as http:
        page = await http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'href="/portal"' in page.text and 'href="/preparer"' in page.text


async def test_readyz_names_the_failing_check(app_with_metrics: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async with client_of(app_with_metrics) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {
            "database": "ok",
            "schema": "ok",
            "temporal": "ok",
            "storage": "ok",
        }

        def full_disk(key: str, data: bytes) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(app_with_metrics.state.resources.store, "put", full_disk)
        broken = await http.get("/readyz")
    assert broken.status_code == 503
    assert broken.json()["failing"] == ["storage"]
    assert "No space" not in broken.text  # the reason goes to the log, not to whoever asks


async def test_readyz_fails_on_an_empty_database(settings: Settings, dev_server: WorkflowEnvironment) -> None:
    app = create_app(settings, temporal=dev_server.client)
    async with app.router.lifespan_context(app), client_of(app) as http:
        from sqlalchemy import text
        from sqlmodel import SQLModel

        engine = app.state.resources.engine
        SQLModel.metadata.drop_all(engine)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        answer = await http.get("/readyz")
    assert answer.status_code == 503 and answer.json()["failing"] == ["schema"]


async def test_metrics_are_on_their_own_port_only(app_with_metrics: Any, settings: Settings) -> None:
    async with client_of(app_with_metrics) as http:
        assert (await http.get("/metrics")).status_code == 404  # never on the public port
        await http.get("/api/engagements/12345")  # 401: unauthenticated, but counted by template
    async with httpx.AsyncClient() as scraper:
        text = (await scraper.get(f"http://127.0.0.1:{settings.metrics_port}/metrics")).text
    assert (
        'portico_http_requests_total{method="GET",route="/api/engagements/{engagement_id}",status="401"}'
        in text
    )
    # The id is in no label, neither as a value nor in a path (a sample's value, a float such as
    # 1.79641271251234e+09, may hold the same digits by chance: only labels are quoted).
    assert '"12345"' not in text and "/12345" not in text
    assert 'route="<unmatched>"' in text  # /metrics itself, on the public port
    assert "portico_http_request_duration_seconds_bucket" in text
    assert "portico_database_metrics_up 1.0" in text


# ---- a whole journey: logs hold no secret, metrics count it -------------------------------------------


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """The JSON logging `portico api` and `portico worker` configure, at DEBUG, into a buffer."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    handler = configure_logging("json", "DEBUG", stream)
    # The test's own HTTP client (httpx) logs the URLs it calls; Portico's server does not use it.
    quiet = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.WARNING)
    yield stream
    root.removeHandler(handler)
    for old in saved[0]:
        root.addHandler(old)
    root.setLevel(saved[1])
    for logger, level in zip(quiet, levels, strict=True):
        logger.setLevel(level)


@pytest.fixture
async def metered_worker(
    settings: Settings, dev_server: WorkflowEnvironment
) -> AsyncIterator[tuple[Resources, int]]:
    """A worker whose Temporal runtime serves Prometheus metrics, as `portico worker` does when asked."""
    port = free_port()
    runtime = metrics_runtime(f"127.0.0.1:{port}")
    client = await Client.connect(
        dev_server.client.service_client.config.target_host,
        namespace=dev_server.client.namespace,
        data_converter=dev_server.client.data_converter,
        runtime=runtime,
    )
    resources = Resources.from_settings(settings)
    async with build_worker(client, resources):
        yield resources, port


async def wait_for_stage(http: httpx.AsyncClient, engagement_id: int, stage: str) -> None:
    for _ in range(200):
        body = (await http.get(f"/api/engagements/{engagement_id}")).json()
        if body["status"]["stage"] == stage:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"engagement stayed at {body['status']['stage']}, expected {stage}")


CHAT_FROM_CLIENT = "Here is my bank routing number for the refund: 0042 7731 secret-chat-sentinel"
CHAT_FROM_PREPARER = "Thanks, I also need the 1099-INT from your savings account, prep-chat-sentinel"


async def test_a_whole_journey_logs_no_secret_and_is_counted(
    captured_logs: io.StringIO,
    metered_worker: tuple[Resources, int],
    app_with_metrics: Any,
    settings: Settings,
) -> None:
    resources, worker_port = metered_worker
    email = make_preparer(resources)
    async with client_of(app_with_metrics) as preparer, client_of(app_with_metrics) as browser:
        await login_preparer(preparer, email)
        created = await preparer.post(
            "/api/engagements",
            json={"tax_year": 2025, "taxpayer": TAXPAYER},
            headers={"X-Request-ID": "journey-create-1"},
        )
        assert created.status_code == 201, created.text
        eid = created.json()["id"]
        sent = await preparer.post(
            f"/api/engagements/{eid}/invite", json={"role": "taxpayer", "channel": "email"}
        )
        assert sent.status_code == 200, sent.text
        await wait_for_stage(preparer, eid, "invited")
        token = invite_token(await latest(preparer, "invite", TAXPAYER["email"]))
        assert (await browser.get(f"/api/invitations/{token}")).status_code == 200

        person = Person(browser, TAXPAYER)
        await register_and_verify(person, token, preparer)
        await wait_for_stage(preparer, eid, "verified")
        wrong = await browser.post("/api/taxpayer/verify", json={"code": "000000"})  # a wrong code, logged?
        assert wrong.status_code >= 400

        assert (
            await browser.post("/api/taxpayer/messages", json={"body": CHAT_FROM_CLIENT})
        ).status_code == 201
        reply = await preparer.post(f"/api/engagements/{eid}/messages", json={"body": CHAT_FROM_PREPARER})
        assert reply.status_code == 201

        files = [("files", ("Form 8879.pdf", make_pdf(1, "Form 8879"), "application/pdf"))]
        docs = await preparer.post(
            f"/api/engagements/{eid}/documents", files=files, data={"signers": ["taxpayer"]}
        )
        assert docs.status_code == 200, docs.text
        doc_id = docs.json()["documents"][0]["id"]
        saved = await browser.put(
            "/api/taxpayer/signature", files={"image": ("s.png", signature_png(), "image/png")}
        )
        assert saved.status_code == 200, saved.text
        assert (await browser.post(f"/api/taxpayer/documents/{doc_id}/sign")).status_code == 200
        await wait_for_stage(preparer, eid, "completed")
        messages = await outbox(preparer)

    logs = captured_logs.getvalue()
    entries = [json.loads(line) for line in logs.splitlines()]  # every line is one JSON object
    assert entries and all({"timestamp", "level", "logger", "message"} <= entry.keys() for entry in entries)

    codes = {code for message in messages for code in re.findall(r"(?<!\d)\d{6}(?!\d)", message["body"])}
    assert codes, "the journey sent no code?"
    secrets = {
        TAXPAYER["ssn"],
        TAXPAYER["ssn"].replace("-", ""),
        token,
        token.split(".")[1],  # the token's signature part alone
        *codes,
        CHAT_FROM_CLIENT[-21:],
        CHAT_FROM_PREPARER[-19:],
        *(line for message in messages for line in message["body"].splitlines() if len(line) > 30),
    }
    found = sorted(secret for secret in secrets if secret in logs)
    assert not found, f"secrets in the logs: {found}"

    # The request id was bound for that request's lines and returned with its response.
    create_lines = [e for e in entries if e.get("request_id") == "journey-create-1"]
    assert any(e.get("route") == "/api/engagements" and e.get("status") == 201 for e in create_lines)
    # Requests are logged by route template, so an invitation link's token never reaches a log line.
    assert any(e.get("route") == "/api/invitations/{token}" for e in entries)

    async with httpx.AsyncClient() as scraper:
        api_text = (await scraper.get(f"http://127.0.0.1:{settings.metrics_port}/metrics")).text
        worker_text = (await scraper.get(f"http://127.0.0.1:{worker_port}/metrics")).text
    assert 'portico_engagements{stage="completed"} 1.0' in api_text
    assert re.search(r'portico_outbox_messages\{backend="outbox",status="sent"\} [1-9]', api_text), api_text
    assert re.search(r"portico_signing_duration_seconds_count\{[^}]*step=\"sign\"[^}]*\} 1", worker_text)
    assert re.search(r"portico_signing_duration_seconds_count\{[^}]*step=\"seal\"[^}]*\} 1", worker_text)
    assert re.search(
        r'portico_activity_duration_seconds_count\{[^}]*activity_type="record_transition"', worker_text
    )
    assert "temporal_activity_execution_latency" in worker_text  # the SDK's own metrics


def test_throttle_refusals_are_counted(resources: Resources) -> None:
    from core import throttle
    from core.metrics import THROTTLE_REFUSALS

    rule = throttle.Rule(free=1, base=60)
    counted = THROTTLE_REFUSALS.labels(scope="test-login:account")
    before = counted._value.get()
    throttle.attempt(resources.engine, "test-login:account", "someone", rule)
    with pytest.raises(throttle.Throttled):
        throttle.attempt(resources.engine, "test-login:account", "someone", rule)
    assert counted._value.get() == before + 1
