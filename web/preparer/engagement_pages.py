"""Engagement pages: new engagement, and one engagement (stepper, signers, documents, chat, timeline).

Reads only; the actions are in `engagement_actions.py`. Parts of the page refresh by themselves: the
status panel, the document lists and the timeline in one poll, the chat in its own.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from html import escape
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from temporalio.client import Client

from core.enums import Role, Stage
from core.identity import guess_time_zone
from core.models import Engagement, EngagementStatus, Preparer, utcnow
from core.progress import Progress
from core.retention import retention_of
from services import ServiceError, proofing, workflow_calls
from services import preparer_engagements as work
from services.dashboard import STAGE_LABELS, steps_for
from services.deps import ResourcesDep, SessionDep, TemporalDep
from services.documents import chat_of, documents_of
from services.portal import uploaders
from services.preparer_import import engagement_body, field_errors
from services.preparer_timeline import attention_reason, timeline
from services.schemas import EngagementCreate, SignerOut
from web.preparer.rendering import (
    CurrentWorkspace,
    PollingWorkspace,
    Workspace,
    WorkspaceContext,
    render,
)
from web.toolkit import US_TIME_ZONES, zone_label

router = APIRouter(prefix="/preparer/engagements", include_in_schema=False)

PERSON_FIELDS = ("first_name", "last_name", "ssn", "email", "phone", "time_zone")


# ---- new engagement --------------------------------------------------------------------------------------


def new_page(
    request: Request,
    ws: Workspace,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    form_error: str | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "ws": ws,
        "page": "new",
        "values": values,
        "errors": errors or {},
        "form_error": form_error,
        "spouse_open": any(values.get(f"spouse_{f}") for f in PERSON_FIELDS if f != "time_zone"),
        "zone_guess": lambda phone: zone_guess_label(phone, ws.time_zone),
    }
    return render(request, "preparer/new_engagement.html", context, status_code)


def zone_guess_label(phone: str, firm_zone: str) -> str:
    """What "Guess from phone number" stands for: the zone the number points to, else the firm's."""
    names = dict(US_TIME_ZONES)
    firm = f"your firm's, {names.get(firm_zone, firm_zone)}"
    guess = guess_time_zone(phone)
    if guess is not None:
        return f"Guessed from the phone number: {names.get(guess, guess)} ({guess})."
    if phone.strip():
        return f"No guess from this phone number: {firm}, unless you choose one."
    return f"Guessed from the phone number once you type it; without one, {firm}."


@router.get("/new/zone-guess")
def zone_guess(request: Request, ws: CurrentWorkspace) -> Response:
    """The guess for the phone number being typed (htmx puts it in the time zone's hint)."""
    phone = next((v for k, v in request.query_params.items() if k.endswith("_phone")), "")
    return HTMLResponse(escape(zone_guess_label(phone[:40], ws.time_zone)))


@router.get("/new")
def new_engagement_page(request: Request, ws: CurrentWorkspace) -> Response:
    values = {"tax_year": str(utcnow().year - 1)}  # time zones: guessed from the phone numbers
    return new_page(request, ws, values)


def new_engagement_values(form: Any) -> dict[str, str]:
    names = [
        "tax_year",
        *(f"{p}_{f}" for p in ("taxpayer", "spouse") for f in PERSON_FIELDS),
        "taxpayer_signs_first",
    ]
    return {name: str(form.get(name, "")).strip()[:200] for name in names}


def validate_new(values: dict[str, str], default_zone: str) -> tuple[EngagementCreate | None, dict[str, str]]:
    body = engagement_body(values, default_zone)
    body["taxpayer_signs_first"] = bool(values.get("taxpayer_signs_first"))
    try:
        return EngagementCreate.model_validate(body), {}
    except ValidationError as exc:
        return None, field_errors(exc)


# ---- one engagement ------------------------------------------------------------------------------------


@dataclass
class SignerView:
    out: SignerOut
    step: str  # created, invited, expired, registered, verified
    locked: bool = False

    @property
    def role(self) -> str:
        return self.out.role


