"""Delivery adapters: send one already-rendered message through an email or SMS provider.

Idempotency and outbox bookkeeping belong to the caller. These adapters only deliver, return the
provider's message id, and sort failures into permanent (do not retry) and transient (retry later).
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import Literal, Protocol
from urllib.parse import SplitResult, urlsplit, urlunsplit

from python_http_client.exceptions import HTTPError as SendGridHTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Email, Mail
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client as TwilioClient

Channel = Literal["email", "sms"]


@dataclass(frozen=True)
class OutgoingMessage:
    """One rendered message, ready to hand to a provider."""

    channel: Channel
    """Which kind of backend may carry it."""
    to: str
    """Email address, or E.164 phone number for SMS."""
    subject: str
    """Email subject; ignored for SMS."""
    body: str
    """Plain-text body."""
    sender_name: str = ""
    """Email From display name (the firm's name), shown instead of the configured sender's name; the
    configured address stays. Empty: the configured From as it is."""


def from_header(sender: str, message: OutgoingMessage) -> tuple[str, str]:
    """(display name, address) of the From header for `message` sent from the configured `sender`."""
    name, address = parseaddr(sender)
    return (message.sender_name or name), address


class DeliveryError(Exception):
    """The provider did not accept the message.

    `permanent` is True when retrying cannot help (bad address, credentials refused) and False
    when the failure is momentary (network trouble, provider 5xx, rate limiting).
    """

    def __init__(self, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent

    def __reduce__(self) -> tuple[type[DeliveryError], tuple[str, bool]]:
        # Keeps `permanent` when the error crosses a process boundary (pickling drops extra attributes).
        return (type(self), (str(self), self.permanent))


class MessageBackend(Protocol):
    """Sends one message synchronously (from a sync activity on the worker's thread pool)."""

    name: str

    def deliver(self, message: OutgoingMessage) -> str:
        """Send `message` and return the provider's message id; raise DeliveryError on failure."""
        ...


@dataclass(frozen=True)
class SmtpConfig:
    """How to reach an SMTP submission server."""

    host: str
    """Server host name."""
    port: int
    """Server port (587 for submission with STARTTLS, 25 for a local relay)."""
    username: str
    """Login name; empty means the server takes mail without AUTH."""
    password: str = field(repr=False)
    """Login password; kept out of repr so it never lands in logs."""
    starttls: bool
    """Upgrade the connection with STARTTLS before logging in."""
    sender: str
    """From header, e.g. "Portico <no-reply@example.com>"; its address is also the envelope sender."""
    timeout: float = 30.0
    """Seconds to wait on any socket operation."""


@dataclass(frozen=True)
class SendGridConfig:
    """Credentials and endpoint for the SendGrid v3 Mail Send API."""

    api_key: str = field(repr=False)
    """API key with Mail Send permission; kept out of repr."""
    sender: str
    """From address, e.g. "Portico <no-reply@example.com>" (must be a verified sender)."""
    host: str = "https://api.sendgrid.com"
    """API base URL; the EU region or a test server can be put here."""
    timeout: float = 30.0
    """Seconds to wait for the API."""


@dataclass(frozen=True)
class TwilioConfig:
    """Credentials and sender number for Twilio Programmable Messaging."""

    account_sid: str
    """Account SID (AC...)."""
    auth_token: str = field(repr=False)
    """Auth token; kept out of repr."""
    from_number: str
    """Sending number in E.164 form."""
    api_base: str = ""
    """Empty for Twilio's real servers; otherwise a base URL (http://127.0.0.1:PORT) to send to instead."""
    timeout: float = 30.0
    """Seconds to wait for the API."""


def _is_permanent_http_status(status: int) -> bool:
    # A 4xx says the request itself is wrong (bad number, bad key), so a retry would fail the same way;
    # 408 and 429 are the exceptions that ask to come back later, like every 5xx.
    return 400 <= status < 500 and status not in (408, 429)


def _fallback_message_id(provider: str) -> str:
    # The caller needs some id to record; a provider that accepted the message but named no id
    # must not be retried (that would send it twice), so make a unique local one.
    return f"{provider}-{uuid.uuid4().hex}"


def _decode(reply: bytes | str | None) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply or "")


def _require_channel(message: OutgoingMessage, channel: Channel, backend: str) -> None:
    if message.channel != channel:
        raise DeliveryError(f"{backend} cannot deliver {message.channel} messages", permanent=True)


class SmtpBackend:
    """Email through an SMTP server, one connection per message."""

    name: str = "smtp"

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    def deliver(self, message: OutgoingMessage) -> str:
        _require_channel(message, "email", self.name)
        email = self._build_email(message)
        try:
            self._send(email)
        except OSError as exc:  # smtplib.SMTPException is an OSError, as are socket and TLS failures
            raise _smtp_failure(exc) from exc
        return str(email["Message-ID"])

    def _build_email(self, message: OutgoingMessage) -> EmailMessage:
        email = EmailMessage()
        try:
            name, address = from_header(self._config.sender, message)
            email["From"] = formataddr((name, address)) if name else address
            email["To"] = message.to
            email["Subject"] = message.subject
        except ValueError as exc:  # a CR/LF in a header would be header injection; the policy refuses it
            raise DeliveryError(f"cannot build email headers: {exc}", permanent=True) from exc
        email["Date"] = formatdate(usegmt=True)
        email["Message-ID"] = make_msgid(domain=_address_domain(self._config.sender))
        email.set_content(message.body)
        return email

    def _send(self, email: EmailMessage) -> None:
        config = self._config
        smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        try:
            if config.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if config.username:
                smtp.login(config.username, config.password)
            refused = smtp.send_message(email)
            if refused:  # only possible with several recipients, but never report a partial send as success
                raise smtplib.SMTPRecipientsRefused(refused)
        finally:
            _close_quietly(smtp)


def _address_domain(sender: str) -> str:
    # Without a domain make_msgid would call socket.getfqdn(), which can stall on a bad resolver.
    _, address = parseaddr(sender)
    return address.rpartition("@")[2] or "portico.invalid"


def _close_quietly(smtp: smtplib.SMTP) -> None:
    # Once DATA is accepted the message is on its way; a failed QUIT must not turn that into a
    # retry and a duplicate email.
    try:
        smtp.quit()
    except OSError:
        smtp.close()


def _smtp_failure(exc: OSError) -> DeliveryError:
    # RFC 5321: 5yz replies are permanent, 4yz are "try again later".
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return DeliveryError(f"SMTP refused recipients: {exc.recipients}", permanent=min(codes) >= 500)
    if isinstance(exc, smtplib.SMTPResponseException):  # sender, data, auth, helo, connect refusals
        reply = _decode(exc.smtp_error)
        return DeliveryError(f"SMTP {exc.smtp_code}: {reply}", permanent=exc.smtp_code >= 500)
    if isinstance(exc, smtplib.SMTPNotSupportedError):  # e.g. no STARTTLS: a configuration problem
        return DeliveryError(f"SMTP server lacks a required feature: {exc}", permanent=True)
    return DeliveryError(f"SMTP server unreachable: {exc!r}", permanent=False)


class SendGridBackend:
    """Email through SendGrid's v3 Mail Send API, using the official SDK."""

    name: str = "sendgrid"

    def __init__(self, config: SendGridConfig) -> None:
        self._config = config
        self._client = SendGridAPIClient(api_key=config.api_key, host=config.host)

    def deliver(self, message: OutgoingMessage) -> str:
        _require_channel(message, "email", self.name)
        name, address = from_header(self._config.sender, message)
        mail = Mail(
            from_email=Email(address, name or None),
            to_emails=message.to,
            subject=message.subject,
            plain_text_content=message.body,
        )
        try:
            # The fluent call behind SendGridAPIClient.send(); used directly because only it takes a timeout.
            response = self._client.client.mail.send.post(
                request_body=mail.get(), timeout=self._config.timeout
            )
        except SendGridHTTPError as exc:
            raise DeliveryError(
                f"SendGrid answered {exc.status_code}: {_decode(exc.body)}",
                permanent=_is_permanent_http_status(exc.status_code),
            ) from exc
        except OSError as exc:  # urllib's URLError, timeouts, refused connections
            raise DeliveryError(f"SendGrid unreachable: {exc!r}", permanent=False) from exc
        message_id = response.headers.get("X-Message-Id")
        return str(message_id) if message_id else _fallback_message_id(self.name)


class _RebasingHttpClient(TwilioHttpClient):
    """The SDK's own HTTP client, but every request goes to `api_base` instead of *.twilio.com.

    A custom `http_client` is the SDK's documented extension point for changing requests
    (twilio-python advanced-examples/custom-http-client.md); the SDK has no base-URL setting.
    """

    def __init__(self, api_base: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._base = urlsplit(api_base)
        if not (self._base.scheme and self._base.netloc):
            raise ValueError(f"Twilio api_base must be an absolute URL, got {api_base!r}")

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        return super().request(
            method,
            _rebase_url(url, self._base),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


def _rebase_url(url: str, base: SplitResult) -> str:
    # Keep the API path (/2010-04-01/Accounts/...) and query; swap scheme and host, prefixing any base path.
    parts = urlsplit(url)
    return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + parts.path, parts.query, ""))


class TwilioBackend:
    """SMS through Twilio Programmable Messaging, using the official SDK."""

    name: str = "twilio"

    def __init__(self, config: TwilioConfig) -> None:
        self._config = config
        http_client = (
            _RebasingHttpClient(config.api_base, config.timeout)
            if config.api_base
            else TwilioHttpClient(timeout=config.timeout)
        )
        # environment={} stops the SDK reading TWILIO_* variables: the config is the only source of truth.
        self._client = TwilioClient(
            config.account_sid, config.auth_token, http_client=http_client, environment={}
        )

    def deliver(self, message: OutgoingMessage) -> str:
        _require_channel(message, "sms", self.name)
        try:
            sent = self._client.messages.create(
                to=message.to, from_=self._config.from_number, body=message.body
            )
        except (TwilioRestException, TwilioServiceException) as exc:
            raise DeliveryError(
                f"Twilio answered {exc.status}: {_twilio_reason(exc)}",
                permanent=_is_permanent_http_status(exc.status),
            ) from exc
        except OSError as exc:  # requests' ConnectionError and Timeout are OSErrors
            raise DeliveryError(f"Twilio unreachable: {exc!r}", permanent=False) from exc
        return str(sent.sid) if sent.sid else _fallback_message_id(self.name)


def _twilio_reason(exc: TwilioRestException | TwilioServiceException) -> str:
    # str() of these exceptions adds terminal colours when stderr is a tty; build a plain reason instead.
    if isinstance(exc, TwilioServiceException):
        return f"{exc.title} (code {exc.code}) {exc.detail or ''}".strip()
    return f"{exc.msg} (code {exc.code})"
