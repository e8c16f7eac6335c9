"""One-time codes the API sends itself (a new browser's login code, a new address's code): through the
outbox off the event loop, audited once sent, a 503 when the provider cannot take them just now."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlmodel import Session, select

from core.actor import Actor
from core.config import Settings
from core.context import Resources
from core.models import AuditEntry, OutboxMessage
from messaging.delivery import DeliveryError, OutgoingMessage
from messaging.outbox import Outbox
from services import ServiceError
from services.codes import CodeMessage, send_code

ACTOR = Actor("taxpayer", "taxpayer", "203.0.113.9", "pytest")
MESSAGE = OutgoingMessage("sms", "+17025550197", "", "Your code is 123456")


class Provider:
    name = "fake-sms"

    def __init__(self, error: DeliveryError | None = None) -> None:
        self.error = error
        self.delivered: list[OutgoingMessage] = []

    def deliver(self, message: OutgoingMessage) -> str:
        if self.error is not None:
            raise self.error
        self.delivered.append(message)
        return f"id-{len(self.delivered)}"


@pytest.fixture
def db_resources(db_settings: Settings) -> Iterator[Resources]:
    resources = Resources.from_settings(db_settings)
    yield resources
    resources.engine.dispose()


def audited(resources: Resources) -> list[tuple[str, dict[str, str]]]:
    with Session(resources.engine) as db:
        return [(e.action, json.loads(e.detail)) for e in db.exec(select(AuditEntry)).all()]


async def test_a_sent_code_is_audited_and_goes_out_once(db_resources: Resources) -> None:
    provider = Provider()
    outbox = Outbox(db_resources, {"sms": provider})
    code = CodeMessage("login-code:1", 7, "login_code", MESSAGE)
    with Session(db_resources.engine) as db:
        await send_code(db, outbox, code, "login.code_sent", ACTOR, {"channel": "sms"})
        await send_code(db, outbox, code, "login.code_sent", ACTOR, {"channel": "sms"})  # a retried request
    assert provider.delivered == [MESSAGE]
    assert audited(db_resources)[0] == ("login.code_sent", {"channel": "sms"})
    with Session(db_resources.engine) as db:
        row = db.exec(select(OutboxMessage)).one()
        assert (row.idempotency_key, row.engagement_id, row.purpose) == ("login-code:1", 7, "login_code")


async def test_a_code_the_provider_cannot_take_now_is_a_503_and_not_audited(db_resources: Resources) -> None:
    outbox = Outbox(db_resources, {"sms": Provider(DeliveryError("timed out", permanent=False))})
    code = CodeMessage("contact-code:1", 7, "contact_code", MESSAGE)
    with Session(db_resources.engine) as db, pytest.raises(ServiceError) as refused:
        await send_code(db, outbox, code, "account.contact_code_sent", ACTOR, {"what": "phone"})
    assert refused.value.status_code == 503 and "Try again shortly" in refused.value.message
    assert audited(db_resources) == []


async def test_a_code_refused_for_good_is_a_clear_422_not_code_sent(db_resources: Resources) -> None:
    outbox = Outbox(db_resources, {"sms": Provider(DeliveryError("unreachable number", permanent=True))})
    code = CodeMessage("login-code:2", 7, "login_code", MESSAGE)
    with Session(db_resources.engine) as db, pytest.raises(ServiceError) as refused:
        await send_code(db, outbox, code, "login.code_sent", ACTOR, {"channel": "sms"})
    assert refused.value.status_code == 422 and "no code is on its way" in refused.value.message
    assert audited(db_resources) == [("code.delivery_refused", {"channel": "sms", "purpose": "login_code"})]
