"""What a preparer does on the engagement pages. Each handler checks the firm, calls the same service as
the JSON API (pipeline changes are workflow updates there), then redirects with a notice or shows the
refusal on the page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import UploadFile

from api.deps import ResourcesDep, SessionDep, TemporalDep
from api.documents import download
from api.services import preparer_engagements as work
from api.services.preparer_settings import firm_settings
from web.preparer.engagement_pages import (
    engagement_page,
    new_engagement_values,
    new_page,
    own_engagement,
    validate_new,
)
from web.preparer.rendering import CurrentWorkspace, is_htmx, render
from web.security import check_csrf

router = APIRouter(
    prefix="/preparer/engagements", include_in_schema=False, dependencies=[Depends(check_csrf)]
)
MAX_DOCUMENTS = 20


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


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
    request: Request,
    ws: CurrentWorkspace,
    db: SessionDep,
    resources: ResourcesDep,
    client: TemporalDep,
    role: Annotated[str, Form()] = "taxpayer",
    channel: Annotated[str, Form()] = "",
) -> Response:
    engagement = own_engagement(db, ws, engagement_id)
    if role not in ("taxpayer", "spouse") or channel not in ("email", "sms"):
        return await engagement_page(
            request,
            ws,
            db,
            resources,
            client,
            engagement,
            error="Choose phone or email.",
            error_at=f"invite-{role}",
            status_code=422,
        )
    try:
        result = await work.invite(client, resources, request, ws.preparer, engagement, role, channel)
    except HTTPException as exc:
        return await engagement_page(
            request,
            ws,
            db,
            resources,
            client,
            engagement,
            error=str(exc.detail),
            error_at=f"invite-{role}",
            status_code=exc.status_code,
        )
    notice = "link-sent" if result.scheduled_for is None else "link-scheduled"
    return see_other(f"/preparer/engagements/{engagement.id}?m={notice}#signer-{role}")


@router.post("/{engagement_id}/documents")
async def send_documents(
    engagement_id: int,
    request: Request,
    ws: CurrentWorkspace,
    db: SessionDep,
    resources: ResourcesDep,
    client: TemporalDep,
) -> Response:
    engagement = own_engagement(db, ws, engagement_id)
    form = await request.form()
    files = []
    for index in range(MAX_DOCUMENTS):
        upload = form.get(f"file-{index}")
        if isinstance(upload, UploadFile) and upload.filename:
            files.append(work.OutgoingFile(upload, str(form.get(f"who-{index}", "taxpayer"))))
    try:
        await work.send_documents(client, resources, request, ws.preparer, engagement, files)
    except HTTPException as exc:
        return await engagement_page(
            request,
            ws,
            db,
            resources,
            client,
            engagement,
            error=str(exc.detail),
            error_at="documents",
            status_code=exc.status_code,
        )
    return see_other(f"/preparer/engagements/{engagement.id}?m=transfer-completed#documents")


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
    engagement_id: int,
    request: Request,
    ws: CurrentWorkspace,
    db: SessionDep,
    resources: ResourcesDep,
    client: TemporalDep,
    body: Annotated[str, Form(max_length=6000)] = "",
) -> Response:
    engagement = own_engagement(db, ws, engagement_id)
    try:
        work.post_chat(db, request, ws.preparer, engagement, body)
    except HTTPException as exc:
        if is_htmx(request):
            return render(request, "preparer/_chat_error.html", {"error": exc.detail})
        return await engagement_page(
            request,
            ws,
            db,
            resources,
            client,
            engagement,
            error=str(exc.detail),
            error_at="chat",
            status_code=exc.status_code,
        )
    if is_htmx(request):
        response = render(request, "preparer/_chat_error.html", {"error": None})
        response.headers["HX-Trigger"] = "chat-sent"
        return response
    return see_other(f"/preparer/engagements/{engagement.id}#chat")


@router.post("/{engagement_id}/cancel")
async def cancel(
    engagement_id: int,
    request: Request,
    ws: CurrentWorkspace,
    db: SessionDep,
    resources: ResourcesDep,
    client: TemporalDep,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    engagement = own_engagement(db, ws, engagement_id)
    try:
        await work.cancel(client, request, ws.preparer, engagement, reason)
    except HTTPException as exc:
        return await engagement_page(
            request,
            ws,
            db,
            resources,
            client,
            engagement,
            error=str(exc.detail),
            error_at="cancel",
            status_code=exc.status_code,
        )
    return see_other(f"/preparer/engagements/{engagement.id}?m=cancelled")


@router.post("/{engagement_id}/unlock")
async def unlock(
    engagement_id: int,
    request: Request,
    ws: CurrentWorkspace,
    db: SessionDep,
    resources: ResourcesDep,
    client: TemporalDep,
    role: Annotated[str, Form()] = "taxpayer",
) -> Response:
    engagement = own_engagement(db, ws, engagement_id)
    try:
        await work.unlock(client, request, ws.preparer, engagement, role)
    except HTTPException as exc:
        return await engagement_page(
            request,
            ws,
            db,
            resources,
            client,
            engagement,
            error=str(exc.detail),
            error_at="status",
            status_code=exc.status_code,
        )
    return see_other(f"/preparer/engagements/{engagement.id}?m=unlocked")
