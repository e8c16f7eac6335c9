"""A returning client: add an invitation's return to the account they have, and switch between returns.

The invitation page (`account_pages`) offers "sign in to add your return" when the firm already knows the
person; signed in, `/portal/add-return/{token}` asks for the same identity details as registration. Rules:
`services.returning_clients`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from services import ServiceError, cookies, returning_clients, throttling
from services.throttled_step import throttled_step
from web.rendering import PortalContext, VerifiedUser, render, safe_next
from web.security import check_csrf
from web.toolkit import see_other, with_refusal_headers

router = APIRouter(prefix="/portal", include_in_schema=False, dependencies=[Depends(check_csrf)])


@router.get("/add-return/{token}")
async def add_return_page(token: str, request: Request, user: VerifiedUser, ctx: PortalContext) -> Response:
    return await _page(request, user, ctx, token)


@router.post("/add-return/{token}")
async def add_return(
    token: str,
    request: Request,
    user: VerifiedUser,
    ctx: PortalContext,
    last_name: Annotated[str, Form(max_length=80)] = "",
    ssn_last4: Annotated[str, Form(max_length=4)] = "",
) -> Response:
    values = {"last_name": last_name, "ssn_last4": ssn_last4}
    # The same per-link and per-IP throttle as registration: the identity check is the same one.
    async with throttled_step(request, throttling.REGISTER) as step:
        if step.refusal is not None:
            page = await _page(request, user, ctx, token, values, step.refusal)
            return with_refusal_headers(page, step.refusal)
        try:
            engagement = await returning_clients.link_return(
                ctx, token, last_name=last_name, ssn_last4=ssn_last4
            )
        except ServiceError as exc:
            step.failed(exc)
            return await _page(request, user, ctx, token, values, exc)
    response = see_other("/portal?m=return-added")
    cookies.put(response, ctx.resources, cookies.RETURN, str(engagement.id))
    return response


async def _page(
    request: Request,
    user: VerifiedUser,
    ctx: PortalContext,
    token: str,
    values: dict[str, str] | None = None,
    problem: ServiceError | None = None,
) -> Response:
    try:
        info, _ = await returning_clients.invitation_for(ctx.db, ctx.resources, ctx.client, token)
    except ServiceError as exc:
        return render(request, "add_return.html", {"user": user, "broken": exc.message}, exc.status_code)
    context = {
        "user": user,
        "info": info,
        "token": token,
        "values": values or {},
        "errors": {problem.field: problem.message} if problem and problem.field else {},
        "form_error": problem.message if problem and not problem.field else None,
    }
    return render(request, "add_return.html", context, problem.status_code if problem else 200)


@router.post("/return")
def switch_return(
    user: VerifiedUser,
    ctx: PortalContext,
    engagement_id: Annotated[int, Form()] = 0,
    next: Annotated[str, Form(max_length=200)] = "/portal",
) -> Response:
    """Shows another of the person's returns; one the account does not reach is ignored (the newest shows)."""
    response = see_other(safe_next(next))
    if any(r.engagement_id == engagement_id for r in user.returns):
        cookies.put(response, ctx.resources, cookies.RETURN, str(engagement_id))
    return response
