"""Legal holds from the engagement page: place one (with a reason) or lift it. The control and the
"Kept until" line are the partial `preparer/_legal_hold.html`. Rules: `services.retention`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Response

from services import ServiceError, retention
from web.preparer.engagement_actions import ActionDep
from web.security import check_csrf

router = APIRouter(
    prefix="/preparer/engagements", include_in_schema=False, dependencies=[Depends(check_csrf)]
)
ERROR_AT = "legal-hold"


@router.post("/{engagement_id}/legal-hold")
async def place_hold(
    engagement_id: int, act: ActionDep, reason: Annotated[str, Form(max_length=2000)] = ""
) -> Response:
    engagement = act.own(engagement_id)
    try:
        retention.place_hold(act.ctx, engagement_id, reason=reason)
    except ServiceError as exc:
        return await act.refused(engagement, exc.message, ERROR_AT, exc.status_code)
    return act.done(engagement, "?m=hold-placed#retention")


@router.post("/{engagement_id}/legal-hold/lift")
async def lift_hold(engagement_id: int, act: ActionDep) -> Response:
    engagement = act.own(engagement_id)
    try:
        retention.lift_hold(act.ctx, engagement_id)
    except ServiceError as exc:
        return await act.refused(engagement, exc.message, ERROR_AT, exc.status_code)
    return act.done(engagement, "?m=hold-lifted#retention")
