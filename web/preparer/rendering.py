"""The workspace's page area (its notices, its login) and who is logged in (with both factors) for the
pages."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from core import sessions
from core.context import Resources
from core.models import Firm, Preparer, WebSession, utcnow
from services import preparer_auth
from services.context import PreparerContext
from services.deps import OutboxDep, ResourcesDep, SessionDep, TemporalDep, cookie_name, request_actor
from services.preparer_settings import firm_settings
from web.toolkit import PageArea, local_time

NOTICES = {
    "logged-out": "You are logged out.",
    "link-sent": "The link has successfully been sent!",
    "link-scheduled": "It is night where the client lives: the text goes out at 8:00 their time.",
    "transfer-completed": "Transfer Completed - Documents are now on Customer Portal",
    "corrected": "The corrected copy is on the Customer Portal: the client signs it in place of the old one.",
    "paper-recorded": "Recorded as signed on paper, with the scan kept among the client's files.",
    "created": "Engagement created. Send the client their portal link with Customer Portal.",
    "cancelled": "The engagement is cancelled.",
    "unlocked": "Unlocked: the client can try again.",
    "identity-saved": "Saved: the identity questions can be asked.",
    "identity-unlocked": "One more set of identity questions is allowed.",
    "settings-saved": "Settings saved. New engagements use them.",
    "retention-saved": "Saved: engagements are kept that long after they complete.",
    "proofing-saved": "Saved: identity verification follows these rules from now on.",
    "contact-saved": "Saved: your clients see this contact information in their portal.",
    "hold-placed": "The engagement is on legal hold: it is kept until the hold is lifted.",
    "hold-lifted": "Legal hold lifted: the engagement is kept until its retention date.",
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
    "rolled-over": "Rolled over: next year's engagement for the same people. Send them the link when ready.",
    "places-template-deleted": "Template deleted: that form's places are found on the page again.",
    "label-added": "Label added: Portico looks for it when it finds the places to sign.",
    "label-deleted": "Label removed.",
}
# The return path keeps `?`, `=` and `&` readable in the login URL (`next=/preparer?stage=signing`).
WORKSPACE = PageArea(home="/preparer", notices=NOTICES)
render = WORKSPACE.render
safe_next = WORKSPACE.safe_next


@dataclass(frozen=True)
class Workspace:
    """The logged-in preparer, their firm and the firm's time zone (how times are shown)."""

    preparer: Preparer
    firm: Firm
    time_zone: str

    def local(self, value: datetime | None, with_zone: bool = True) -> str:
        """`Mar 3, 2026, 2:15 PM EST` in the firm's time zone."""
        return local_time(value, self.time_zone, with_zone)

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


def workspace_of(request: Request, db: Session, resources: Resources, *, touch: bool) -> Workspace:
    """The logged-in preparer (`touch`: the request counts as them being active), else the login page."""
    row = _session(request, db, resources, touch=touch)
    preparer = db.get(Preparer, row.subject_id) if row else None
    # A session from the JSON API before two-step login was set up is not enough for the pages.
    if preparer is None or not preparer.active or not preparer_auth.is_enrolled(db, preparer.id or 0):
        raise WORKSPACE.login_required(request)
    firm = db.get(Firm, preparer.firm_id)
    if firm is None:  # pragma: no cover - foreign key
        raise WORKSPACE.login_required(request)
    return Workspace(preparer, firm, firm_settings(db, firm.id or 0).time_zone)


def workspace_user(request: Request, db: SessionDep, resources: ResourcesDep) -> Workspace:
    """A preparer session that passed both factors; anything else goes to the login page."""
    return workspace_of(request, db, resources, touch=True)


def workspace_poller(request: Request, db: SessionDep, resources: ResourcesDep) -> Workspace:
    """The same, for the fragments htmx polls: they don't count as the preparer being active."""
    return workspace_of(request, db, resources, touch=False)


PollingWorkspace = Annotated[Workspace, Depends(workspace_poller)]
CurrentWorkspace = Annotated[Workspace, Depends(workspace_user)]


def workspace_context(
    request: Request,
    ws: CurrentWorkspace,
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
    client: TemporalDep,
) -> PreparerContext:
    """The signed-in preparer as the services take them: the same context the API builds."""
    actor = request_actor(request, "preparer", str(ws.preparer.id))
    return PreparerContext(db, resources, outbox, client, ws.preparer, actor)


WorkspaceContext = Annotated[PreparerContext, Depends(workspace_context)]


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
