"""The portal's notifications: the bell in every page's header, the full list, opening one (which shows its
return), marking them read, the firm's message dismissed with OK, and the live updates (`/portal/events`,
Server-Sent Events) that keep the bell and the chat current without a reload.

The stream reads the database about once a second from a cursor (the SSE event id), so whichever API
process a browser reaches sees what any other process or the worker wrote. It ends after a few minutes,
and the browser reconnects with the last event id. Without EventSource, the pages poll with htmx instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import StreamingResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from core import sessions
from core.context import Resources
from services import ServiceError, cookies
from services import notifications as service
from services.deps import ResourcesDep
from web.rendering import PortalContext, PortalUser, VerifiedUser, render, safe_next, verified_user
from web.security import check_csrf
from web.toolkit import LoginRequired, is_htmx, see_other, templates

router = APIRouter(prefix="/portal", include_in_schema=False, dependencies=[Depends(check_csrf)])

POLL_SECONDS = 1.0
STREAM_SECONDS = 300.0  # then the browser reconnects (and the login is checked afresh)


def notification_bell(request: Request, user: object) -> service.Bell | None:
    """For base.html: the bell of a verified client, read in its own short session (every portal page
    shows it, and no page handler has to pass it)."""
    account = getattr(user, "account", None)
    if account is None or account.verified_at is None:
        return None
    cached: service.Bell | None = getattr(request.state, "notification_bell", None)
    if cached is None:
        resources: Resources = request.app.state.resources
        with Session(resources.engine) as db:
            cached = service.cached_bell(db, account.id or 0)  # unchanged since last read: one row
        request.state.notification_bell = cached  # the header and the firm's message read it once
    return cached


templates.env.globals["notification_bell"] = notification_bell


def _refused(exc: ServiceError) -> Response:
    return Response(exc.message, status_code=exc.status_code, media_type="text/plain")


@router.get("/notifications")
def notifications_page(request: Request, user: VerifiedUser, ctx: PortalContext) -> Response:
    listed = service.listing(ctx)
    return render(request, "notifications.html", {"user": user, "listed": listed, "page": "notifications"})


@router.get("/notifications/bell")
def bell_fragment(request: Request, user: VerifiedUser) -> Response:
    """The bell alone: what the htmx fallback polls when the browser has no EventSource."""
    return render(request, "_bell.html", {"user": user})


@router.get("/notifications/{notification_id}/open")
def open_notification(notification_id: int, ctx: PortalContext) -> Response:
    """Marks it read and goes to its page, showing its return."""
    try:
        target = service.open_notification(ctx, notification_id=notification_id)
    except ServiceError as exc:
        return _refused(exc)
    response = see_other(target.link)
    if target.engagement_id is not None:
        cookies.put(response, ctx.resources, cookies.RETURN, str(target.engagement_id))
    return response


@router.post("/notifications/{notification_id}/read")
def mark_read(
    notification_id: int,
    request: Request,
    ctx: PortalContext,
    next: Annotated[str, Form(max_length=200)] = "/portal",
) -> Response:
    """One notification read: the OK under the firm's message, or a single item."""
    try:
        service.mark_read(ctx, notification_id=notification_id)
    except ServiceError as exc:
        return _refused(exc)
    return _back(request, next)


@router.post("/notifications/read-all")
def mark_all_read(
    request: Request, ctx: PortalContext, next: Annotated[str, Form(max_length=200)] = "/portal"
) -> Response:
    service.mark_all_read(ctx)
    return _back(request, next)


def _back(request: Request, next: str) -> Response:
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Trigger": "notifications-read"})
    return see_other(safe_next(next))


# ---- live updates ----------------------------------------------------------------------------------------


@router.get("/events")
async def events(request: Request, resources: ResourcesDep) -> Response:
    """Server-Sent Events: `unread` (the count, whenever it changes), `notification` (each new one) and
    `chat` (each new message of the return the portal shows), after the cursor in `Last-Event-ID` or in
    `?n=&c=` (the page's newest notification and message); without one, from now."""
    try:
        with Session(resources.engine) as db:
            user = verified_user(request, db, resources)
            token = cookies.read(request, resources, cookies.SESSION) or ""
            account_id, engagement_id = user.account.id or 0, user.engagement.id or 0
            start = service.Cursor.parse(request.headers.get("last-event-id")) or _query_cursor(
                request, service.cursor_now(db, account_id, engagement_id)
            )
    except LoginRequired:
        return Response("Log in first.", status_code=401, media_type="text/plain")
    stream = _stream(request, resources, user, sessions.token_hash(token), start)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}  # nginx: pass each event at once
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


def _query_cursor(request: Request, now: service.Cursor) -> service.Cursor:
    def number(name: str, default: int) -> int:
        raw = request.query_params.get(name, "")
        return int(raw) if raw.isdigit() and len(raw) < 12 else default

    return service.Cursor(number("n", now.notification), number("c", now.chat))


async def _stream(
    request: Request, resources: Resources, user: PortalUser, token_hash: str, cursor: service.Cursor
) -> AsyncIterator[str]:
    account_id, engagement_id = user.account.id or 0, user.engagement.id or 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STREAM_SECONDS
    unread: int | None = None
    quiet = 0
    yield "retry: 2000\n\n"
    while loop.time() < deadline and not await request.is_disconnected():
        changes = await run_in_threadpool(_read, resources, token_hash, account_id, engagement_id, cursor)
        if changes is None:  # logged out meanwhile
            yield _event("logout", cursor, {})
            return
        cursor = changes.cursor
        for note in changes.notifications:
            yield _event("notification", cursor, note.model_dump(mode="json"))
        for message in changes.chat:
            yield _event("chat", cursor, {"id": message.id, "html": _chat_html(request, user, message)})
        quiet += 1
        if changes.unread != unread:
            unread = changes.unread
            label = f"Notifications, {unread} unread"
            yield _event("unread", cursor, {"unread": unread, "label": label})
        elif quiet >= 15:
            yield ": still here\n\n"  # a comment now and then: proxies keep an idle connection open
        if changes.notifications or changes.chat or quiet >= 15:
            quiet = 0
        await asyncio.sleep(POLL_SECONDS)


def _read(
    resources: Resources, token_hash: str, account_id: int, engagement_id: int, cursor: service.Cursor
) -> service.Changes | None:
    with Session(resources.engine) as db:
        if not service.session_alive(db, token_hash):
            return None
        return service.changes_since(db, account_id=account_id, engagement_id=engagement_id, cursor=cursor)


def _event(name: str, cursor: service.Cursor, data: object) -> str:
    return f"id: {cursor.event_id()}\nevent: {name}\ndata: {json.dumps(data)}\n\n"


def _chat_html(request: Request, user: PortalUser, message: object) -> str:
    """The message as the Messages page shows it (autoescaped like every template)."""
    template = templates.env.get_template("_chat_message.html")
    return template.render(m=message, user=user, request=request)
