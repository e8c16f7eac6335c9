"""The worker's metrics and the request id's trip through Temporal.

Metrics: the Temporal SDK serves its own Prometheus endpoint (workflow and activity task latencies, poll
counts, cache size…) when the runtime is built with `metrics_runtime`; `ActivityTimer` adds Portico's own
histograms to the same endpoint through the SDK's metric meter, so a worker has one port to scrape.

Request ids: `RequestIdHeader` (on the API's client) puts the current request id in a Temporal *header*
of each workflow start, update and signal. Headers are recorded in the history's events, not in the
workflow's commands, so replay and determinism are unaffected. On the worker, the workflow interceptor
binds that id while the update or signal handler runs, so workflow logs for the request carry it.
Activities do not get it (that would mean a header on each ScheduleActivityTask command); their logs are
tied to the request by the workflow id instead.
"""

from __future__ import annotations

import time
from typing import Any

import temporalio.converter
from temporalio import activity
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Interceptor as ClientInterceptor,
)
from temporalio.client import (
    OutboundInterceptor,
    SignalWorkflowInput,
    StartWorkflowInput,
    StartWorkflowUpdateInput,
    WorkflowHandle,
    WorkflowUpdateHandle,
)
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from core.logs import REQUEST_ID, request_id_bound

HEADER = "portico-request-id"
ACTIVITY_DURATION = "portico_activity_duration_seconds"
SIGNING_DURATION = "portico_signing_duration_seconds"
# Which activities are the signing steps, and their label on the signing histogram.
SIGNING_STEPS = {"sign_document": "sign", "seal_documents": "seal"}
_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_PLAIN = temporalio.converter.default().payload_converter  # headers bypass the payload codec: plain text


def metrics_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime serving Prometheus metrics on `bind_address` (host:port) at /metrics."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=bind_address,
                counters_total_suffix=True,
                durations_as_seconds=True,
                histogram_bucket_overrides={ACTIVITY_DURATION: _BUCKETS, SIGNING_DURATION: _BUCKETS},
            )
        )
    )


# ---- request ids: client side ------------------------------------------------------------------------


def _with_request_id(headers: Any) -> dict[str, Payload]:
    request_id = REQUEST_ID.get()
    merged = dict(headers)
    if request_id:
        merged[HEADER] = _PLAIN.to_payloads([request_id])[0]
    return merged


class _RequestIdOutbound(OutboundInterceptor):
    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        input.headers = _with_request_id(input.headers)
        return await super().start_workflow(input)

    async def signal_workflow(self, input: SignalWorkflowInput) -> None:
        input.headers = _with_request_id(input.headers)
        await super().signal_workflow(input)

    async def start_workflow_update(self, input: StartWorkflowUpdateInput) -> WorkflowUpdateHandle[Any]:
        input.headers = _with_request_id(input.headers)
        return await super().start_workflow_update(input)


class RequestIdHeader(ClientInterceptor):
    """Client interceptor: the current request id travels with each start, update and signal."""

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _RequestIdOutbound(next)


# ---- worker side ---------------------------------------------------------------------------------------


def _request_id_of(headers: Any) -> str | None:
    payload = headers.get(HEADER)
    if payload is None:
        return None
    try:
        value = _PLAIN.from_payloads([payload])[0]
    except Exception:  # not ours, or damaged: log without it
        return None
    return value if isinstance(value, str) else None


class _RequestIdWorkflowInbound(WorkflowInboundInterceptor):
    # Binding a context variable issues no command: replay sees exactly the same workflow.
    async def handle_signal(self, input: HandleSignalInput) -> None:
        with request_id_bound(_request_id_of(input.headers)):
            await super().handle_signal(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        with request_id_bound(_request_id_of(input.headers)):
            return await super().handle_update_handler(input)


class _TimedActivity(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        started = time.perf_counter()
        outcome = "failed"
        try:
            result = await super().execute_activity(input)
            outcome = "completed"
            return result
        finally:
            _record(time.perf_counter() - started, outcome)


def _record(seconds: float, outcome: str) -> None:
    meter = activity.metric_meter()  # carries namespace, task queue and activity type as labels
    meter.create_histogram_float(
        ACTIVITY_DURATION, "Time an activity took, by type and outcome.", "s"
    ).record(seconds, {"outcome": outcome})
    step = SIGNING_STEPS.get(activity.info().activity_type)
    if step is not None:
        meter.create_histogram_float(
            SIGNING_DURATION, "Time to sign one document (sign) or seal an engagement's (seal).", "s"
        ).record(seconds, {"step": step, "outcome": outcome})


class WorkerTelemetry(Interceptor):
    """Worker interceptor: activity durations, and request ids bound in workflow handlers."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _TimedActivity(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _RequestIdWorkflowInbound
