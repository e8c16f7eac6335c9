"""The firm: its reminder schedule and quiet hours, its message wording, and its preparers. Every preparer
of the firm reads them; only its administrators change them (403 for anyone else). Included by
`api.routes.preparer` under /api. Rules: `services.preparer_settings` and `preparer_colleagues`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from core.models import FirmSettings, Preparer
from services import preparer_colleagues as people
from services import preparer_settings as firm_admin
from services.deps import CurrentPreparer, OutboxDep, ResourcesDep, SessionDep
from services.schemas import (
    ColleagueChangeIn,
    ColleagueInviteIn,
    ColleagueOut,
    Done,
    FirmSettingsIn,
    FirmSettingsOut,
)

router = APIRouter(prefix="/firm", tags=["firm"])


def current_admin(preparer: CurrentPreparer) -> Preparer:
    """A preparer (both factors) who is one of the firm's administrators; 403 for the others."""
    firm_admin.require_admin(preparer)
    return preparer


FirmAdmin = Annotated[Preparer, Depends(current_admin)]


def _unprocessable(errors: dict[str, str]) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, " ".join(errors.values()))


# ---- reminder schedule and quiet hours -------------------------------------------------------------------


def _settings_out(row: FirmSettings) -> FirmSettingsOut:
    return FirmSettingsOut.model_validate(row, from_attributes=True)


@router.get("/settings", response_model=FirmSettingsOut)
def read_settings(preparer: CurrentPreparer, db: SessionDep) -> FirmSettingsOut:
    """The reminder schedule, quiet hours and time zone new engagements start with."""
    return _settings_out(firm_admin.firm_settings(db, preparer.firm_id))


@router.put("/settings", response_model=FirmSettingsOut)
def save_settings(
    body: FirmSettingsIn, request: Request, admin: FirmAdmin, db: SessionDep
) -> FirmSettingsOut:
    """Change them (administrators); 422 names every value out of range, and nothing is saved then."""
    values = {name: str(value) for name, value in body.model_dump().items()}
    saved, errors = firm_admin.save_firm_settings(db, request, admin, values)
    if errors:
        raise _unprocessable(errors)
    return _settings_out(saved)


# ---- preparers -------------------------------------------------------------------------------------------


def _colleague_out(colleague: people.Colleague) -> ColleagueOut:
    p = colleague.preparer
    return ColleagueOut(
        id=p.id or 0,
        name=p.name,
        email=p.email,
        active=p.active,
        is_admin=p.is_admin,
        two_step_login=colleague.enrolled,
    )


@router.get("/preparers", response_model=list[ColleagueOut])
def list_preparers(preparer: CurrentPreparer, db: SessionDep) -> list[ColleagueOut]:
    """The firm's preparers: active or not, administrator or not, two-step login set up or not."""
    return [_colleague_out(c) for c in people.colleagues(db, preparer.firm_id)]


@router.post("/preparers/invite", response_model=Done, status_code=status.HTTP_201_CREATED)
async def invite_preparer(
    body: ColleagueInviteIn,
    request: Request,
    admin: FirmAdmin,
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
) -> Done:
    """Invite a colleague by email (administrators): the link lets them choose a password, for 7 days."""
    invite, errors = await people.invite_colleague(
        db, request, resources, outbox, admin, body.name, body.email
    )
    if errors:
        raise _unprocessable(errors)
    return Done(message=f"Invitation sent to {invite.email}.")


@router.patch("/preparers/{preparer_id}", response_model=ColleagueOut)
def change_preparer(
    preparer_id: int, body: ColleagueChangeIn, request: Request, admin: FirmAdmin, db: SessionDep
) -> ColleagueOut:
    """Deactivate or reactivate a colleague, or make them an administrator or not (administrators). 409
    when it would leave the firm without an active administrator, or for deactivating oneself."""
    if body.is_admin is not None:
        people.set_admin(db, request, admin, preparer_id, body.is_admin)
    elif body.active is not None:
        people.set_active(db, request, admin, preparer_id, body.active)
    changed = next(c for c in people.colleagues(db, admin.firm_id) if c.preparer.id == preparer_id)
    return _colleague_out(changed)


# ---- the firm's message wording --------------------------------------------------------------------------


class MessageTemplateIn(BaseModel):
    """The firm's wording: placeholders such as {first_name} in braces (`{{`, `}}` for a brace itself)."""

    subject: str = Field(default="", max_length=300, description="email only")
    body: str = Field(max_length=6000)


class MessageTemplateOut(BaseModel):
    purpose: str
    channel: str
    subject: str
    body: str
    custom: bool = Field(description="false: Portico's own wording")


def _editable(purpose: str, channel: str) -> None:
    if (purpose, channel) not in {(p, c) for p, _ in firm_admin.EDITABLE for c, _ in firm_admin.CHANNELS}:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "No such message.")


@router.get("/templates/{purpose}/{channel}", response_model=MessageTemplateOut)
def read_template(
    purpose: str, channel: str, preparer: CurrentPreparer, db: SessionDep
) -> MessageTemplateOut:
    """The wording the firm's clients get for this message (the firm's own, or Portico's)."""
    _editable(purpose, channel)
    text = firm_admin.template_of(db, preparer.firm_id, purpose, channel)
    return MessageTemplateOut(
        purpose=purpose, channel=channel, subject=text.subject, body=text.body, custom=text.custom
    )


@router.put("/templates/{purpose}/{channel}", response_model=MessageTemplateOut)
def save_template(
    purpose: str,
    channel: str,
    body: MessageTemplateIn,
    request: Request,
    admin: FirmAdmin,
    db: SessionDep,
) -> MessageTemplateOut:
    """Save the firm's wording (administrators); refused (422) when it can't be sent: unknown placeholder,
    stray brace, or the code (verification code) or link (invitations) left out."""
    _editable(purpose, channel)
    errors = firm_admin.save_template(db, request, admin, purpose, channel, body.subject, body.body)
    if errors:
        raise _unprocessable(errors)
    return read_template(purpose, channel, admin, db)


@router.delete("/templates/{purpose}/{channel}", response_model=MessageTemplateOut)
def reset_template(
    purpose: str, channel: str, request: Request, admin: FirmAdmin, db: SessionDep
) -> MessageTemplateOut:
    """Go back to Portico's wording for this message (administrators)."""
    _editable(purpose, channel)
    firm_admin.reset_template(db, request, admin, purpose, channel)
    return read_template(purpose, channel, admin, db)
