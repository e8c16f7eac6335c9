"""Delivery adapters against a real local SMTP server and local stand-ins for the SendGrid and Twilio APIs."""

from __future__ import annotations

import base64
import json
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from fake_providers import CannedReply, FakeHttpApi, fake_http_api, free_port

from messaging.delivery import (
    DeliveryError,
    MessageBackend,
    OutgoingMessage,
    SendGridBackend,
    SendGridConfig,
    SmtpBackend,
    SmtpConfig,
    TwilioBackend,
    TwilioConfig,
)

SENDER = "Portico <no-reply@portico.test>"
EMAIL = OutgoingMessage(
    channel="email", to="client@example.test", subject="Your 8879 is ready", body="Sign here."
)
SMS = OutgoingMessage(channel="sms", to="+15005550006", subject="ignored", body="Your documents are ready.")
REFUSED_ADDRESS = "nobody@example.test"
ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "twilio-test-token"
SENDGRID_KEY = "SG.test-key"


@pytest.fixture(autouse=True)
def no_http_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both SDKs honour proxy variables; a proxy set on a CI machine must not intercept 127.0.0.1."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


# --- SMTP -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class RecordingSmtpHandler:
    """aiosmtpd handler that keeps what it receives and refuses one address the way a real server does."""

    def __init__(self) -> None:
        self.received: list[ReceivedMail] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address == REFUSED_ADDRESS:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def accept_only_portico(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    credentials = (auth_data.login, auth_data.password) if isinstance(auth_data, LoginPassword) else None
    ok = credentials == (b"portico", b"s3cret")
    # handled=False makes aiosmtpd answer the refusal itself (535), as a real server would.
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[tuple[RecordingSmtpHandler, int]]:
    handler = RecordingSmtpHandler()
    # AUTH over plain text is fine on loopback; production servers require STARTTLS first.
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=accept_only_portico,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


def smtp_backend(port: int, username: str = "portico", password: str = "s3cret") -> SmtpBackend:
    return SmtpBackend(
        SmtpConfig(
            host="127.0.0.1",
            port=port,
            username=username,
            password=password,
            starttls=False,
            sender=SENDER,
            timeout=5,
        )
    )


def test_smtp_delivers_with_envelope_headers_and_message_id(
    smtp_server: tuple[RecordingSmtpHandler, int],
) -> None:
    handler, port = smtp_server

    message_id = smtp_backend(port).deliver(EMAIL)

    [mail] = handler.received
    assert mail.mail_from == "no-reply@portico.test"
    assert mail.rcpt_tos == [EMAIL.to]
    assert mail.message["Subject"] == EMAIL.subject
    assert mail.message["From"] == SENDER
    assert mail.message["To"] == EMAIL.to
    assert mail.message["Message-ID"] == message_id
    assert message_id.startswith("<") and message_id.endswith("@portico.test>")
    assert mail.message.get_content().strip() == EMAIL.body


def test_smtp_sends_in_the_firms_name_from_the_configured_address(
    smtp_server: tuple[RecordingSmtpHandler, int],
) -> None:
    handler, port = smtp_server

    smtp_backend(port).deliver(replace(EMAIL, sender_name="Müller & Söhne, Steuerberatung"))

    [mail] = handler.received
    assert mail.mail_from == "no-reply@portico.test"
    assert mail.message["From"].addresses[0].display_name == "Müller & Söhne, Steuerberatung"
    assert mail.message["From"].addresses[0].addr_spec == "no-reply@portico.test"


def test_smtp_refused_recipient_is_permanent(smtp_server: tuple[RecordingSmtpHandler, int]) -> None:
    handler, port = smtp_server

    with pytest.raises(DeliveryError) as caught:
        smtp_backend(port).deliver(OutgoingMessage("email", REFUSED_ADDRESS, "Hi", "Body"))

    assert caught.value.permanent is True
    assert "550" in str(caught.value)
    assert handler.received == []


def test_smtp_refused_login_is_permanent(smtp_server: tuple[RecordingSmtpHandler, int]) -> None:
    _, port = smtp_server

    with pytest.raises(DeliveryError) as caught:
        smtp_backend(port, password="wrong").deliver(EMAIL)

    assert caught.value.permanent is True


def test_smtp_unreachable_server_is_transient() -> None:
    with pytest.raises(DeliveryError) as caught:
        smtp_backend(free_port()).deliver(EMAIL)

    assert caught.value.permanent is False


def test_smtp_header_injection_is_refused_before_connecting() -> None:
    with pytest.raises(DeliveryError) as caught:
        smtp_backend(free_port()).deliver(
            OutgoingMessage("email", EMAIL.to, "Hi\r\nBcc: x@evil.test", "Body")
        )

    assert caught.value.permanent is True


# --- SendGrid ---------------------------------------------------------------------------------------

SENDGRID_ACCEPTED = CannedReply(status=202, headers={"X-Message-Id": "sg-abc123"})


def sendgrid_backend(api: FakeHttpApi) -> SendGridBackend:
    return SendGridBackend(SendGridConfig(api_key=SENDGRID_KEY, sender=SENDER, host=api.base_url, timeout=5))


def test_sendgrid_sends_the_documented_request_and_returns_message_id() -> None:
    with fake_http_api(SENDGRID_ACCEPTED) as api:
        message_id = sendgrid_backend(api).deliver(EMAIL)

    assert message_id == "sg-abc123"
    [request] = api.requests
    assert (request.method, request.path) == ("POST", "/v3/mail/send")
    assert request.headers["authorization"] == f"Bearer {SENDGRID_KEY}"
    assert request.headers["content-type"] == "application/json"
    payload = json.loads(request.body)
    assert payload["from"] == {"email": "no-reply@portico.test", "name": "Portico"}
    assert payload["personalizations"] == [{"to": [{"email": EMAIL.to}]}]
    assert payload["subject"] == EMAIL.subject
    assert payload["content"] == [{"type": "text/plain", "value": EMAIL.body}]


def test_sendgrid_sends_in_the_firms_name_from_the_verified_sender() -> None:
    with fake_http_api(SENDGRID_ACCEPTED) as api:
        sendgrid_backend(api).deliver(replace(EMAIL, sender_name="Lovelace Tax"))

    payload = json.loads(api.requests[0].body)
    assert payload["from"] == {"email": "no-reply@portico.test", "name": "Lovelace Tax"}


def test_sendgrid_without_message_id_header_still_returns_an_id() -> None:
    with fake_http_api(CannedReply(status=202)) as api:
        message_id = sendgrid_backend(api).deliver(EMAIL)

    assert message_id.startswith("sendgrid-")


@pytest.mark.parametrize(("status", "permanent"), [(401, True), (400, True), (429, False), (503, False)])
def test_sendgrid_error_status_is_classified(status: int, permanent: bool) -> None:
    error_body = json.dumps({"errors": [{"message": "nope"}]}).encode()
    with (
        fake_http_api(CannedReply(status=status, body=error_body)) as api,
        pytest.raises(DeliveryError) as caught,
    ):
        sendgrid_backend(api).deliver(EMAIL)

    assert caught.value.permanent is permanent
    assert str(status) in str(caught.value)


def test_sendgrid_unreachable_is_transient() -> None:
    backend = SendGridBackend(
        SendGridConfig(api_key=SENDGRID_KEY, sender=SENDER, host=f"http://127.0.0.1:{free_port()}", timeout=5)
    )

    with pytest.raises(DeliveryError) as caught:
        backend.deliver(EMAIL)

    assert caught.value.permanent is False


# --- Twilio -----------------------------------------------------------------------------------------

TWILIO_SID = "SM" + "1" * 32
TWILIO_CREATED = CannedReply(
    status=201,
    headers={"Content-Type": "application/json"},
    body=json.dumps(
        {"sid": TWILIO_SID, "account_sid": ACCOUNT_SID, "status": "queued", "to": SMS.to, "body": SMS.body}
    ).encode(),
)


def twilio_backend(api_base: str) -> TwilioBackend:
    return TwilioBackend(
        TwilioConfig(
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            from_number="+15005550001",
            api_base=api_base,
            timeout=5,
        )
    )


def test_twilio_sends_the_documented_request_and_returns_sid() -> None:
    with fake_http_api(TWILIO_CREATED) as api:
        sid = twilio_backend(api.base_url).deliver(SMS)

    assert sid == TWILIO_SID
    [request] = api.requests
    assert (request.method, request.path) == ("POST", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
    expected_auth = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected_auth}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.body.decode(), strict_parsing=True) == {
        "To": [SMS.to],
        "From": ["+15005550001"],
        "Body": [SMS.body],
    }


