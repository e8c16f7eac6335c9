"""The delivery backend for each channel, as the settings choose them (shared by the worker and the API)."""

from __future__ import annotations

from core.config import Settings
from messaging.delivery import (
    MessageBackend,
    SendGridBackend,
    SendGridConfig,
    SmtpBackend,
    SmtpConfig,
    TwilioBackend,
    TwilioConfig,
)


def message_backends(settings: Settings) -> dict[str, MessageBackend]:
    """The delivery backend per channel; a channel left out stays in the outbox (development)."""
    backends: dict[str, MessageBackend] = {}
    if settings.email_backend == "smtp":
        backends["email"] = SmtpBackend(
            SmtpConfig(
                host=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=settings.smtp_password.get_secret_value(),
                starttls=settings.smtp_starttls,
                sender=settings.email_from,
            )
        )
    elif settings.email_backend == "sendgrid":
        backends["email"] = SendGridBackend(
            SendGridConfig(
                api_key=settings.sendgrid_api_key.get_secret_value(),
                sender=settings.email_from,
                host=settings.sendgrid_host,
            )
        )
    if settings.sms_backend == "twilio":
        backends["sms"] = TwilioBackend(
            TwilioConfig(
                account_sid=settings.twilio_account_sid,
                auth_token=settings.twilio_auth_token.get_secret_value(),
                from_number=settings.twilio_from_number,
                api_base=settings.twilio_api_base,
            )
        )
    return backends
