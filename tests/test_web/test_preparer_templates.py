"""A firm's own message wording: refused when it can't be used, sent when saved, previewed as sent, and
never a reason for a send to fail. On SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
from sqlmodel import Session, select
from starlette.requests import Request
from temporalio.testing import ActivityEnvironment

from activities.engagement import EngagementActivities, code_digest
from activities.types import MessageRequest
from core.config import Settings
from core.context import Resources
from core.models import Engagement, Firm, MessageTemplate, OutboxMessage, Preparer, Role, Signer
from messaging import wording as messages
from messaging.delivery import OutgoingMessage
from services import preparer_settings as firm_admin

CUSTOM_INVITE = "Hi {first_name}! {firm_name} set up your secure folder: {link}\nSee you soon."


@dataclass
class Firms:
    res: Resources
    acts: EngagementActivities
    ours: tuple[Preparer, int]  # (preparer, engagement id)
    theirs: tuple[Preparer, int]
    env: ActivityEnvironment

    def send(self, engagement_id: int, purpose: str, channel: str, key: str = "") -> Any:
        request = MessageRequest(
            idempotency_key=key or f"e{engagement_id}:{purpose}:{channel}",
            engagement_id=engagement_id,
            recipient="taxpayer",
            channel=channel,
            purpose=purpose,
            invite_seq=1,
        )
        return self.env.run(self.acts.send_message, request)

    def sent(self, engagement_id: int, purpose: str, channel: str) -> tuple[str, str]:
        """(subject, body) of the message in the outbox."""
        with Session(self.res.engine) as db:
            row = db.exec(
                select(OutboxMessage).where(
                    OutboxMessage.engagement_id == engagement_id,
                    OutboxMessage.purpose == purpose,
                    OutboxMessage.channel == channel,
                )
            ).one()
            return row.subject, self.res.cipher.decrypt_text(row.body_encrypted, "outbox")


def _firm_with_engagement(res: Resources, firm_name: str, email: str) -> tuple[Preparer, int]:
    with Session(res.engine, expire_on_commit=False) as db:
        firm = Firm(name=firm_name)
        db.add(firm)
        db.flush()
        preparer = Preparer(
            firm_id=firm.id or 0, email=email, name="Ada Preparer", password_hash="x", is_admin=True
        )
        db.add(preparer)
        db.flush()
        engagement = Engagement(firm_id=firm.id or 0, preparer_id=preparer.id or 0, tax_year=2025)
        db.add(engagement)
        db.flush()
        db.add(
            Signer(
                engagement_id=engagement.id or 0,
                role=Role.TAXPAYER,
                first_name="Shelby",
                last_name="Jones",
                ssn_encrypted=res.cipher.encrypt_text("123456789", "ssn"),
                ssn_last4_digest=res.cipher.digest("ssn-last4", "6789"),
                email=f"shelby@{firm_name.split()[0].lower()}.example.com",
                phone="+17025550197",
            )
        )
        db.commit()
        return preparer, engagement.id or 0


@pytest.fixture
def firms(db_settings: Settings) -> Iterator[Firms]:
    res = Resources.from_settings(db_settings)
    # No message backends: every message stays in the dev outbox, where the tests read it.
    acts = EngagementActivities(res, cast(Any, None), {})
    ours = _firm_with_engagement(res, "Lovelace Tax", "ada@lovelace.test")
    theirs = _firm_with_engagement(res, "Hopper Accounting", "grace@hopper.test")
    yield Firms(res, acts, ours, theirs, ActivityEnvironment())
    res.engine.dispose()


class RecordingBackend:
    """A provider that keeps what it is handed."""

    name = "recording"

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []

    def deliver(self, message: OutgoingMessage) -> str:
        self.sent.append(message)
        return f"id-{len(self.sent)}"


CLIENT_PURPOSES = (*messages.EDITABLE_PURPOSES, "login_code", "contact_code", "password_changed")


def test_every_client_message_is_from_the_firm_by_name_and_in_its_subject(firms: Firms) -> None:
    """The client knows the firm, not Portico: its name is the email's sender name and in every subject."""
    email, sms = RecordingBackend(), RecordingBackend()
    acts = EngagementActivities(firms.res, cast(Any, None), {"email": email, "sms": sms})
    for purpose in messages.EDITABLE_PURPOSES:  # what the workflow sends, through the outbox
        for channel in ("email", "sms"):
            request = MessageRequest(
                f"brand:{purpose}:{channel}", firms.ours[1], "taxpayer", channel, purpose, 1
            )
            firms.env.run(acts.send_message, request)
    assert len(email.sent) == len(sms.sent) == len(messages.EDITABLE_PURPOSES)
    for message in email.sent:
        assert message.sender_name == "Lovelace Tax"
        assert "Lovelace Tax" in message.subject, message
        assert "Portico" not in message.subject + message.body, message
    for message in sms.sent:
        assert "Lovelace Tax" in message.body and "Portico" not in message.body, message
    for purpose in CLIENT_PURPOSES:  # the codes and notices the portal sends itself use the same wording
        for channel in ("email", "sms"):
            ctx = messages.MessageContext("Lovelace Tax", "Shelby", channel, link="http://x", code="123456")
            rendered = messages.render(purpose, ctx)
            assert "Lovelace Tax" in (rendered.subject if channel == "email" else rendered.body), purpose
            assert "Portico" not in rendered.subject + rendered.body, purpose


