"""What a preparer does on the engagement pages. Each handler checks the firm, calls the same service as
the JSON API (pipeline changes are workflow updates there), then redirects with a notice or shows the
refusal on the page (`EngagementAction` does the checking and the answering)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from sqlmodel import Session
from starlette.datastructures import UploadFile
from temporalio.client import Client

from api.deps import ResourcesDep, SessionDep, TemporalDep
from api.documents import download
from api.schemas import InviteOut
from api.services import preparer_engagements as work
from api.services.preparer_settings import firm_settings
from core.context import Resources
from core.models import Engagement
from web.preparer.engagement_pages import (
    engagement_page,
    new_engagement_values,
    new_page,
    own_engagement,
    validate_new,
)
from web.preparer.rendering import CurrentWorkspace, Workspace, is_htmx, render
from web.security import check_csrf

router = APIRouter(
    prefix="/preparer/engagements", include_in_schema=False, dependencies=[Depends(check_csrf)]
)
MAX_DOCUMENTS = 20
T = TypeVar("T")


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@dataclass(frozen=True)
class EngagementAction:
    """What every action on one engagement needs: the request, who is acting, and how to answer: back to
    the engagement page with a notice, or the page again with the refusal shown at an anchor."""

    request: Request
    ws: Workspace
    db: Session
    resources: Resources
    client: Client

    def own(self, engagement_id: int) -> Engagement:
        """The engagement, when it is the preparer's firm's (404 otherwise)."""
        return own_engagement(self.db, self.ws, engagement_id)

    async def refused(self, engagement: Engagement, error: str, error_at: str, status_code: int) -> Response:
        return await engagement_page(
            self.request,
            self.ws,
            self.db,
            self.resources,
            self.client,
            engagement,
            error=error,
            error_at=error_at,
            status_code=status_code,
        )

    def done(self, engagement: Engagement, then: str) -> Response:
        """`then`: the notice and anchor after the engagement's URL, e.g. `?m=cancelled` or `#chat`."""
        return see_other(f"/preparer/engagements/{engagement.id}{then}")

    async def run(
        self,
        engagement: Engagement,
        step: Callable[[], Awaitable[T]],
        *,
        error_at: str,
        then: str | Callable[[T], str],
    ) -> Response:
        """Does `step`; a refusal (HTTPException) shows on the page at `error_at`, else on to `then`."""
        try:
            result = await step()
        except HTTPException as exc:
            return await self.refused(engagement, str(exc.detail), error_at, exc.status_code)
        return self.done(engagement, then(result) if callable(then) else then)


def engagement_action(
    request: Request, ws: CurrentWorkspace, db: SessionDep, resources: ResourcesDep, client: TemporalDep
) -> EngagementAction:
    return EngagementAction(request, ws, db, resources, client)


ActionDep = Annotated[EngagementAction, Depends(engagement_action)]


@router.post("/new")
async def create_engagement(
    request: Request, ws: CurrentWorkspace, db: SessionDep, resources: ResourcesDep, client: TemporalDep
) -> Response:
    values = new_engagement_values(await request.form())
    body, errors = validate_new(values, firm_settings(db, ws.preparer.firm_id).time_zone)
    if body is None:
        return new_page(request, ws, values, errors, status_code=422)
    try:
        engagement = await work.create(db, client, resources, request, ws.preparer, body)
    except HTTPException as exc:
        return new_page(request, ws, values, form_error=str(exc.detail), status_code=exc.status_code)
    except Exception:  # Temporal unreachable: create_engagement took its rows back
        return new_page(
            request,
            ws,
            values,
            form_error="Portico is busy; nothing was created. Try again shortly.",
            status_code=503,
        )
    return see_other(f"/preparer/engagements/{engagement.id}?m=created")


@router.post("/{engagement_id}/invite")
async def invite(
    engagement_id: int,
    act: ActionDep,
    role: Annotated[str, Form()] = "taxpayer",
    channel: Annotated[str, Form()] = "",
) -> Response:
    engagement = act.own(engagement_id)
    if role not in ("taxpayer", "spouse") or channel not in ("email", "sms"):
        return await act.refused(engagement, "Choose phone or email.", f"invite-{role}", 422)

    def notice(result: InviteOut) -> str:
        sent = "link-sent" if result.scheduled_for is None else "link-scheduled"
        return f"?m={sent}#signer-{role}"

    return await act.run(
        engagement,
        lambda: work.invite(
            act.client, act.resources, act.request, act.ws.preparer, engagement, role, channel
        ),
        error_at=f"invite-{role}",
        then=notice,
    )


@router.post("/{engagement_id}/documents")
async def send_documents(engagement_id: int, act: ActionDep) -> Response:
    engagement = act.own(engagement_id)
    form = await act.request.form()
    files = []
    for index in range(MAX_DOCUMENTS):
        upload = form.get(f"file-{index}")
        if isinstance(upload, UploadFile) and upload.filename:
            files.append(work.OutgoingFile(upload, str(form.get(f"who-{index}", "taxpayer"))))
    return await act.run(
        engagement,
        lambda: work.send_documents(
            act.client, act.resources, act.request, act.ws.preparer, engagement, files
        ),
        error_at="documents",
        then="?m=transfer-completed#documents",
    )


@router.get("/{engagement_id}/documents/{document_id}/download")
def download_document(
    engagement_id: int,
    document_id: int,
    request: Request,
    ws: CurrentWorkspace,
    db: SessionDep,
    resources: ResourcesDep,
    original: bool = False,
) -> Response:
    engagement = own_engagement(db, ws, engagement_id)
    doc = work.document_for_download(db, request, ws.preparer, engagement, document_id)
    response = download(resources.store, doc, original=original)
    if request.query_params.get("save"):
        response.headers["Content-Disposition"] = response.headers["Content-Disposition"].replace(
            "inline", "attachment", 1
        )
    return response


@router.post("/{engagement_id}/messages")
async def send_message(
    engagement_id: int, act: ActionDep, body: Annotated[str, Form(max_length=6000)] = ""
) -> Response:
    engagement = act.own(engagement_id)
    request = act.request
    try:
        work.post_chat(act.db, request, act.ws.preparer, engagement, body)
    except HTTPException as exc:
        if is_htmx(request):
            return render(request, "preparer/_chat_error.html", {"error": exc.detail})
        return await act.refused(engagement, str(exc.detail), "chat", exc.status_code)
    if is_htmx(request):
        response = render(request, "preparer/_chat_error.html", {"error": None})
        response.headers["HX-Trigger"] = "chat-sent"
        return response
    return act.done(engagement, "#chat")


@router.post("/{engagement_id}/cancel")
async def cancel(
    engagement_id: int, act: ActionDep, reason: Annotated[str, Form(max_length=500)] = ""
) -> Response:
    engagement = act.own(engagement_id)
    return await act.run(
        engagement,
        lambda: work.cancel(act.client, act.request, act.ws.preparer, engagement, reason),
        error_at="cancel",
        then="?m=cancelled",
    )


@router.post("/{engagement_id}/unlock")
async def unlock(engagement_id: int, act: ActionDep, role: Annotated[str, Form()] = "taxpayer") -> Response:
    engagement = act.own(engagement_id)
    return await act.run(
        engagement,
        lambda: work.unlock(act.client, act.request, act.ws.preparer, engagement, role),
        error_at="status",
        then="?m=unlocked",
    )
