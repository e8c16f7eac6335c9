"""Browser-facing protections: security headers on every response, CSRF tokens on every page form.

CSRF uses a signed double-submit token: a random secret in an HttpOnly cookie, and in each form (and in
the `X-CSRF-Token` header htmx and fetch send) an HMAC of that secret under a server key, so a cookie
planted by a neighbouring site is useless without the key. The JSON API keeps its SameSite=Lax cookies;
on top of that, any state-changing request a browser marks as cross-site is refused outright.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from fastapi import HTTPException, Request, Response, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.context import Resources
from services import cookies

CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# The OpenAPI pages load Swagger UI / ReDoc with inline scripts: they keep the other headers only.
_NO_CSP_PREFIXES = ("/docs", "/redoc")
# Encoded once: every response gets them, so building and encoding them per request showed in profiles.
_HEADERS_WITHOUT_CSP: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_HEADERS_WITH_CSP = (*_HEADERS_WITHOUT_CSP, (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
_HEADER_NAMES = frozenset(name for name, _ in _HEADERS_WITH_CSP)


def _with_security_headers(
    sent: list[tuple[bytes, bytes]], added: tuple[tuple[bytes, bytes], ...]
) -> list[tuple[bytes, bytes]]:
    """`sent` and then those of `added` the route did not set itself. Our names are ASCII, so bytes.lower()
    finds them as str.lower() would, without decoding every header."""
    for name, _ in sent:
        if name.lower() in _HEADER_NAMES:  # rare (a download's own CSP): compare name by name
            present = {k.lower() for k, _ in sent}
            return [*sent, *(each for each in added if each[0] not in present)]
    return [*sent, *added]


class SecurityHeaders:
    """Adds the headers unless a route already chose its own (downloads set a stricter sandbox CSP)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Only a state-changing request can be refused here: a GET need not have its headers read.
        if scope["method"] not in SAFE_METHODS:
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            if headers.get("sec-fetch-site") == "cross-site":
                response = Response("Cross-site request refused.", status_code=403, media_type="text/plain")
                await response(scope, receive, send)
                return
        path: str = scope["path"]
        added = _HEADERS_WITHOUT_CSP if path.startswith(_NO_CSP_PREFIXES) else _HEADERS_WITH_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_security_headers(message.get("headers", []), added)
            await send(message)

        await self.app(scope, receive, send_with_headers)


# ---- CSRF --------------------------------------------------------------------------------------------


def _sign(resources: Resources, secret: str) -> str:
    mac = hmac.new(resources.cipher.derive_key("csrf"), secret.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def csrf_token(request: Request, resources: Resources) -> str:
    """The token for this browser's forms; creates the secret (set by `issue_csrf_cookie`) if needed."""
    secret = request.cookies.get(cookies.name(resources, cookies.CSRF)) or getattr(
        request.state, "csrf_secret", None
    )
    if not secret:
        secret = secrets.token_urlsafe(32)
        request.state.csrf_secret = secret
        request.state.csrf_new = True
    return _sign(resources, secret)


def issue_csrf_cookie(request: Request, response: Response, resources: Resources) -> None:
    if getattr(request.state, "csrf_new", False):
        cookies.put(response, resources, cookies.CSRF, request.state.csrf_secret)


def csrf_header_valid(request: Request, resources: Resources) -> bool:
    """The `X-CSRF-Token` header carries this browser's token (as the pages' scripts send it)."""
    secret = request.cookies.get(cookies.name(resources, cookies.CSRF))
    given = request.headers.get(CSRF_HEADER)
    return bool(secret and given and hmac.compare_digest(given.encode(), _sign(resources, secret).encode()))


async def check_csrf(request: Request) -> None:
    """Router dependency for the pages: refuses a state-changing request without a valid token."""
    if request.method in SAFE_METHODS:
        return
    resources: Resources = request.app.state.resources
    secret = request.cookies.get(cookies.name(resources, cookies.CSRF))
    given = request.headers.get(CSRF_HEADER)
    if not given:
        form = await request.form(max_files=resources.settings.max_files_per_request)
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    # As bytes: compare_digest refuses str with non-ASCII characters, and a header can carry them.
    if not (secret and given and hmac.compare_digest(given.encode(), _sign(resources, secret).encode())):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "This form has expired. Reload the page and try again."
        )
