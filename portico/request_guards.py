"""Checks on a request before any route reads it, as plain ASGI middleware (nothing is parsed here).

- `JsonMediaType`: the JSON API takes JSON only as `application/json` (any case). FastAPI would also
  parse `application/<anything>+json`; a second spelling of the same body is a second place for a check
  to look in the wrong way (the login throttle once missed `Application/JSON`), so it is refused with 415.
- `ApiCsrf`: a state-changing /api/ request that carries cookies (the browser's session, pending login …)
  must come from Portico's own pages: `Sec-Fetch-Site` same-origin or none, or an `Origin` equal to the
  public URL's, or the pages' `X-CSRF-Token`. SameSite=Lax alone lets a page on a *same-site* host post
  with the session cookie. A client without cookies (a script, a token) is not a browser session: untouched.
- `BodyLimit`: 413 for a body over the limit, from its Content-Length before a byte is read, or as the
  bytes stream in (chunked); uploads (`UPLOAD_PATHS`) may be larger than everything else, and an upload
  without any session cookie is refused (401) before its body is read. The files themselves spool to a
  temporary file past 1 MB (Starlette's multipart parser) and are read one at a time, up to
  `max_upload_bytes` each; `max_files_per_request` caps how many one form may carry.
- `StrictTransportSecurity`: in production, browsers are told to use https only (a year, subdomains too).
"""

from __future__ import annotations

import email.message
import re
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.security import csrf_header_valid

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OWN_FETCH_SITES = frozenset({"same-origin", "none"})  # `none`: typed in the address bar, a bookmark
CROSS_SITE = "This request did not come from Portico's own pages, so it was refused."


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def media_type(content_type: str) -> tuple[str, str]:
    """(main type, subtype), lower-cased, parameters dropped: as FastAPI reads the header."""
    message = email.message.Message()
    message["content-type"] = content_type
    return message.get_content_maintype(), message.get_content_subtype()


async def refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)


class JsonMediaType:
    """415 for an unsafe /api/ request whose body is declared as JSON other than `application/json`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] not in SAFE_METHODS
            and scope["path"].startswith("/api/")
        ):
            content_type = header(scope, b"content-type")
            if content_type:
                main, sub = media_type(content_type)
                if main == "application" and sub.endswith("+json"):
                    await refuse(scope, receive, send, 415, "Send JSON as Content-Type: application/json.")
                    return
        await self.app(scope, receive, send)


def origin_of(url: str) -> str:
    parts = urlsplit(url.strip())
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}{port}"


class ApiCsrf:
    """403 for a cross-site (or same-site but foreign) unsafe /api/ request that carries cookies."""

    def __init__(self, app: ASGIApp, public_url: str) -> None:
        self.app = app
        self.origin = origin_of(public_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] not in SAFE_METHODS
            and scope["path"].startswith("/api/")
            and header(scope, b"cookie")
            and not self._own(scope)
        ):
            await refuse(scope, receive, send, 403, CROSS_SITE)
            return
        await self.app(scope, receive, send)

    def _own(self, scope: Scope) -> bool:
        if (header(scope, b"sec-fetch-site") or "").strip().lower() in OWN_FETCH_SITES:
            return True
        origin = header(scope, b"origin")
        if origin and origin.strip().lower() != "null" and origin_of(origin) == self.origin:
            return True
        request = Request(scope)
        return csrf_header_valid(request, request.app.state.resources)


# Every route that takes files (tests/test_api/test_security_uploads.py checks it against the routes).
UPLOAD_PATHS = re.compile(
    r"^(/api/engagements/\d+/documents(?:/\d+/(?:replace|paper))?|/api/taxpayer/uploads"
    r"|/api/taxpayer/signature|/api/taxpayer/documents/\d+/paper|/api/verify"
    r"|/portal/files|/portal/signature|/portal/documents/\d+/paper|/preparer/import"
    r"|/preparer/engagements/\d+/documents(?:/\d+/(?:replace|paper))?"
    r"|/preparer/engagements/\d+/placements/(?:preview|template))/?$"
)
TOO_LARGE = "The request is larger than Portico accepts."


class _BodyTooLarge(HTTPException):
    """Raised from `receive` once the streamed bytes pass the limit: an HTTPException, so FastAPI's body
    reading passes it on (anything else it would turn into a 400) and its handler answers 413."""

    def __init__(self) -> None:
        super().__init__(413, TOO_LARGE)


class BodyLimit:
    def __init__(self, app: ASGIApp, *, default: int, uploads: int, session_cookies: tuple[str, ...]) -> None:
        self.app = app
        self.default, self.uploads = default, uploads
        self.session_cookies = session_cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["method"] in ("POST", "PUT") and UPLOAD_PATHS.match(scope["path"]) is not None
        limit = self.uploads if upload else self.default
        length = header(scope, b"content-length")
        if length is not None and (not length.strip().isdigit() or int(length) > limit):
            await refuse(scope, receive, send, 413, TOO_LARGE)
            return
        if upload and not self._has_session(scope):
            await refuse(scope, receive, send, 401, "Please log in.")
            return
        if (
            length is None
            and scope.get("http_version") in ("1.0", "1.1")
            and header(scope, b"transfer-encoding") is None
        ):
            # HTTP/1.x frames a request's body by one of the two (RFC 9112 6.3): with neither, the request
            # has none, so there are no bytes to count. Most requests (GETs) skip the wrappers below. (An
            # HTTP/2 body needs no Content-Length: a server speaking it to Portico keeps the wrappers.)
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge()
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except _BodyTooLarge:
            if started:
                raise
            await refuse(scope, receive, send, 413, TOO_LARGE)

    def _has_session(self, scope: Scope) -> bool:
        cookie = header(scope, b"cookie") or ""
        names = {part.split("=", 1)[0].strip() for part in cookie.split(";")}
        return any(name in names for name in self.session_cookies)


HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class StrictTransportSecurity:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), HSTS]
            await send(message)

        await self.app(scope, receive, send_with_hsts)
