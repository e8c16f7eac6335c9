"""One factory for the worker, reused by `portico worker`, `portico up` and the tests."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from activities import pdfsign
from activities.delivery import (
    MessageBackend,
    SendGridBackend,
    SendGridConfig,
    SmtpBackend,
    SmtpConfig,
    TwilioBackend,
    TwilioConfig,
)
from activities.engagement import EngagementActivities
from core.config import Settings
from core.context import Resources
from workflows.client import connect
from workflows.engagement import EngagementWorkflow

log = logging.getLogger("portico.worker")


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


def load_pdf_signer(settings: Settings) -> pdfsign.signers.SimpleSigner:
    """Loads the signing key once per worker; a broken key stops start-up, not the first signature."""
    if settings.signing_key is not None:
        return pdfsign.load_signer(
            settings.signing_key,
            settings.signing_cert,
            settings.signing_chain,
            settings.signing_key_passphrase.get_secret_value().encode() or None,
        )
    if not settings.is_development and settings.environment != "test":
        raise pdfsign.SigningSetupError("PORTICO_SIGNING_KEY is required outside development")
    paths, created = pdfsign.ensure_dev_certificates(settings.data_dir)
    if created:
        log.warning("created a development signing CA and certificate in %s", paths.ca_cert.parent)
    return pdfsign.load_signer(paths.signing_key, paths.signing_cert, [paths.ca_cert])


def build_worker(
    client: Client, resources: Resources, *, task_queue: str | None = None, activity_threads: int = 16
) -> Worker:
    acts = EngagementActivities(
        resources, load_pdf_signer(resources.settings), message_backends(resources.settings)
    )
    return Worker(
        client,
        task_queue=task_queue or resources.settings.task_queue,
        workflows=[EngagementWorkflow],
        activities=acts.all(),
        activity_executor=ThreadPoolExecutor(activity_threads),
        max_concurrent_activities=activity_threads,
    )


async def run_worker(settings: Settings) -> None:
    resources = Resources.from_settings(settings)
    client = await connect(settings, resources.cipher)
    worker = build_worker(client, resources)
    log.info("worker polling %s on %s", settings.task_queue, settings.temporal_address)
    await worker.run()


def main(settings: Settings) -> None:
    asyncio.run(run_worker(settings))
