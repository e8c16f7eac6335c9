"""The FastAPI application: JSON API under /api, OpenAPI docs at /docs, dev outbox in development."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from wsgiref.simple_server import WSGIServer

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from temporalio.client import Client
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.refusals import refusal_answer
from api.routes import dev, preparer, records, taxpayer
from core.config import Settings, get_settings
from core.context import Resources
from core.metrics import serve_metrics
from messaging.backends import message_backends
from messaging.outbox import Outbox
from portico.observability import RequestTelemetry, install_health, with_request_ids
from portico.request_guards import ApiCsrf, BodyLimit, JsonMediaType, StrictTransportSecurity
from portico.serving import threads_in_use, use_thread_limit, workers_in_use
from services import ServiceError, workflow_calls
from web import STATIC_DIR, landing
from web.mount import install_pages
from workflows.client import connect

log = logging.getLogger("portico.app")
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost", "127.0.0.0/8", "::1/128"})


def warn_about_proxy_trust(settings: Settings) -> str | None:
    """In production the API sits behind a reverse proxy; trusting only loopback there (the default) means
    every client shares the proxy's (or Docker bridge's) address: one throttle bucket for everybody and
    the bridge's address in every e-signature record. Logged at start-up; answers the warning."""
    if settings.environment != "production":
        return None
    trusted = {part.strip() for part in settings.forwarded_allow_ips.split(",") if part.strip()}
    if "*" in trusted:
        warning = (
            "PORTICO_FORWARDED_ALLOW_IPS is '*': any caller can forge X-Forwarded-For. Name the reverse "
            "proxy's address (or network) as the API sees it."
        )
    elif trusted <= LOOPBACK:
        warning = (
            f"PORTICO_FORWARDED_ALLOW_IPS trusts only loopback ({settings.forwarded_allow_ips}): behind a "
            "reverse proxy in another container or host, every client gets the proxy's address in the "
            "audit log and e-signature records, and shares one throttle. Set it to the proxy's address."
        )
    else:
        return None
    log.warning(warning)
    return warning


def docs_served(settings: Settings) -> bool:
    return settings.environment != "production" or settings.api_docs


def create_app(settings: Settings | None = None, *, temporal: Client | None = None) -> FastAPI:
    """The API and the pages on one app: routes, the request guards around them, the refusal answers."""
    settings = settings or get_settings()
    docs = docs_served(settings)
    app = FastAPI(
        title="Portico",
        version="0.1.0",
        lifespan=_lifespan(settings, temporal),
        description="Client portal and e-signature pipeline for tax preparers.",
        form_limits={"max_files": settings.max_files_per_request},
        # The API's map is for developers: in production only when PORTICO_API_DOCS says so.
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    _add_routes(app, settings)
    _add_guards(app, settings)
    app.add_exception_handler(ServiceError, refusal_answer)
    app.add_exception_handler(OverflowError, _id_out_of_range)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def _lifespan(settings: Settings, temporal: Client | None) -> Lifespan:
    """Start-up and shut-down: what every request shares (resources, Temporal client, outbox, metrics)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        use_thread_limit(threads_in_use())
        resources = Resources.from_settings(settings)
        app.state.resources = resources
        # One Temporal client per process, made at start-up and shared by every request.
        # (Its workflow starts, updates and signals carry the request's id: portico/observability.py.)
        app.state.temporal = with_request_ids(temporal or await connect(settings, resources.cipher))
        workflow_calls.use_workflow_prefix(app.state.temporal, settings.workflow_id_prefix)
        # Codes sent from a request (a new browser's sign-in) go through the same ledger and backends.
        app.state.outbox = Outbox(resources, message_backends(settings))
        # /metrics on its own port, only when one is set: never on the public one.
        metrics = _serve_metrics(resources, settings) if settings.metrics_port is not None else None
        app.state.metrics_server = metrics
        yield
        if metrics is not None:
            metrics.shutdown()
            metrics.server_close()
        resources.engine.dispose()

    return lifespan


def _serve_metrics(resources: Resources, settings: Settings) -> WSGIServer:
    """One metrics port a serving process: with `portico api --workers N`, the first free one of
    PORTICO_METRICS_PORT … PORTICO_METRICS_PORT+N-1 (a scraper lists them all)."""
    first = settings.metrics_port or 0
    last = first + workers_in_use() - 1 if first else first
    for port in range(first, last + 1):
        try:
            server, _ = serve_metrics(resources.engine, settings.metrics_host, port)
            return server
        except OSError:
            if port == last:
                raise
    raise AssertionError("unreachable")


def _add_routes(app: FastAPI, settings: Settings) -> None:
    """Routes are matched one after another, in this order (about 190 of them: /healthz, last, spent a
    third of its time being matched): the probes come first (a load balancer asks every few seconds), then
    the pages people wait for, then the JSON API. No two of these groups share a path (the API is all under
    /api), so the order changes no answer."""

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    install_health(app)
    app.include_router(landing.router)
    install_pages(app)
    app.include_router(preparer.router)
    app.include_router(taxpayer.router)
    app.include_router(records.router)
    if settings.environment in ("development", "test"):
        app.include_router(dev.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def _add_guards(app: FastAPI, settings: Settings) -> None:
    """The middleware, innermost first: each one added wraps the ones before it."""
    app.add_middleware(JsonMediaType)
    if settings.environment == "production":
        app.add_middleware(StrictTransportSecurity)
    app.add_middleware(ApiCsrf, public_url=settings.public_url)
    app.add_middleware(
        BodyLimit,
        default=settings.max_request_bytes,
        uploads=settings.max_upload_request_bytes,
        session_cookies=("portico_session", "__Host-portico_session"),
    )
    app.add_middleware(RequestTelemetry)  # the outermost but one, so it times and ids everything
    # Outermost of all: X-Forwarded-For from a trusted proxy only (PORTICO_FORWARDED_ALLOW_IPS) becomes the
    # client address that throttles count, the audit log records and e-signature records keep. Here rather
    # than in uvicorn's flags, so every way of serving the app (and the tests) trusts the same proxies.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    warn_about_proxy_trust(settings)


async def _id_out_of_range(request: Request, exc: Exception) -> JSONResponse:
    # An id past the database's 64-bit range cannot name anything: same answer as any unknown id.
    return JSONResponse({"detail": "Not found."}, status_code=404)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        # Our own 422s say in words what is wrong ({"detail": "..."}); FastAPI's list the fields.
        error = schema.get("components", {}).get("schemas", {}).get("HTTPValidationError")
        if error is not None:
            error["properties"]["detail"] = {
                "title": "Detail",
                "anyOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
                ],
            }
        app.openapi_schema = schema
    return app.openapi_schema


def production_app() -> FastAPI:
    """The app as each serving process builds it (portico/serving.py): settings from the environment, logs
    as configured."""
    from core.config import get_settings
    from core.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    return create_app(settings)
