"""Adds the pages to the FastAPI app: the taxpayer portal and the preparer workspace, security headers,
login redirects."""

from __future__ import annotations

from fastapi import FastAPI

from web import (
    account_pages,
    client_hub_pages,
    consent_pages,
    identity_pages,
    notification_pages,
    password_reset_pages,
    portal_pages,
    preparer,
    returning_pages,
    security_pages,
)
from web.preparer import placement_pages
from web.security import SecurityHeaders
from web.toolkit import LoginRequired, redirect_to_login


def install_pages(app: FastAPI) -> None:
    app.include_router(account_pages.router)
    app.include_router(password_reset_pages.router)
    app.include_router(portal_pages.router)
    app.include_router(consent_pages.router)
    app.include_router(identity_pages.router)
    app.include_router(security_pages.router)
    app.include_router(client_hub_pages.router)
    app.include_router(returning_pages.router)
    app.include_router(notification_pages.router)
    app.include_router(preparer.router)
    app.include_router(placement_pages.router)
    app.add_exception_handler(LoginRequired, redirect_to_login)
    app.add_middleware(SecurityHeaders)
