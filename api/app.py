"""The FastAPI application: JSON API under /api, OpenAPI docs at /docs, dev outbox in development."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from temporalio.client import Client

from api import workflow_calls
from api.routes import dev, preparer, records, taxpayer
from core.config import Settings, get_settings
from core.context import Resources
from web import STATIC_DIR
from web import preparer as preparer_workspace
from web.mount import install_portal
from workflows.client import connect


def create_app(settings: Settings | None = None, *, temporal: Client | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = Resources.from_settings(settings)
        app.state.resources = resources
        # One Temporal client per process, made at start-up and shared by every request.
        app.state.temporal = temporal or await connect(settings, resources.cipher)
        workflow_calls.use_workflow_prefix(app.state.temporal, settings.workflow_id_prefix)
        yield
        resources.engine.dispose()

    app = FastAPI(
        title="Portico",
        version="0.1.0",
        lifespan=lifespan,
        description="Client portal and e-signature pipeline for tax preparers.",
    )
    app.include_router(preparer.router)
    app.include_router(taxpayer.router)
    app.include_router(records.router)
    if settings.environment in ("development", "test"):
        app.include_router(dev.router)
    install_portal(app)
    app.include_router(preparer_workspace.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(OverflowError)
    async def id_out_of_range(request: Request, exc: OverflowError) -> JSONResponse:
        # An id past the database's 64-bit range cannot name anything: same answer as any unknown id.
        return JSONResponse({"detail": "Not found."}, status_code=404)

    def openapi() -> dict[str, Any]:
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

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
