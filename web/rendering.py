"""Templates, the page context every template gets, and who is logged in for the pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Depends, Request, Response
from fastapi.templating import Jinja2Templates
from sqlmodel import Session, col, select

from api.deps import ResourcesDep, SessionDep
from api.services import cookies
from api.services.portal import co_signers
from core import sessions
from core.context import Resources
from core.models import Engagement, Firm, Signer, TaxpayerAccount
from web import TEMPLATES_DIR
from web.security import csrf_token, issue_csrf_cookie

templates = Jinja2Templates(directory=TEMPLATES_DIR)

# Short notices after a redirect, by key, so a URL can never inject text into a page.
NOTICES = {
    "logged-out": "You are logged out.",
    "logged-out-everywhere": "You are logged out on every device, and no browser is remembered any more.",
    "verification-cancelled": "Verification cancelled. Log in any time to finish it.",
    "verified": "Your account is verified. Welcome!",
    "signed": "Signed!",
    "uploaded": "Files uploaded.",
    "signature-saved": "Signature saved.",
    "sent": "Message sent.",
}


def local_time(value: datetime | None, zone: str) -> str:
    """`Mar 3, 2026, 2:15 PM PST` in the signer's own time zone."""
    if value is None:
        return ""
    local = value.astimezone(ZoneInfo(zone))
    hour = local.hour % 12 or 12
    return f"{local:%b} {local.day}, {local.year}, {hour}:{local:%M} {local:%p} {local.tzname()}"


def file_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


templates.env.filters["file_size"] = file_size


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> Response:
    resources: Resources = request.app.state.resources
    ctx = {
        "csrf_token": csrf_token(request, resources),
        "notice": NOTICES.get(request.query_params.get("m", "")),
        "local_time": local_time,
        **(context or {}),
    }
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"  # pages hold personal data: never from a cache
    issue_csrf_cookie(request, response, resources)
    return response


def safe_next(value: str | None) -> str:
    """Where to go after logging in: only a portal path on this site."""
    if value and value.startswith("/portal") and not value.startswith("//") and "\\" not in value:
        return value
    return "/portal"


# ---- who is logged in ------------------------------------------------------------------------------


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class VerificationRequired(Exception):
    pass


@dataclass(frozen=True)
class PortalUser:
    account: TaxpayerAccount
    signer: Signer
    engagement: Engagement
    firm_name: str
    co_signer_names: dict[str, str]

    @property
    def role(self) -> str:
        return self.signer.role.value


def _load_user(request: Request, db: Session, resources: Resources) -> PortalUser:
    token = cookies.read(request, resources, cookies.SESSION)
    settings = resources.settings
    row = (
        sessions.resolve(
            db, token, "taxpayer", settings.session_idle_timeout, settings.session_absolute_timeout
        )
        if token
        else None
    )
    # Account, signer, engagement and firm in one query: every portal page starts here.
    found = (
        db.exec(
            select(TaxpayerAccount, Signer, Engagement, Firm)
            .join(Signer, col(Signer.id) == col(TaxpayerAccount.signer_id))
            .join(Engagement, col(Engagement.id) == col(Signer.engagement_id))
            .join(Firm, col(Firm.id) == col(Engagement.firm_id))
            .where(TaxpayerAccount.id == row.subject_id)
        ).first()
        if row
        else None
    )
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(quote(target if request.method == "GET" else "/portal", safe="/"))
    account, signer, engagement, firm = found
    names = {s.role.value: s.first_name for s in co_signers(db, signer)}
    return PortalUser(account, signer, engagement, firm.name, names)


def any_user(request: Request, db: SessionDep, resources: ResourcesDep) -> PortalUser:
    """Logged in, verified or not (the verify page)."""
    return _load_user(request, db, resources)


def verified_user(request: Request, db: SessionDep, resources: ResourcesDep) -> PortalUser:
    user = _load_user(request, db, resources)
    if user.account.verified_at is None:
        raise VerificationRequired
    return user


AnyUser = Annotated[PortalUser, Depends(any_user)]
VerifiedUser = Annotated[PortalUser, Depends(verified_user)]
