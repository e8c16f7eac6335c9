"""What an operator sees of the API process: request ids, HTTP metrics, a log line a request, /readyz."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel
from starlette.datastructures import MutableHeaders
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


_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")


def _incoming_request_id(scope: Scope) -> str | None:
    """The caller's X-Request-ID, read as `Headers(scope=scope).get(...)` reads it (first one, names
    compared as the server gave them), without building a Headers for every request."""
    for key, value in scope["headers"]:
        if key == _REQUEST_ID_KEY:
            return value.decode("latin-1")
    return None


_UUID4_KEEP = ~(0xF000 << 64) & ~(0xC000 << 48)  # all but the version and variant bits …
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)  # … which say version 4, RFC 4122 variant, as uuid4 sets them


def _new_request_id() -> str:
    """A new id, written as `str(uuid.uuid4())` writes one (version 4, RFC 4122 variant) from the same
    os.urandom bytes, without building a UUID object: uuid4 was ~4% of a served /healthz, this half."""
    digits = f"{int.from_bytes(os.urandom(16)) & _UUID4_KEEP | _UUID4_SET:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _set_request_id(message: Message, request_id: str) -> None:
    """Sets X-Request-ID on a response start as `MutableHeaders(scope=message)[...] = ...` does, without
    building one when the route set no X-Request-ID of its own (nearly always)."""
    headers = message["headers"] = list(message["headers"])
    for key, _ in headers:
        if key == _REQUEST_ID_KEY:
            MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            return
    headers.append((_REQUEST_ID_KEY, request_id.encode("latin-1")))


class RequestTelemetry:
    """ASGI middleware: a request id per request (the caller's X-Request-ID when sane), bound for the
    request's logs and returned in the response; the request counted and timed by route *template*; and
    one log line naming the template, never the raw path (paths can carry invitation tokens): at DEBUG,
    or at INFO when the request failed or was slow."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The metrics' children by their labels: `labels(method=..., ...)` checks its arguments and takes
        # a lock on every call (~2.5 µs a request for the two). The keys are those Prometheus keeps anyway
        # (methods, route templates or UNMATCHED, statuses); nothing removes a child from these metrics.
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _incoming_request_id(scope)
        request_id = accept_request_id(incoming) if incoming else _new_request_id()
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                _set_request_id(message, request_id)
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = scope["method"]
            self._count(method, route, status, elapsed)
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

    def _count(self, method: str, route: str, status: int, elapsed: float) -> None:
        counted = self._counted.get((method, route, status))
        if counted is None:
            counted = HTTP_REQUESTS.labels(method=method, route=route, status=str(status))
            self._counted[(method, route, status)] = counted
        counted.inc()
        timed = self._timed.get((method, route))
        if timed is None:
            timed = self._timed[(method, route)] = HTTP_LATENCY.labels(method=method, route=route)
        timed.observe(elapsed)


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