def _request() -> Request:
    return Request({"type": "http", "headers": [(b"user-agent", b"pytest")], "client": ("203.0.113.5", 1)})


def _save(firms: Firms, purpose: str, channel: str, subject: str, body: str) -> dict[str, str]:
    with Session(firms.res.engine, expire_on_commit=False) as db:
        preparer = firms.ours[0]
        return firm_admin.save_template(db, _request(), preparer, purpose, channel, subject, body)


def _saved_templates(firms: Firms) -> list[MessageTemplate]:
    with Session(firms.res.engine) as db:
        return list(db.exec(select(MessageTemplate)))


def test_a_saved_template_is_what_the_client_gets_and_only_from_that_firm(firms: Firms) -> None:
    assert _save(firms, "invite", "email", "{firm_name} has a folder for you", CUSTOM_INVITE) == {}
    ours, theirs = firms.ours[1], firms.theirs[1]
    firms.send(ours, "invite", "email")
    firms.send(theirs, "invite", "email")

    subject, body = firms.sent(ours, "invite", "email")
    assert subject == "Lovelace Tax has a folder for you"
    assert re.fullmatch(
        r"Hi Shelby! Lovelace Tax set up your secure folder: http://portico\.test/invite/\S+\nSee you soon\.",
        body,
    ), body
    subject, body = firms.sent(theirs, "invite", "email")  # the other firm keeps Portico's wording
    assert subject == "Hopper Accounting invites you to your client portal"
    assert "uses a secure client portal to exchange and sign" in body and "secure folder" not in body
    # The text version of the same purpose was not reworded: Portico's wording there too.
    firms.send(ours, "invite", "sms")
    assert firms.sent(ours, "invite", "sms")[1].startswith(
        "Lovelace Tax: your tax documents portal is ready."
    )


def test_a_custom_code_message_carries_the_code_the_workflow_checks(firms: Firms) -> None:
    assert _save(firms, "code", "sms", "", "{firm_name} code: {code} ({code_minutes} min)") == {}
    engagement = firms.ours[1]
    result = firms.send(engagement, "code", "sms")
    _, body = firms.sent(engagement, "code", "sms")
    match = re.fullmatch(r"Lovelace Tax code: (\d{6}) \(10 min\)", body)
    assert match, body
    assert result.secret_digest == code_digest(firms.res, engagement, "taxpayer", match.group(1))


@pytest.mark.parametrize(
    ("purpose", "channel", "subject", "body", "field", "says"),
    [
        ("invite", "email", "Hi", "Hello {first_name}, go to {link} {tax_id}", "body", "Unknown placeholder"),
        ("invite", "email", "Hi {firm}", "Go to {link}", "subject", "Unknown placeholder {firm}"),
        ("invite", "sms", "", "Go to {link", "body", "A lone '{'"),
        ("invite", "sms", "", "Go to link} now", "body", "A lone '}'"),
        ("invite", "sms", "", "Go to {link.__class__}", "body", "Unknown placeholder"),
        ("invite", "email", "Hi", "Come and create your account!", "body", "must contain {link}"),
        ("invite_reminder", "sms", "", "Still waiting for you.", "body", "must contain {link}"),
        ("code", "sms", "", "Your code expires in {code_minutes} minutes.", "body", "must contain {code}"),
        ("code", "email", "Code {code}", "See the subject.", "body", "must contain {code}"),
    ],
)
def test_an_unusable_template_is_refused_when_saved(
    firms: Firms, purpose: str, channel: str, subject: str, body: str, field: str, says: str
) -> None:
    errors = _save(firms, purpose, channel, subject, body)
    assert says in errors.get(field, ""), errors
    assert _saved_templates(firms) == []
    assert firm_admin.preview(purpose, channel, subject, body, "Lovelace Tax") is None