def test_twilio_api_base_with_a_path_prefix_keeps_the_api_path() -> None:
    with fake_http_api(TWILIO_CREATED) as api:
        twilio_backend(api.base_url + "/relay/").deliver(SMS)

    assert api.requests[0].path == f"/relay/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


@pytest.mark.parametrize(("status", "permanent"), [(401, True), (400, True), (429, False), (503, False)])
def test_twilio_error_status_is_classified(status: int, permanent: bool) -> None:
    error_body = json.dumps({"code": 20003, "message": "Authenticate", "status": status}).encode()
    reply = CannedReply(status=status, body=error_body, headers={"Content-Type": "application/json"})
    with fake_http_api(reply) as api, pytest.raises(DeliveryError) as caught:
        twilio_backend(api.base_url).deliver(SMS)

    assert caught.value.permanent is permanent
    assert str(status) in str(caught.value)


def test_twilio_unreachable_is_transient() -> None:
    with pytest.raises(DeliveryError) as caught:
        twilio_backend(f"http://127.0.0.1:{free_port()}").deliver(SMS)

    assert caught.value.permanent is False


def test_twilio_rejects_relative_api_base() -> None:
    with pytest.raises(ValueError, match="absolute URL"):
        twilio_backend("127.0.0.1:8080")


# --- Shared behaviour ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        (smtp_backend(25), SMS),
        (SendGridBackend(SendGridConfig(api_key=SENDGRID_KEY, sender=SENDER)), SMS),
        (twilio_backend(""), EMAIL),
    ],
    ids=["smtp", "sendgrid", "twilio"],
)
def test_backend_refuses_the_wrong_channel_without_sending(
    backend: MessageBackend, message: OutgoingMessage
) -> None:
    with pytest.raises(DeliveryError) as caught:
        backend.deliver(message)

    assert caught.value.permanent is True


def test_delivery_error_keeps_permanent_through_pickling() -> None:
    restored = pickle.loads(pickle.dumps(DeliveryError("bounced", permanent=True)))

    assert (str(restored), restored.permanent) == ("bounced", True)


def test_secrets_stay_out_of_config_repr() -> None:
    configs = [
        SmtpConfig("h", 25, "u", "smtp-secret", False, SENDER),
        SendGridConfig(api_key="sg-secret", sender=SENDER),
        TwilioConfig(account_sid=ACCOUNT_SID, auth_token="tw-secret", from_number="+15005550001"),
    ]

    assert not any(secret in repr(configs) for secret in ("smtp-secret", "sg-secret", "tw-secret"))
