"""Retention, as preparers see it: how long the firm keeps closed engagements (administrators change it,
never below the IRS's three years), and legal holds that keep one engagement until lifted.

Neither is pipeline state (the engagement workflow has long finished when they matter), so the service
writes them, with an audit entry for every change. Disposal itself: `core.retention` and the daily
`workflows.disposal.DisposalWorkflow`.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
from pydantic import BaseModel, Field
from sqlmodel import Session, select

from core import audit
from core.models import Disposal, Engagement, FirmSettings, Preparer, utcnow
from core.retention import (
    HOLD_LIFTED_ACTION,
    HOLD_PLACED_ACTION,
    MAXIMUM_YEARS,
    MINIMUM_YEARS,
    Retention,
    retention_of,
)
from services import Refusal, ServiceError
from services import preparer_engagements as work
from services.context import PreparerContext
from services.preparer_settings import actor_of, firm_settings, require_admin

REASON_MAX = 500
TOO_SHORT = (
    f"Keep completed engagements at least {MINIMUM_YEARS} years: the IRS asks for the e-signature record "
    "of Form 8879 to be kept that long."
)


# ---- the firm's retention period -------------------------------------------------------------------------


def parse_years(raw: str) -> int:
    """The retention period typed into a form or sent to the API; refuses (422) what is not allowed."""
    text = raw.strip()
    if not (text.isascii() and text.lstrip("-").isdigit()):
        raise ServiceError(
            Refusal.INVALID,
            f"Enter a whole number of years from {MINIMUM_YEARS} to {MAXIMUM_YEARS}.",
            "retention_years",
        )
    years = int(text)
    if years < MINIMUM_YEARS:
        raise ServiceError(Refusal.INVALID, TOO_SHORT, "retention_years")
    if years > MAXIMUM_YEARS:
        raise ServiceError(
            Refusal.INVALID, f"Keep completed engagements at most {MAXIMUM_YEARS} years.", "retention_years"
        )
    return years


def save_retention_years(db: Session, request: Request, preparer: Preparer, raw: str) -> FirmSettings:
    """Administrators only; nothing is saved when the value is refused."""
    require_admin(preparer)
    years = parse_years(raw)
    current = firm_settings(db, preparer.firm_id)
    before = current.retention_years
    if before == years:
        return current
    current.retention_years = years
    current.updated_at, current.updated_by = utcnow(), preparer.id
    db.add(current)
    audit.record(
        db,
        action="firm.retention_changed",
        actor=actor_of(request, preparer),
        firm_id=preparer.firm_id,
        detail={"from": before, "to": years},
    )
    db.commit()
    return current


# ---- legal holds -----------------------------------------------------------------------------------------


def _locked(db: Session, preparer: Preparer, engagement_id: int) -> Engagement:
    work.engagement_of(db, preparer, engagement_id)  # the firm's, or 404
    # Locked until commit (PostgreSQL) so a hold and the start of a disposal never cross.
    locked = select(Engagement).where(Engagement.id == engagement_id).with_for_update()
    return db.exec(locked.execution_options(populate_existing=True)).one()


def place_hold(ctx: PreparerContext, engagement_id: int, *, reason: str) -> Retention:
    """Keeps the engagement, past its retention date if need be, until a preparer lifts the hold. Placing
    it again changes the reason."""
    reason = " ".join(reason.split())
    if not reason:
        raise ServiceError(
            Refusal.INVALID, "Say why the engagement must be kept (a case, a request, an audit).", "reason"
        )
    if len(reason) > REASON_MAX:
        raise ServiceError(Refusal.INVALID, f"Keep the reason under {REASON_MAX} characters.", "reason")
    db = ctx.db
    engagement = _locked(db, ctx.preparer, engagement_id)
    if engagement.disposed_at is not None or db.get(Disposal, engagement_id) is not None:
        raise ServiceError(
            Refusal.CONFLICT,
            "This engagement's documents and personal data have been disposed of: nothing is left to hold.",
        )
    engagement.legal_hold, engagement.legal_hold_reason = True, reason
    engagement.legal_hold_by, engagement.legal_hold_at = ctx.preparer.id, utcnow()
    db.add(engagement)
    audit.record(
        db,
        action=HOLD_PLACED_ACTION,
        actor=ctx.actor,
        firm_id=engagement.firm_id,
        engagement_id=engagement.id,
        detail={"reason": reason},
    )
    db.commit()
    return retention_of(db, engagement)


def lift_hold(ctx: PreparerContext, engagement_id: int) -> Retention:
    """Ends the hold: the engagement is disposed of at the first daily run after its retention date."""
    db = ctx.db
    engagement = _locked(db, ctx.preparer, engagement_id)
    if not engagement.legal_hold:
        raise ServiceError(Refusal.CONFLICT, "This engagement is not on legal hold.")
    reason = engagement.legal_hold_reason or ""
    engagement.legal_hold, engagement.legal_hold_reason = False, None
    engagement.legal_hold_by, engagement.legal_hold_at = None, None
    db.add(engagement)
    audit.record(
        db,
        action=HOLD_LIFTED_ACTION,
        actor=ctx.actor,
        firm_id=engagement.firm_id,
        engagement_id=engagement.id,
        detail={"reason": reason},
    )
    db.commit()
    return retention_of(db, engagement)


def retention_for(db: Session, preparer: Preparer, engagement_id: int) -> Retention:
    return retention_of(db, work.engagement_of(db, preparer, engagement_id))


# ---- what the JSON API takes and answers -------------------------------------------------------------------


class RetentionSettingIn(BaseModel):
    retention_years: int = Field(
        description=f"years completed engagements are kept, {MINIMUM_YEARS} at least"
    )


class RetentionSettingOut(RetentionSettingIn):
    minimum_years: int = MINIMUM_YEARS


class LegalHoldIn(BaseModel):
    reason: str = Field(max_length=REASON_MAX, description="why the engagement must be kept")


class RetentionOut(BaseModel):
    """How long this engagement is kept; `kept_until` is empty until it completes (or is cancelled)."""

    retention_years: int
    closed_at: datetime | None
    kept_until: datetime | None
    legal_hold: bool
    legal_hold_reason: str | None
    legal_hold_at: datetime | None
    disposed_at: datetime | None

    @classmethod
    def of(cls, retention: Retention) -> RetentionOut:
        return cls(
            retention_years=retention.years,
            closed_at=retention.closed_at,
            kept_until=retention.kept_until,
            legal_hold=retention.legal_hold,
            legal_hold_reason=retention.hold_reason,
            legal_hold_at=retention.hold_at,
            disposed_at=retention.disposed_at,
        )
