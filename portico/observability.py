"""What an operator sees of the API process: request ids, HTTP metrics, a log line a request, /readyz."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client

from core.context import Resources
from core.logs import REQUEST_ID, REQUEST_ID_HEADER, accept_request_id
from core.metrics import HTTP_LATENCY, HTTP_REQUESTS
from worker.telemetry import RequestIdHeader

log = logging.getLogger("portico.http")
# A JSON line a request costs ~36 µs of CPU before its write (formatting, redaction), a quarter of what a
# bare /healthz costs to answer: every request is counted and timed in the metrics, and the log tells of
# each at DEBUG, and at INFO only of a failed (5xx) or slow one.
SLOW_REQUEST_SECONDS = 1.0
UNMATCHED = "<unmatched>"  # one label for every path no route knows, so scanners can't grow the series


class RequestTelemetry:
    """ASGI middleware: a request id per request (the caller's X-Request-ID when sane), bound for the
    request's logs and returned in the response; the request counted and timed by route *template*; and
    one log line naming the template, never the raw path (paths can carry invitation tokens): at DEBUG,
    or at INFO when the request failed or was slow."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accept_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = scope["method"]
            HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
            HTTP_LATENCY.labels(method=method, route=route).observe(elapsed)
            level = logging.INFO if status >= 500 or elapsed >= SLOW_REQUEST_SECONDS else logging.DEBUG
            if log.isEnabledFor(level):
                extra = {
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000),
                }
                log.log(level, "%s %s %s", method, route, status, extra=extra)
            REQUEST_ID.reset(token)


def with_request_ids(client: Client) -> Client:
    """The same client (same connection), whose workflow starts, updates and signals carry the request id."""
    config = client.config()
    if any(isinstance(each, RequestIdHeader) for each in config["interceptors"]):
        return client
    config["interceptors"] = [*config["interceptors"], RequestIdHeader()]
    return Client(**config)


# ---- readiness -------------------------------------------------------------------------------------------

CHECK_TIMEOUT = 5.0


def check_database(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def check_schema_at_head(engine: Engine) -> None:
    """The database's schema revision is the code's head (core.migrations); without migrations in this
    build, that every table of the models exists."""
    try:
        from core.migrations import schema_state
    except ImportError:  # pragma: no cover - builds before Alembic revisions
        present = set(inspect(engine).get_table_names())
        missing = sorted(set(SQLModel.metadata.tables) - present)
        if missing:
            raise RuntimeError(f"tables missing: {', '.join(missing)}") from None
        return
    state = schema_state(engine)
    if not state.at_head:
        raise RuntimeError(f"schema not at head: {state.describe()}")


def check_storage(resources: Resources) -> None:
    """Writes, reads back and deletes a probe blob through the app's document store."""
    store = resources.store
    key = store.new_key("readyz")
    try:
        store.put(key, b"readiness probe")
        if store.get(key) != b"readiness probe":
            raise RuntimeError("the probe blob read back differently")
    finally:
        store.delete(key)


async def check_temporal(client: Client) -> None:
    if not await client.service_client.check_health():
        raise RuntimeError("the Temporal frontend reports it is not serving")


async def readiness(resources: Resources, client: Client) -> tuple[bool, dict[str, str]]:
    """Runs every check in parallel, each bounded by CHECK_TIMEOUT: (all ok, {name: ok|failed|timeout})."""

    async def run(name: str, check: Callable[[], Awaitable[None]]) -> str:
        # The body is public (load balancers read it): it says which check failed; the log says why.
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT)
        except TimeoutError:
            log.warning("readiness check %s: no answer within %.0fs", name, CHECK_TIMEOUT)
            return "timeout"
        except Exception as error:
            log.warning("readiness check %s failed: %s: %s", name, type(error).__name__, error)
            return "failed"
        return "ok"

    def threaded(function: Callable[..., None], *args: Any) -> Callable[[], Awaitable[None]]:
        return lambda: asyncio.to_thread(function, *args)

    checks = {
        "database": threaded(check_database, resources.engine),
        "schema": threaded(check_schema_at_head, resources.engine),
        "temporal": lambda: check_temporal(client),
        "storage": threaded(check_storage, resources),
    }
    results = dict(zip(checks, await asyncio.gather(*(run(n, c) for n, c in checks.items())), strict=True))
    return all(result == "ok" for result in results.values()), results


def install_health(app: FastAPI) -> None:
    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """200 when this process can serve: database, schema, Temporal and storage all answer."""
        ready, checks = await readiness(app.state.resources, app.state.temporal)
        failing = [name for name, result in checks.items() if result != "ok"]
        body: dict[str, Any] = {"status": "ready" if ready else "not ready", "checks": checks}
        if failing:
            body["failing"] = failing
            log.warning("not ready: %s", ", ".join(failing))
        return JSONResponse(body, status_code=200 if ready else 503)
