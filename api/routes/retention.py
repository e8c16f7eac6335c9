"""Retention: the firm's retention period (every preparer reads it, administrators change it) and legal
holds on engagements. Included by `api.routes.preparer` under /api. Rules: `services.retention`."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.routes.firm import FirmAdmin
from services import retention
from services.deps import CurrentPreparer, PreparerCtx, SessionDep
from services.preparer_settings import firm_settings
from services.retention import LegalHoldIn, RetentionOut, RetentionSettingIn, RetentionSettingOut

router = APIRouter(tags=["retention"])


@router.get("/firm/retention", response_model=RetentionSettingOut)
def read_retention(preparer: CurrentPreparer, db: SessionDep) -> RetentionSettingOut:
    """How many years completed engagements are kept before their documents and personal data go."""
    return RetentionSettingOut(retention_years=firm_settings(db, preparer.firm_id).retention_years)


@router.put("/firm/retention", response_model=RetentionSettingOut)
def save_retention(
    body: RetentionSettingIn, request: Request, admin: FirmAdmin, db: SessionDep
) -> RetentionSettingOut:
    """Change it (administrators); 422 below the three years the IRS asks for Form 8879's record."""
    saved = retention.save_retention_years(db, request, admin, str(body.retention_years))
    return RetentionSettingOut(retention_years=saved.retention_years)


@router.get("/engagements/{engagement_id}/retention", response_model=RetentionOut)
def read_engagement_retention(engagement_id: int, preparer: CurrentPreparer, db: SessionDep) -> RetentionOut:
    """Until when the engagement is kept, whether it is on legal hold, whether it was disposed of."""
    return RetentionOut.of(retention.retention_for(db, preparer, engagement_id))


@router.put("/engagements/{engagement_id}/legal-hold", response_model=RetentionOut)
def place_legal_hold(engagement_id: int, body: LegalHoldIn, ctx: PreparerCtx) -> RetentionOut:
    """Keep the engagement past its retention date until the hold is lifted (the reason is audited)."""
    return RetentionOut.of(retention.place_hold(ctx, engagement_id, reason=body.reason))


@router.delete("/engagements/{engagement_id}/legal-hold", response_model=RetentionOut)
def lift_legal_hold(engagement_id: int, ctx: PreparerCtx) -> RetentionOut:
    """Lift the hold: the engagement is disposed of at the first daily run past its retention date."""
    return RetentionOut.of(retention.lift_hold(ctx, engagement_id))