def engagement_context(
    db: SessionDep, ws: Workspace, engagement: Engagement, locks: dict[str, bool] | None = None
) -> dict[str, Any]:
    row = db.get(EngagementStatus, engagement.id)
    progress = Progress.from_json(row.detail if row else None)
    people = work.signers_of(db, engagement)
    signers = [
        SignerView(
            work.signer_out(s, a),
            progress.step_of(s.role),
            (locks or {}).get(s.role.value, False),
        )
        for s, a in people
    ]
    docs = documents_of(db, engagement.id or 0)
    by = uploaders(db, engagement.id or 0)
    names = {s.role.value: s.full_name for s, _ in people}
    owner = db.get(Preparer, engagement.preparer_id)
    stage = row.stage if row else Stage.CREATED
    return {
        "ws": ws,
        "page": "engagement",
        "e": engagement,
        "row": row,
        "stage": stage,
        "stage_label": STAGE_LABELS.get(stage, stage),
        "steps": steps_for(stage, progress),
        "signers": signers,
        "names": names,
        "title": " & ".join(names.values()) or f"Engagement {engagement.id}",
        "owner": owner.name if owner else "",
        "sent": [d for d in docs if d.direction == "to_client"],
        "received": [d for d in reversed(docs) if d.direction == "to_preparer"],
        "uploaded_by": {d_id: names.get(role, "You (the firm)") for d_id, role in by.items()},
        "closed": stage in (Stage.CANCELLED, Stage.COMPLETED),
        "reason": attention_reason(db, engagement) if row is not None and row.needs_attention else None,
        "joint": Role.SPOUSE in names,
        # The workflow refuses documents until the taxpayer has verified; the form says so beforehand.
        "can_send": any(s.role == Role.TAXPAYER and s.out.verified for s in signers),
        "retention": retention_of(db, engagement),
        "client_key": next((s.id for s, _ in people if s.role is Role.TAXPAYER), None),  # the client page
        # Identity proofing: each signer's sets and whether their date of birth and address are entered.
        "proofing": {
            s.role.value: proofing.proofing_of(db, engagement.id or 0, s.role.value) for s, _ in people
        },
        "details_entered": {s.role.value: s.identity_details_encrypted is not None for s, _ in people},
    }


async def signer_locks(client: Client, engagement: Engagement) -> dict[str, bool]:
    """Which signers the workflow has locked out (identity mismatches, wrong codes); best effort."""
    with contextlib.suppress(ServiceError):
        state = await workflow_calls.query_status(client, engagement.id or 0)
        return {s.role: s.locked_out for s in state.progress.signers}
    return {}


async def engagement_page(
    request: Request,
    ws: Workspace,
    db: SessionDep,
    resources: ResourcesDep,
    client: Client,
    engagement: Engagement,
    *,
    error: str | None = None,
    error_at: str = "",
    status_code: int = 200,
) -> Response:
    locks = await signer_locks(client, engagement)
    chat = chat_of(db, engagement.id or 0)
    context = {
        **engagement_context(db, ws, engagement, locks),
        "chat": chat,
        "after": chat[-1].id if chat else 0,
        "timeline": timeline(db, engagement),
        "error": error,
        "error_at": error_at,
    }
    return render(request, "preparer/engagement.html", context, status_code, notices=sent_notices(context))


def sent_notices(context: dict[str, Any]) -> dict[str, str]:
    """`?m=link-sent-<role>-<channel>`: on a joint return the notice says to whom the link went (masked);
    `?m=zone-<role>`: whose time zone is now which."""
    notices = {}
    for s in context["signers"]:
        notices[f"zone-{s.role}"] = f"{s.out.name}'s time zone is now {zone_label(s.out.time_zone)}."
        for channel, masked in (("email", s.out.masked_email), ("sms", s.out.masked_phone)):
            to = f" to {s.out.name} ({masked})" if context["joint"] and masked else ""
            notices[f"link-sent-{s.role}-{channel}"] = f"The link has successfully been sent{to}!"
    return notices


def own_engagement(db: SessionDep, ws: Workspace, engagement_id: int) -> Engagement:
    try:
        return work.engagement_of(db, ws.preparer, engagement_id)
    except ServiceError as exc:
        raise HTTPException(exc.status_code, exc.message) from exc


@router.get("/{engagement_id}")
async def view_engagement(
    engagement_id: int, request: Request, ws: CurrentWorkspace, ctx: WorkspaceContext
) -> Response:
    try:
        engagement = work.engagement_of(ctx.db, ws.preparer, engagement_id)
    except ServiceError as exc:  # another firm's, or none: the same answer, no hint which
        return render(request, "preparer/not_found.html", {"ws": ws, "message": exc.message}, 404)
    work.record_view(ctx, engagement)
    return await engagement_page(request, ws, ctx.db, ctx.resources, ctx.client, engagement)


@router.get("/{engagement_id}/live")
async def live_parts(
    engagement_id: int,
    request: Request,
    ws: PollingWorkspace,
    db: SessionDep,
    resources: ResourcesDep,
    client: TemporalDep,
) -> Response:
    """The status panel, with the document lists and the timeline out of band: one poll for all three."""
    engagement = own_engagement(db, ws, engagement_id)
    locks = await signer_locks(client, engagement)
    context = {
        **engagement_context(db, ws, engagement, locks),
        "timeline": timeline(db, engagement),
        "oob": True,
    }
    return render(request, "preparer/_live.html", context)


@router.get("/{engagement_id}/messages/feed")
def message_feed(
    engagement_id: int, request: Request, ws: PollingWorkspace, db: SessionDep, after: int = 0
) -> Response:
    engagement = own_engagement(db, ws, engagement_id)
    new = chat_of(db, engagement.id or 0, after_id=after)
    context = {"ws": ws, "e": engagement, "chat": new, "after": new[-1].id if new else after}
    return render(request, "preparer/_chat_feed.html", context)
