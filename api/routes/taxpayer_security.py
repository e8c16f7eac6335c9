"""A signed-in client's security settings: sign-in emails, sessions and remembered browsers.

The rules are in `services.security_settings`; these routes translate. Every reference in a path is
looked up among the caller's own rows: another account's is 404.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request

from services import security_settings
from services.deps import VerifiedTaxpayer
from services.schemas import (
    AccountEmailOut,
    CodeSentOut,
    DeviceOut,
    Done,
    EmailAddIn,
    EmailConfirmIn,
    SecurityOut,
    SessionOut,
)

# Included by `api.routes.taxpayer` (prefix /api).
router = APIRouter(prefix="/taxpayer/account", tags=["taxpayer"])

_REFUSALS: dict[int | str, dict[str, object]] = {
    403: {"description": "wrong current password"},
    404: {"description": "not one of your addresses, sessions or browsers"},
    409: {"description": "the last address, or this very session"},
    429: {"description": "too many wrong passwords (the login throttle), or a code was asked for just now"},
}


@router.get("/security", response_model=SecurityOut)
def security(request: Request, ctx: VerifiedTaxpayer) -> SecurityOut:
    """Your sign-in emails, where you are signed in, and the browsers that log in without a code."""
    return SecurityOut(
        emails=[AccountEmailOut(**asdict(e)) for e in security_settings.emails(ctx)],
        sessions=[SessionOut(**asdict(s)) for s in security_settings.signed_in(ctx, request)],
        devices=[DeviceOut(**asdict(d)) for d in security_settings.remembered(ctx, request)],
    )


@router.post("/emails/code", response_model=CodeSentOut, responses=_REFUSALS)
async def send_email_code(body: EmailAddIn, request: Request, ctx: VerifiedTaxpayer) -> CodeSentOut:
    """Start adding another sign-in email: a one-time code goes to it."""
    sent = await security_settings.send_email_code(
        ctx, request, email=body.email, current_password=body.current_password
    )
    return CodeSentOut(
        message=f"Code sent to {sent.masked_destination}.",
        expires_at=sent.expires_at,
        resend_after=sent.resend_after,
    )


@router.post("/emails", response_model=Done, status_code=201, responses=_REFUSALS)
async def add_email(body: EmailConfirmIn, request: Request, ctx: VerifiedTaxpayer) -> Done:
    """Finish adding the address with its code; you can sign in with it from now on."""
    masked = await security_settings.add_email(ctx, request, email=body.email, code=body.code.strip())
    return Done(message=f"{masked} is added. You can sign in with it.")


@router.delete("/emails/{email_id}", response_model=Done, responses=_REFUSALS)
async def remove_email(email_id: int, ctx: VerifiedTaxpayer) -> Done:
    """Remove one of your addresses (not the last one); removing the primary one makes another primary."""
    masked = await security_settings.remove_email(ctx, email_id=email_id)
    return Done(message=f"{masked} is removed.")


@router.delete("/sessions/{ref}", response_model=Done, responses=_REFUSALS)
async def end_session(ref: str, request: Request, ctx: VerifiedTaxpayer) -> Done:
    """Log out one of your other sessions (this one: POST /api/taxpayer/logout)."""
    await security_settings.end_session(ctx, request, ref=ref)
    return Done(message="That session is logged out.")


@router.delete("/devices/{ref}", response_model=Done, responses=_REFUSALS)
async def forget_device(ref: str, ctx: VerifiedTaxpayer) -> Done:
    """Forget a remembered browser: its next login asks for a code."""
    await security_settings.forget_device(ctx, ref=ref)
    return Done(message="That browser is forgotten.")
