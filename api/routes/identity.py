"""Identity proofing before a remote signature (`services.proofing`): the signer's sets of questions, and
the preparer's side (the date of birth and address the provider needs, each set's outcome, one more set
with a reason). Included by `api.routes.taxpayer` under /api."""

from __future__ import annotations

import datetime as dt
from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from services import preparer_engagements as work
from services import preparer_settings as firm_admin
from services import proofing
from services.deps import PreparerCtx, VerifiedTaxpayer
from services.schemas import Done, RoleName

router = APIRouter(tags=["identity"])


class SetOut(BaseModel):
    """One set of questions a signer was asked: its outcome, never its questions or answers."""

    id: int
    set_number: int
    provider: str
    started_at: datetime
    outcome: Literal["passed", "failed"] | None
    answered_at: datetime | None
    reference_id: str | None


class ProofingOut(BaseModel):
    role: RoleName
    verified: bool
    sets_allowed: int
    sets_left: int
    sign_on_paper: bool = Field(
        description="every set failed: the forms that need proofing are signed on paper"
    )
    sets: list[SetOut]


def _proofing_out(p: proofing.SignerProofing) -> ProofingOut:
    return ProofingOut(
        role=p.role,  # type: ignore[arg-type]
        verified=p.passed is not None,
        sets_allowed=p.sets_allowed,
        sets_left=p.sets_left,
        sign_on_paper=p.locked,
        sets=[
            SetOut(
                id=c.id or 0,
                set_number=c.set_number,
                provider=c.provider,
                started_at=c.started_at,
                outcome=c.outcome,  # type: ignore[arg-type]
                answered_at=c.answered_at,
                reference_id=c.reference_id,
            )
            for c in p.checks
        ],
    )


# ---- the signer ------------------------------------------------------------------------------------------


class ChoiceOut(BaseModel):
    id: str
    text: str


class QuestionOut(BaseModel):
    id: str
    text: str
    choices: list[ChoiceOut]


class QuestionSetOut(BaseModel):
    id: int
    set_number: int
    sets_allowed: int
    real_check: bool = Field(description="false for the development provider, which is not a real check")
    questions: list[QuestionOut]


class AnswersIn(BaseModel):
    answers: dict[str, str] = Field(description="question id -> choice id, for every question of the set")


@router.get("/taxpayer/identity", response_model=ProofingOut)
def my_proofing(ctx: VerifiedTaxpayer) -> ProofingOut:
    """Where the signer stands: verified or not, sets used and left, and whether to sign on paper."""
    return _proofing_out(proofing.proofing_of(ctx.db, ctx.signer.engagement_id, ctx.signer.role.value))


@router.post("/taxpayer/identity/sets", response_model=QuestionSetOut)
async def start_set(ctx: VerifiedTaxpayer) -> QuestionSetOut:
    """The open set of questions, or a new one when the last was answered and sets are left."""
    row, check = await proofing.start(ctx)
    allowed = proofing.proofing_of(ctx.db, row.engagement_id, row.role.value).sets_allowed
    return QuestionSetOut(
        id=row.id or 0,
        set_number=row.set_number,
        sets_allowed=allowed,
        real_check=proofing.provider_for(ctx.resources, row.provider).is_real,
        questions=[
            QuestionOut(id=q.id, text=q.text, choices=[ChoiceOut(id=c.id, text=c.text) for c in q.choices])
            for q in check.questions
        ],
    )


@router.post("/taxpayer/identity/sets/{set_id}/answers", response_model=ProofingOut)
async def answer_set(set_id: int, body: AnswersIn, ctx: VerifiedTaxpayer) -> ProofingOut:
    """Answer a set (3 of 5 right passes). Sending the answers twice grades once."""
    await proofing.answer(ctx, set_id, body.answers)
    return _proofing_out(proofing.proofing_of(ctx.db, ctx.signer.engagement_id, ctx.signer.role.value))


# ---- the preparer ----------------------------------------------------------------------------------------


class IdentityDetailsIn(BaseModel):
    date_of_birth: dt.date
    street: str = Field(max_length=120)
    city: str = Field(max_length=80)
    state: str = Field(max_length=2, description="two letters, e.g. NY")
    zip: str = Field(max_length=10)


class UnlockSetIn(BaseModel):
    reason: str = Field(max_length=500, description="why this signer may try again; kept in the audit log")


@router.put("/engagements/{engagement_id}/signers/{role}/identity-details", response_model=Done)
def set_identity_details(
    engagement_id: int, role: RoleName, body: IdentityDetailsIn, ctx: PreparerCtx
) -> Done:
    """The signer's date of birth and street address for identity proofing, encrypted at rest."""
    engagement = work.engagement_of(ctx.db, ctx.preparer, engagement_id)
    details = proofing.checked_details(body.date_of_birth, body.street, body.city, body.state, body.zip)
    proofing.set_details(ctx, engagement, role, details)
    return Done(message="Saved.")


@router.get("/engagements/{engagement_id}/signers/{role}/identity", response_model=ProofingOut)
def signer_proofing(engagement_id: int, role: RoleName, ctx: PreparerCtx) -> ProofingOut:
    """Each set's outcome for one signer (never the questions or answers)."""
    engagement = work.engagement_of(ctx.db, ctx.preparer, engagement_id)
    return _proofing_out(proofing.proofing_of(ctx.db, engagement.id or 0, role))


@router.post("/engagements/{engagement_id}/signers/{role}/identity/unlock", response_model=ProofingOut)
def unlock_set(engagement_id: int, role: RoleName, body: UnlockSetIn, ctx: PreparerCtx) -> ProofingOut:
    """Allow one more set after every set failed; the reason is required and audited."""
    engagement = work.engagement_of(ctx.db, ctx.preparer, engagement_id)
    proofing.unlock(ctx, engagement, role=role, reason=body.reason)
    return _proofing_out(proofing.proofing_of(ctx.db, engagement.id or 0, role))


class ProofingRulesIn(BaseModel):
    provider: Literal["dev", "http"]
    forms: list[Literal["8879", "8878", "other"]] = Field(description="the forms that need proofing")


class ProofingRulesOut(BaseModel):
    provider: str
    forms: list[str]
    real_check: bool


def _rules_out(rules: proofing.FirmProofing) -> ProofingRulesOut:
    forms = [f for f in proofing.FORMS if f in rules.forms]
    return ProofingRulesOut(provider=rules.provider, forms=forms, real_check=rules.provider != "dev")


@router.get("/firm/identity-proofing", response_model=ProofingRulesOut)
def proofing_rules(ctx: PreparerCtx) -> ProofingRulesOut:
    """The firm's identity-proofing provider and the forms that need it."""
    return _rules_out(proofing.firm_proofing(ctx.db, ctx.firm_id, ctx.resources.settings))


@router.put("/firm/identity-proofing", response_model=ProofingRulesOut)
def change_proofing_rules(body: ProofingRulesIn, ctx: PreparerCtx) -> ProofingRulesOut:
    """Choose the provider and the forms that need proofing (administrators; 403 for the others)."""
    firm_admin.require_admin(ctx.preparer)
    return _rules_out(proofing.change_rules(ctx, provider=body.provider, forms=list(body.forms)))
