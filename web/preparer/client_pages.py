"""Client pages (one person's returns across years, their account) and roll over, one or many.

The rules are `services.clients` and `services.rollover`, shared with the JSON API.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from core.enums import Role
from core.models import utcnow
from services import ServiceError, clients, rollover
from services import preparer_engagements as work
from services.context import PreparerContext
from web.preparer.engagement_actions import ActionDep
from web.preparer.engagement_pages import new_page
from web.preparer.rendering import CurrentWorkspace, Workspace, WorkspaceContext, render
from web.security import check_csrf
from web.toolkit import see_other

router = APIRouter(include_in_schema=False)
actions = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])


def _not_found(request: Request, ws: Workspace, exc: ServiceError) -> Response:
    return render(request, "preparer/not_found.html", {"ws": ws, "message": exc.message}, 404)


@router.get("/preparer/clients/{key}")
def client_page(key: int, request: Request, ws: CurrentWorkspace, ctx: WorkspaceContext) -> Response:
    try:
        client = clients.client_of(ctx.db, ctx.resources.cipher, ctx.firm_id, key)
    except ServiceError as exc:  # another firm's client, or none: the same answer
        return _not_found(request, ws, exc)
    context = {
        "ws": ws,
        "page": "client",
        "client": client,
        "next_year": client.newest.engagement.tax_year + 1,
    }
    return render(request, "preparer/client.html", context)


def _prefill(ctx: PreparerContext, client: clients.Client) -> dict[str, str]:
    """The new-engagement form's values from the client's newest return: the same people, with their SSNs."""
    newest = client.newest.engagement
    values = {"tax_year": str(max(utcnow().year - 1, newest.tax_year + 1))}
    for signer, _ in work.signers_of(ctx.db, newest):
        prefix = "taxpayer" if signer.role is Role.TAXPAYER else "spouse"
        values.update(
            {
                f"{prefix}_first_name": signer.first_name,
                f"{prefix}_last_name": signer.last_name,
                f"{prefix}_ssn": ctx.resources.cipher.decrypt_text(signer.ssn_encrypted, "ssn"),
                f"{prefix}_email": signer.email or "",
                f"{prefix}_phone": signer.phone or "",
                f"{prefix}_time_zone": signer.time_zone,
            }
        )
    return values


@actions.post("/preparer/clients/{key}/new-engagement")
def new_engagement_for(key: int, request: Request, ws: CurrentWorkspace, ctx: WorkspaceContext) -> Response:
    """The new-engagement form, filled in. A POST that renders the form rather than a link to it: the SSN
    must never be in a URL (browser history, server and proxy logs, the Referer header), and the
    preparer should not have to type it again from the client's papers."""
    try:
        client = clients.client_of(ctx.db, ctx.resources.cipher, ctx.firm_id, key)
    except ServiceError as exc:
        return _not_found(request, ws, exc)
    return new_page(request, ws, _prefill(ctx, client))


@actions.post("/preparer/engagements/{engagement_id}/rollover")
async def roll_over(engagement_id: int, act: ActionDep, invite: Annotated[str, Form()] = "") -> Response:
    engagement = act.own(engagement_id)
    try:
        done = await rollover.roll_over(act.ctx, engagement, invite=invite == "yes")
    except ServiceError as exc:
        return await act.refused(engagement, exc.message, "rollover", exc.status_code)
    return see_other(f"/preparer/engagements/{done.engagement.id}?m=rolled-over")


@actions.post("/preparer/engagements/rollover")
async def roll_over_many(request: Request, ws: CurrentWorkspace, ctx: WorkspaceContext) -> Response:
    form = await request.form()
    ids = [int(v) for v in form.getlist("ids") if isinstance(v, str) and v.isdigit()]
    try:
        result = await rollover.roll_over_many(ctx, ids, invite=form.get("invite") == "yes")
    except ServiceError as exc:
        if exc.status_code == 404:
            return _not_found(request, ws, exc)
        context = {"ws": ws, "page": "dashboard", "result": None, "error": exc.message}
        return render(request, "preparer/rollover_result.html", context, exc.status_code)
    return render(request, "preparer/rollover_result.html", {"ws": ws, "page": "dashboard", "result": result})
