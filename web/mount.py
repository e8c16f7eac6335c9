"""Adds the taxpayer portal to the FastAPI app: page routes, security headers, login redirects."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse

from web import account_pages, portal_pages
from web.rendering import LoginRequired, VerificationRequired
from web.security import SecurityHeaders


def _redirect(request: Request, url: str) -> Response:
    if request.headers.get("hx-request") == "true":  # htmx follows this header with a full page load
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


async def _login_required(request: Request, exc: Exception) -> Response:
    target = exc.next_url if isinstance(exc, LoginRequired) else "/portal"
    return _redirect(request, f"/portal/login?next={target}")


async def _verification_required(request: Request, exc: Exception) -> Response:
    return _redirect(request, "/portal/verify")


def install_portal(app: FastAPI) -> None:
    app.include_router(account_pages.router)
    app.include_router(portal_pages.router)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(VerificationRequired, _verification_required)
    app.add_middleware(SecurityHeaders)
