"""Prometheus metrics of the API process, and the /metrics endpoint on its own port.

Counters and histograms that code updates as things happen live in prometheus_client's default registry
(one per process). Numbers the database already knows (engagements by stage, outbox messages, reminders)
are read at scrape time by `DatabaseCollector`, so every API process reports the same truth whichever of
them is scraped. The worker's metrics (the Temporal SDK's own, activity and signing durations) are served
by the worker on its own port: worker/telemetry.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.models import EngagementStatus, OutboxMessage

log = logging.getLogger("portico.metrics")

HTTP_REQUESTS = Counter(
    "portico_http_requests",
    "HTTP requests answered, by route template (not the raw path) and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "portico_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
THROTTLE_REFUSALS = Counter(
    "portico_throttle_refusals",
    "Attempts refused because the account or IP must wait (core/throttle.py), by throttled step.",
    ["scope"],
)

REMINDER_PURPOSE_SUFFIX = "_reminder"


class DatabaseCollector(Collector):
    """Reads the projection and the outbox ledger at scrape time: two GROUP BY queries."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        try:
            with Session(self.engine) as db:
                # Covered by ix_status_firm_preparer_stage: an index-only scan, never the table.
                stages = db.exec(
                    select(EngagementStatus.stage, func.count()).group_by(col(EngagementStatus.stage))
                ).all()
                outbox = db.exec(
                    select(OutboxMessage.status, OutboxMessage.backend, OutboxMessage.purpose, func.count())
                    .group_by(
                        col(OutboxMessage.status), col(OutboxMessage.backend), col(OutboxMessage.purpose)
                    )
                    .order_by(col(OutboxMessage.status))
                ).all()
        except Exception:  # a scrape must answer even when the database does not; /readyz says why
            log.exception("reading metrics from the database failed")
            up = GaugeMetricFamily("portico_database_metrics_up", "1 when the database metrics were read.")
            up.add_metric([], 0)
            yield up
            return
        up = GaugeMetricFamily("portico_database_metrics_up", "1 when the database metrics were read.")
        up.add_metric([], 1)
        yield up
        yield _gauge(
            "portico_engagements",
            "Engagements by stage, from the dashboard's projection.",
            ["stage"],
            (([stage], count) for stage, count in stages),
        )
        by_status: dict[tuple[str, str], int] = {}
        reminders: dict[str, int] = {}
        for status, backend, purpose, count in outbox:
            by_status[(status, backend)] = by_status.get((status, backend), 0) + count
            if status == "sent" and purpose.endswith(REMINDER_PURPOSE_SUFFIX):
                reminders[purpose] = reminders.get(purpose, 0) + count
        yield _gauge(
            "portico_outbox_messages",
            "Messages in the outbox ledger, by delivery status and backend.",
            ["status", "backend"],
            ((list(key), count) for key, count in by_status.items()),
        )
        sent = CounterMetricFamily(
            "portico_reminders_sent",
            "Reminders delivered, by kind (from the outbox ledger).",
            labels=["kind"],
        )
        for purpose, count in reminders.items():
            sent.add_metric([purpose], count)
        yield sent


def _gauge(
    name: str, documentation: str, labels: list[str], samples: Iterable[tuple[list[str], float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family


class _ProcessMetrics(Collector):
    """This process's default registry (HTTP, throttling, Python runtime), inside another registry."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def serve_metrics(engine: Engine, host: str, port: int) -> tuple[WSGIServer, Thread]:
    """Starts /metrics on host:port in a background thread; stop it with `server.shutdown()`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ProcessMetrics())
    registry.register(DatabaseCollector(engine))
    server, thread = start_http_server(port, addr=host, registry=registry)
    log.info("metrics on http://%s:%s/metrics", host, server.server_port)
    return server, thread
