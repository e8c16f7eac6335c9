"""Identity proofing before signing an 8879 remotely: the signer's sets of questions (services.proofing)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response

from esign.proofing import Check
from services import ServiceError, consent, proofing
from services.context import TaxpayerContext
from web.rendering import PortalContext, PortalUser, VerifiedUser, render, safe_next
from web.security import check_csrf
from web.toolkit import see_other

router = APIRouter(prefix="/portal", include_in_schema=False, dependencies=[Depends(check_csrf)])

NOTICES = {
    "identity-failed": "That set did not pass.",
}


def _page(
    request: Request,
    user: PortalUser,
    ctx: TaxpayerContext,
    next_url: str,
    *,
    asked: tuple[int, Check] | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    signer = ctx.signer
    state = proofing.proofing_of(ctx.db, signer.engagement_id, signer.role.value)
    rules = proofing.firm_proofing(ctx.db, consent.firm_of(ctx), ctx.resources.settings)
    context = {
        "user": user,
        "page": "identity",
        "state": state,
        "asked": asked,
        "next": next_url,
        "problem": problem,
        "pass_at": proofing.PASS_AT,
        "dev_provider": rules.provider == "dev",
        "details_missing": signer.identity_details_encrypted is None,
    }
    return render(request, "identity.html", context, status_code, notices=NOTICES)


@router.get("/identity")
async def identity_page(request: Request, user: VerifiedUser, ctx: PortalContext, next: str = "") -> Response:
    """Where the signer stands; an open set's questions are shown again (the provider keeps them)."""
    target = safe_next(next or "/portal/documents")
    state = proofing.proofing_of(ctx.db, ctx.signer.engagement_id, ctx.signer.role.value)
    if state.open is None:
        return _page(request, user, ctx, target)
    return await _questions(request, user, ctx, target)


@router.post("/identity/start")
async def start_set(request: Request, user: VerifiedUser, ctx: PortalContext) -> Response:
    form = await request.form()
    return await _questions(request, user, ctx, safe_next(str(form.get("next", "")) or "/portal/documents"))


async def _questions(request: Request, user: PortalUser, ctx: TaxpayerContext, target: str) -> Response:
    """The open set's questions (a new set when the last was answered), or why there are none."""
    try:
        row, check = await proofing.start(ctx)
    except ServiceError as exc:
        return _page(request, user, ctx, target, problem=exc.message, status_code=exc.status_code)
    return _page(request, user, ctx, target, asked=(row.id or 0, check))


@router.post("/identity/answers")
async def answer_set(request: Request, user: VerifiedUser, ctx: PortalContext) -> Response:
    form = await request.form()
    target = safe_next(str(form.get("next", "")) or "/portal/documents")
    try:
        set_id = int(str(form.get("set", "0")))
        answers = {str(k)[2:]: str(v) for k, v in form.items() if str(k).startswith("a-")}
        row = await proofing.answer(ctx, set_id, answers)
    except ValueError:
        return _page(request, user, ctx, target, problem="No such set of questions.", status_code=404)
    except ServiceError as exc:
        asked = None
        if exc.field and exc.field.startswith("q"):  # a question left out: the same set again
            asked = await _asked_again(ctx)
        return _page(
            request, user, ctx, target, asked=asked, problem=exc.message, status_code=exc.status_code
        )
    if row.outcome == "passed":
        joiner = "&" if "?" in target else "?"
        return see_other(f"{target}{joiner}m=identity-verified")
    return see_other(f"/portal/identity?next={quote(target)}&m=identity-failed")


async def _asked_again(ctx: TaxpayerContext) -> tuple[int, Check] | None:
    try:
        row, check = await proofing.start(ctx)
    except ServiceError:
        return None
    return row.id or 0, check
