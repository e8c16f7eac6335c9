"""The portal's cookies: session, pending login, remembered device, CSRF secret.

`__Host-` names (Secure, no Domain, Path=/) outside development; a plain-http development server cannot
set Secure cookies, so there the prefix is dropped.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request, Response

from core.context import Resources
from services.deps import cookie_name as session_cookie_name

SESSION = "portico_session"
LOGIN = "portico_login"
DEVICE = "portico_device"
CSRF = "portico_csrf"
RETURN = "portico_return"  # which of the client's returns the portal shows (an engagement id, checked)


def name(resources: Resources, base: str) -> str:
    if base == SESSION:
        return session_cookie_name(resources)
    return base if resources.settings.is_development else f"__Host-{base}"


def read(request: Request, resources: Resources, base: str) -> str | None:
    return request.cookies.get(name(resources, base))


def put(
    response: Response, resources: Resources, base: str, value: str, max_age: timedelta | None = None
) -> None:
    response.set_cookie(
        name(resources, base),
        value,
        max_age=int(max_age.total_seconds()) if max_age else None,
        httponly=True,
        samesite="lax",
        path="/",
        secure=not resources.settings.is_development,
    )


def drop(response: Response, resources: Resources, base: str) -> None:
    response.delete_cookie(
        name(resources, base),
        path="/",
        httponly=True,
        samesite="lax",
        secure=not resources.settings.is_development,
    )
