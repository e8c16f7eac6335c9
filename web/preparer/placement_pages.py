"""The placement editor's two requests from the send form (web/static/placement.js): the chosen PDF's
pages with the places Portico would use, and saving the preparer's places as the firm's template for that
form. Both answer JSON; a refusal is `{"detail": ...}` with the status of its kind, the same sentence a
send would show. Rules: `services.placements` and `services.placement_templates`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from services import ServiceError, placements
from web.preparer.engagement_pages import own_engagement
from web.preparer.rendering import CurrentWorkspace, WorkspaceContext
from web.security import check_csrf

router = APIRouter(
    prefix="/preparer/engagements", include_in_schema=False, dependencies=[Depends(check_csrf)]
)


def _refusal(exc: ServiceError) -> JSONResponse:
    return JSONResponse({"detail": exc.message, "field": exc.field}, status_code=exc.status_code)


async def _chosen_pdf(request: Request) -> tuple[UploadFile | None, dict[str, str]]:
    form = await request.form(max_files=1)
    upload = form.get("file")
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    return (upload if isinstance(upload, UploadFile) and upload.filename else None), fields


@router.post("/{engagement_id}/placements/preview")
async def preview_places(
    engagement_id: int, request: Request, ws: CurrentWorkspace, ctx: WorkspaceContext
) -> JSONResponse:
    """The chosen PDF's first pages and its places for the signers chosen (`who`)."""
    engagement = own_engagement(ctx.db, ws, engagement_id)
    upload, fields = await _chosen_pdf(request)
    if upload is None:
        return JSONResponse({"detail": "Choose a PDF."}, status_code=422)
    try:
        placing = await placements.preview(ctx, engagement, upload, fields.get("who", "taxpayer"))
    except ServiceError as exc:
        return _refusal(exc)
    return JSONResponse(placing.as_json(), headers={"Cache-Control": "no-store"})


@router.post("/{engagement_id}/placements/template")
async def save_places_as_template(
    engagement_id: int, request: Request, ws: CurrentWorkspace, ctx: WorkspaceContext
) -> JSONResponse:
    """The places as the firm's template for this PDF's form (replacing the one that matches it)."""
    own_engagement(ctx.db, ws, engagement_id)
    upload, fields = await _chosen_pdf(request)
    if upload is None:
        return JSONResponse({"detail": "Choose a PDF."}, status_code=422)
    try:
        row = await placements.save_as_template(
            ctx, request, upload, fields.get("name", "")[:500], fields.get("places", "")[:100_000]
        )
    except ServiceError as exc:
        return _refusal(exc)
    return JSONResponse(
        {
            "message": f"Saved: “{row.name}” is used for this form from now on.",
            "id": row.id,
            "name": row.name,
        },
        status_code=201,
    )