def test_a_broken_stored_template_falls_back_to_portico_wording(
    firms: Firms, caplog: pytest.LogCaptureFixture
) -> None:
    """A row written around the checks (an older version, a hand edit) must not stop the invitation."""
    firm_id = firms.ours[0].firm_id
    with Session(firms.res.engine) as db:
        db.add(
            MessageTemplate(
                firm_id=firm_id, purpose="invite", channel="email", body="Join {firm_name at {link}"
            )
        )
        db.add(
            MessageTemplate(firm_id=firm_id, purpose="code", channel="email", body="Welcome, {first_name}.")
        )
        db.commit()
    with caplog.at_level(logging.WARNING, logger="messaging.wording"):
        assert firms.send(firms.ours[1], "invite", "email").status == "sent"
        assert firms.send(firms.ours[1], "code", "email").status == "sent"
    subject, body = firms.sent(firms.ours[1], "invite", "email")
    assert subject == "Lovelace Tax invites you to your client portal" and "/invite/" in body
    assert re.search(r"verification code is \d{6}", firms.sent(firms.ours[1], "code", "email")[1])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("invite (email)" in w and "lone '{'" in w for w in warnings), warnings
    assert any("code (email)" in w and "must contain {code}" in w for w in warnings), warnings


def test_the_preview_fills_the_wording_as_a_send_does() -> None:
    shown = firm_admin.preview("invite", "sms", "", "{firm_name}: {{portal}} {link}", "Hopper Accounting")
    assert shown is not None
    assert shown.body == "Hopper Accounting: {portal} https://portal.example.com/invite/abc123"
    ctx = messages.MessageContext("Hopper Accounting", "Shelby", "sms", link="https://x.test/i/1")
    sent = messages.render("invite", ctx, messages.Wording("", "{firm_name}: {{portal}} {link}"))
    assert sent.body == "Hopper Accounting: {portal} https://x.test/i/1"


def test_portico_wording_offered_in_the_editor_is_itself_a_valid_template() -> None:
    assert tuple(firm_admin.PLACEHOLDERS) == messages.PLACEHOLDER_NAMES
    for purpose, _ in firm_admin.EDITABLE:
        for channel, _ in firm_admin.CHANNELS:
            default = firm_admin.default_template(purpose, channel)
            assert firm_admin.template_problems(purpose, channel, default.subject, default.body) == {}


@pytest.mark.e2e
async def test_the_settings_page_and_the_api_refuse_a_broken_template(db_settings, api) -> None:  # type: ignore[no-untyped-def]
    from preparer_steps import Authenticator, api_login, enrol_directly, page_login, post_form

    res = Resources.from_settings(db_settings)
    ada = Authenticator(enrol_directly(res, "ada@lovelace.test", "Lovelace Tax"))
    grace = Authenticator(enrol_directly(res, "grace@hopper.test", "Hopper Accounting", "Grace Hopper"))
    url = "/preparer/settings/templates/code/sms"
    async with api.client() as page, api.client() as json_api, api.client() as other_firm:
        await page_login(page, "ada@lovelace.test", ada)
        refused = await post_form(page, url, url, {"body": "Hi {first_name}, your code: {cdoe}"})
        assert refused.status_code == 422 and "Unknown placeholder {cdoe}" in refused.text
        dropped = await post_form(page, url, url, {"body": "Hi {first_name}, check your app."})
        assert dropped.status_code == 422 and "must contain {code}" in dropped.text
        preview = await post_form(page, url, f"{url}/preview", {"body": "{firm_name}: {code} is yours"})
        assert "Lovelace Tax: 482913 is yours" in preview.text

        await api_login(json_api, "ada@lovelace.test", ada)
        api_url = "/api/firm/templates/code/sms"
        bad = await json_api.put(api_url, json={"body": "Your code is {code"})
        assert bad.status_code == 422 and "A lone '{'" in bad.json()["detail"], bad.text
        saved = await json_api.put(api_url, json={"body": "{firm_name} code {code}"})
        assert saved.status_code == 200 and saved.json()["custom"] is True, saved.text
        assert (await json_api.get("/api/firm/templates/code/sms")).json()[
            "body"
        ] == "{firm_name} code {code}"
        assert (await json_api.get("/api/firm/templates/nope/sms")).status_code == 404

        await api_login(other_firm, "grace@hopper.test", grace)
        theirs = (await other_firm.get(api_url)).json()
        assert theirs["custom"] is False and theirs["body"].startswith(
            "Your {firm_name} verification code is {code}"
        )
        assert (await json_api.delete(api_url)).json()["custom"] is False
    res.engine.dispose()
