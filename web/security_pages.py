"""The Account page's security settings: add or remove a sign-in email, end a session, forget a browser.

Each answers a plain form post with a redirect to the Account page and a notice, or the page again with
the problem at its form. The rules are in `services.security_settings`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from services import Refusal, ServiceError, account_changes, security_settings
from web.account_pages import six_digits
from web.portal_pages import _account_page
from web.rendering import PortalContext, VerifiedUser
from web.security import check_csrf
from web.toolkit import see_other

router = APIRouter(prefix="/portal/account", include_in_schema=False, dependencies=[Depends(check_csrf)])
FORM = "email-add"


def _pending(value: str, masked: str) -> dict[str, str]:
    """An address waiting for its code: back into the page (stored nowhere), as the code is bound to it."""
    return {"kind": FORM, "value": value.strip(), "masked": masked}


@router.post("/emails/code")
async def send_email_code(
    request: Request,
    user: VerifiedUser,
    ctx: PortalContext,
    value: Annotated[str, Form(max_length=254)] = "",
    current_password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    try:
        sent = await security_settings.send_email_code(
            ctx, request, email=value, current_password=current_password
        )
    except ServiceError as exc:
        return _account_page(request, user, ctx=ctx, problem=exc, form=FORM)
    return _account_page(request, user, ctx=ctx, pending=_pending(value, sent.masked_destination))


@router.post("/emails")
async def add_email(
    request: Request,
    user: VerifiedUser,
    ctx: PortalContext,
    value: Annotated[str, Form(max_length=254)] = "",
    code: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    digits = six_digits(code)
    try:
        if digits is None:
            raise ServiceError(Refusal.INVALID, "Enter the 6-digit code.", "code")
        await security_settings.add_email(ctx, request, email=value, code=digits)
    except ServiceError as exc:
        pending = None
        if exc.field == "code" and exc.status_code == 422:  # let them try the code again
            pending = _pending(value, account_changes.masked_or_blank("email", value))
        return _account_page(request, user, ctx=ctx, problem=exc, form=FORM, pending=pending)
    return see_other("/portal/account?m=email-added")


@router.post("/emails/{email_id}/remove")
async def remove_email(email_id: int, request: Request, user: VerifiedUser, ctx: PortalContext) -> Response:
    try:
        await security_settings.remove_email(ctx, email_id=email_id)
    except ServiceError as exc:
        return _account_page(request, user, ctx=ctx, problem=exc, form="emails")
    return see_other("/portal/account?m=email-removed")


@router.post("/sessions/{ref}/end")
async def end_session(ref: str, request: Request, user: VerifiedUser, ctx: PortalContext) -> Response:
    try:
        await security_settings.end_session(ctx, request, ref=ref)
    except ServiceError as exc:
        return _account_page(request, user, ctx=ctx, problem=exc, form="sessions")
    return see_other("/portal/account?m=session-ended")


@router.post("/devices/{ref}/forget")
async def forget_device(ref: str, request: Request, user: VerifiedUser, ctx: PortalContext) -> Response:
    try:
        await security_settings.forget_device(ctx, ref=ref)
    except ServiceError as exc:
        return _account_page(request, user, ctx=ctx, problem=exc, form="sessions")
    return see_other("/portal/account?m=device-forgotten")
