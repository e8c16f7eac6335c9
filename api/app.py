"""The FastAPI application: JSON API under /api, OpenAPI docs at /docs, dev outbox in development."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from temporalio.client import Client

from api.routes import dev, preparer, taxpayer
from core.config import Settings, get_settings
from core.context import Resources
from web import STATIC_DIR
from workflows.client import connect


def create_app(settings: Settings | None = None, *, temporal: Client | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = Resources.from_settings(settings)
        app.state.resources = resources
        # One Temporal client per process, made at start-up and shared by every request.
        app.state.temporal = temporal or await connect(settings, resources.cipher)
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
    if settings.environment in ("development", "test"):
        app.include_router(dev.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
