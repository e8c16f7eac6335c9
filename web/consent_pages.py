"""Consent to sign electronically: the firm's disclosure, "I agree", and withdrawing (services.consent)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from services import ServiceError, consent
from services.context import TaxpayerContext
from web.rendering import PortalContext, PortalUser, VerifiedUser, render, safe_next
from web.security import check_csrf
from web.toolkit import see_other

router = APIRouter(prefix="/portal", include_in_schema=False, dependencies=[Depends(check_csrf)])

NOTICES = {
    "consent-withdrawn": "Your consent is withdrawn. Documents you still have to sign are signed on paper: "
    "ask your preparer in Messages.",
}


def _page(
    request: Request, user: PortalUser, ctx: TaxpayerContext, next_url: str, problem: str | None = None
) -> Response:
    disclosure = consent.disclosure_for(ctx.db, consent.firm_of(ctx))
    context = {
        "user": user,
        "page": "consent",
        "disclosure": disclosure,
        "agreed": consent.current(ctx),
        "changed": consent.asked_again(ctx),
        "next": next_url,
        "problem": problem,
    }
    return render(request, "consent.html", context, 409 if problem else 200, notices=NOTICES)


@router.get("/consent")
def consent_page(request: Request, user: VerifiedUser, ctx: PortalContext, next: str = "") -> Response:
    return _page(request, user, ctx, safe_next(next or "/portal/documents"))


@router.post("/consent")
def agree(
    request: Request,
    user: VerifiedUser,
    ctx: PortalContext,
    version: Annotated[int, Form()] = 0,
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    target = safe_next(next or "/portal/documents")
    try:
        consent.agree(ctx, version=version)
    except ServiceError as exc:
        return _page(request, user, ctx, target, exc.message)
    joiner = "&" if "?" in target else "?"
    return see_other(f"{target}{joiner}m=consent-agreed")


@router.post("/consent/withdraw")
def withdraw(ctx: PortalContext) -> Response:
    consent.withdraw(ctx)
    return see_other("/portal/consent?m=consent-withdrawn")
