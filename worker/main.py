"""One factory for the worker, reused by `portico worker`, `portico up` and the tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.disposal import DisposalActivities
from activities.engagement import EngagementActivities
from core import audit_chain
from core.config import Settings
from core.context import Resources
from esign import pdfsign
from messaging.backends import message_backends
from worker.schedules import ensure_disposal_schedule
from worker.telemetry import WorkerTelemetry, metrics_runtime
from workflows.client import connect
from workflows.disposal import DisposalWorkflow
from workflows.engagement import EngagementWorkflow

log = logging.getLogger("portico.worker")


def load_pdf_signer(settings: Settings) -> pdfsign.signers.SimpleSigner:
    """Loads the signing key once per worker; a broken key stops start-up, not the first signature."""
    try:
        signer = _load_configured_signer(settings)
        _off_the_loop(pdfsign.self_test, signer)
    except pdfsign.SigningSetupError as error:
        log.error("cannot start: %s", error)  # the one line an operator needs, above the traceback
        raise
    if settings.tsa_url:
        _check_time_stamp_authority(settings, signer)
    return signer


def _off_the_loop(function: Callable[..., object], *args: object) -> None:
    # pyHanko's sync API calls asyncio.run, which refuses to run where an event loop is already running
    # (build_worker is called from async code); a short-lived thread has none.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(function, *args).result()


def _load_configured_signer(settings: Settings) -> pdfsign.signers.SimpleSigner:
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


def _check_time_stamp_authority(settings: Settings, signer: pdfsign.signers.SimpleSigner) -> None:
    # Also measures the token size once, so the first B-T signature reserves the right space. A TSA that
    # is down now may be back by the first signature (those retry), so this warns instead of failing.
    timestamper = pdfsign.timestamper_for(settings.tsa_url, settings.tsa_timeout_seconds)
    try:
        _off_the_loop(pdfsign.contents_reservation, signer, timestamper)
    except Exception as error:
        log.warning("time-stamp authority %s does not answer yet: %s", settings.tsa_url, error)
    else:
        log.info("signatures are time-stamped by %s (PAdES B-T, B-LT and a B-LTA seal)", settings.tsa_url)


def build_worker(
    client: Client, resources: Resources, *, task_queue: str | None = None, activity_threads: int = 16
) -> Worker:
    acts = EngagementActivities(
        resources, load_pdf_signer(resources.settings), message_backends(resources.settings)
    )
    return Worker(
        client,
        task_queue=task_queue or resources.settings.task_queue,
        workflows=[EngagementWorkflow, DisposalWorkflow],
        activities=[*acts.all(), *DisposalActivities(resources).all()],
        activity_executor=ThreadPoolExecutor(activity_threads),
        max_concurrent_activities=activity_threads,
        max_cached_workflows=resources.settings.worker_cache_size,
        graceful_shutdown_timeout=timedelta(seconds=10),
        interceptors=[WorkerTelemetry()],
    )


async def run_worker(settings: Settings) -> None:
    resources = Resources.from_settings(settings)
    runtime = None
    if settings.worker_metrics_port is not None:
        runtime = metrics_runtime(f"{settings.metrics_host}:{settings.worker_metrics_port}")
        log.info("metrics on http://%s:%s/metrics", settings.metrics_host, settings.worker_metrics_port)
    client = await connect(settings, resources.cipher, runtime=runtime)
    worker = build_worker(client, resources)
    await ensure_disposal_schedule(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    log.info("worker polling %s on %s", settings.task_queue, settings.temporal_address)
    sealer = asyncio.create_task(_seal_audit_log(resources, stop))
    async with worker:  # on exit: stop polling, let running activities finish (graceful_shutdown_timeout)
        await stop.wait()
    await sealer
    log.info("worker stopped")


async def _seal_audit_log(resources: Resources, stop: asyncio.Event, every: float = 2.0) -> None:
    """Links new audit entries into the hash chain a moment after they are written."""
    chain_key = audit_chain.chain_key(resources.cipher)
    while not stop.is_set():
        try:
            await asyncio.to_thread(audit_chain.seal_pending, resources.engine, chain_key)
        except Exception:  # a database hiccup must not stop the worker; the next round catches up
            log.exception("sealing the audit log failed; retrying")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


def main(settings: Settings) -> None:
    asyncio.run(run_worker(settings))
