"""The workspace's templates, page context, and who is logged in (with both factors) for the pages."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from api.dashboard import STAGE_LABELS
from api.deps import ResourcesDep, SessionDep, cookie_name
from api.services import preparer_auth
from api.services.preparer_settings import firm_settings
from core import sessions
from core.context import Resources
from core.models import Firm, Preparer, WebSession, utcnow
from web import TEMPLATES_DIR
from web.rendering import file_size
from web.security import csrf_token, issue_csrf_cookie

templates = Jinja2Templates(directory=TEMPLATES_DIR)
templates.env.filters["file_size"] = file_size
templates.env.globals["STAGE_LABELS"] = STAGE_LABELS

# Short notices after a redirect, by key, so a URL can never inject text into a page.
NOTICES = {
    "logged-out": "You are logged out.",
    "link-sent": "The link has successfully been sent!",
    "link-scheduled": "It is night where the client lives: the text goes out at 8:00 their time.",
    "transfer-completed": "Transfer Completed - Documents are now on Customer Portal",
    "created": "Engagement created. Send the client their portal link with Customer Portal.",
    "cancelled": "The engagement is cancelled.",
    "unlocked": "Unlocked: the client can try again.",
    "settings-saved": "Settings saved. New engagements use them.",
    "template-saved": "Template saved.",
    "template-reset": "Template reset to Portico's wording.",
    "invited": "Invitation sent.",
    "deactivated": "Preparer deactivated; their sessions ended.",
    "activated": "Preparer reactivated.",
    "mfa-reset": "Two-step login reset: they set it up again at their next login.",
    "admin-granted": "They are now an administrator of the firm.",
    "admin-revoked": "They are no longer an administrator of the firm.",
    "joined": "Your account is ready. Log in to set up two-step login.",
    "sent": "Message sent.",
}


class LoginRequired(HTTPException):
    """Handled by FastAPI's own HTTPException handler: a redirect (or an htmx redirect) to the login."""

    def __init__(self, request: Request) -> None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/preparer"
        url = f"/preparer/login?next={quote(target, safe='/?=&')}"
        if request.headers.get("hx-request") == "true":
            super().__init__(status.HTTP_204_NO_CONTENT, headers={"HX-Redirect": url})
        else:
            super().__init__(status.HTTP_303_SEE_OTHER, headers={"Location": url})


@dataclass(frozen=True)
class Workspace:
    """The logged-in preparer, their firm and the firm's time zone (how times are shown)."""

    preparer: Preparer
    firm: Firm
    time_zone: str

    def local(self, value: datetime | None, with_zone: bool = True) -> str:
        """`Mar 3, 2026, 2:15 PM EST` in the firm's time zone."""
        if value is None:
            return ""
        local = value.astimezone(ZoneInfo(self.time_zone))
        hour = local.hour % 12 or 12
        text = f"{local:%b} {local.day}, {local.year}, {hour}:{local:%M} {local:%p}"
        return f"{text} {local.tzname()}" if with_zone else text

    def age(self, value: datetime | None) -> str:
        return relative_age(value, utcnow())


def _session(request: Request, db: Session, resources: Resources, *, touch: bool) -> WebSession | None:
    settings = resources.settings
    token = request.cookies.get(cookie_name(resources))
    if not token:
        return None
    idle = min(settings.session_idle_timeout, settings.preparer_idle_timeout)
    absolute = settings.session_absolute_timeout
    if touch:
        return sessions.resolve(db, token, "preparer", idle, absolute)
    # A background poll must not keep an unattended workspace logged in: check, don't refresh.
    row = db.get(WebSession, hashlib.sha256(token.encode()).hexdigest())  # as core.sessions stores it
    now = utcnow()
    if (
        row is None
        or row.kind != "preparer"
        or now - row.last_seen_at > idle
        or now - row.created_at > absolute
    ):
        return None
    return row


def _workspace(request: Request, db: Session, resources: Resources, *, touch: bool) -> Workspace:
    row = _session(request, db, resources, touch=touch)
    preparer = db.get(Preparer, row.subject_id) if row else None
    # A session from the JSON API before two-step login was set up is not enough for the pages.
    if preparer is None or not preparer.active or not preparer_auth.is_enrolled(db, preparer.id or 0):
        raise LoginRequired(request)
    firm = db.get(Firm, preparer.firm_id)
    if firm is None:  # pragma: no cover - foreign key
        raise LoginRequired(request)
    return Workspace(preparer, firm, firm_settings(db, firm.id or 0).time_zone)


def workspace_user(request: Request, db: SessionDep, resources: ResourcesDep) -> Workspace:
    """A preparer session that passed both factors; anything else goes to the login page."""
    return _workspace(request, db, resources, touch=True)


def workspace_poller(request: Request, db: SessionDep, resources: ResourcesDep) -> Workspace:
    """The same, for the fragments htmx polls: they don't count as the preparer being active."""
    return _workspace(request, db, resources, touch=False)


PollingWorkspace = Annotated[Workspace, Depends(workspace_poller)]
CurrentWorkspace = Annotated[Workspace, Depends(workspace_user)]


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> Response:
    resources: Resources = request.app.state.resources
    ctx = {
        "csrf_token": csrf_token(request, resources),
        "notice": NOTICES.get(request.query_params.get("m", "")),
        **(context or {}),
    }
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"  # client data: never from a cache
    issue_csrf_cookie(request, response, resources)
    return response


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def safe_next(value: str | None) -> str:
    """Where to go after logging in: only a workspace path on this site."""
    if value and value.startswith("/preparer") and not value.startswith("//") and "\\" not in value:
        return value
    return "/preparer"


def relative_age(since: datetime | None, now: datetime) -> str:
    """`4 days`, `3 hours`, `12 minutes`: how long someone has been waiting."""
    if since is None:
        return ""
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return "just now"


def page_window(current: int, pages: int, width: int = 2) -> Sequence[int | None]:
    """Page numbers to link: first, last, and a few around the current one (None marks a gap)."""
    shown = sorted({1, pages, *range(max(1, current - width), min(pages, current + width) + 1)})
    out: list[int | None] = []
    for number in shown:
        if out and isinstance(out[-1], int) and number - out[-1] > 1:
            out.append(None)
        out.append(number)
    return out
