"""Engagement pages: new engagement, and one engagement (stepper, signers, documents, chat, timeline).

Reads only; the actions are in `engagement_actions.py`. Parts of the page refresh by themselves: the
status panel, the document lists and the timeline in one poll, the chat in its own.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any
from zoneinfo import available_timezones

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import ValidationError
from temporalio.client import Client

from api import workflow_calls
from api.dashboard import STAGE_LABELS, steps_for
from api.deps import ResourcesDep, SessionDep, TemporalDep
from api.documents import chat_of, documents_of
from api.schemas import EngagementCreate, SignerOut
from api.services import ServiceError
from api.services import preparer_engagements as work
from api.services.portal import uploaders
from api.services.preparer_import import engagement_body, field_errors
from api.services.preparer_timeline import attention_reason, timeline
from core.models import Engagement, EngagementStatus, Preparer, utcnow
from web.preparer.rendering import CurrentWorkspace, PollingWorkspace, Workspace, render

router = APIRouter(prefix="/preparer/engagements", include_in_schema=False)

US_TIME_ZONES = (
    ("America/New_York", "Eastern"),
    ("America/Chicago", "Central"),
    ("America/Denver", "Mountain"),
    ("America/Phoenix", "Arizona"),
    ("America/Los_Angeles", "Pacific"),
    ("America/Anchorage", "Alaska"),
    ("Pacific/Honolulu", "Hawaii"),
    ("America/Puerto_Rico", "Atlantic (Puerto Rico)"),
)
PERSON_FIELDS = ("first_name", "last_name", "ssn", "email", "phone", "time_zone")


def other_time_zones() -> list[str]:
    us = {zone for zone, _ in US_TIME_ZONES}
    return sorted(z for z in available_timezones() if "/" in z and z not in us and not z.startswith("Etc/"))


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
        "us_zones": US_TIME_ZONES,
        "other_zones": other_time_zones(),
        "spouse_open": any(values.get(f"spouse_{f}") for f in PERSON_FIELDS if f != "time_zone"),
    }
    return render(request, "preparer/new_engagement.html", context, status_code)


@router.get("/new")
def new_engagement_page(request: Request, ws: CurrentWorkspace) -> Response:
    values = {
        "tax_year": str(utcnow().year - 1),
        "taxpayer_time_zone": ws.time_zone,
        "spouse_time_zone": ws.time_zone,
    }
    return new_page(request, ws, values)


def new_engagement_values(form: Any) -> dict[str, str]:
    names = ["tax_year", *(f"{p}_{f}" for p in ("taxpayer", "spouse") for f in PERSON_FIELDS)]
    return {name: str(form.get(name, "")).strip()[:200] for name in names}


def validate_new(values: dict[str, str], default_zone: str) -> tuple[EngagementCreate | None, dict[str, str]]:
    try:
        return EngagementCreate.model_validate(engagement_body(values, default_zone)), {}
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
    detail = json.loads(row.detail) if row and row.detail else {}
    people = work.signers_of(db, engagement)
    signers = [
        SignerView(
            work.signer_out(s, a),
            detail.get(f"{s.role.value}_step", "created"),
            (locks or {}).get(s.role.value, False),
        )
        for s, a in people
    ]
    docs = documents_of(db, engagement.id or 0)
    by = uploaders(db, engagement.id or 0)
    names = {s.role.value: s.full_name for s, _ in people}
    owner = db.get(Preparer, engagement.preparer_id)
    stage = row.stage if row else "created"
    return {
        "ws": ws,
        "page": "engagement",
        "e": engagement,
        "row": row,
        "stage": stage,
        "stage_label": STAGE_LABELS.get(stage, stage),
        "steps": steps_for(stage, detail),
        "signers": signers,
        "names": names,
        "title": " & ".join(names.values()) or f"Engagement {engagement.id}",
        "owner": owner.name if owner else "",
        "sent": [d for d in docs if d.direction == "to_client"],
        "received": [d for d in reversed(docs) if d.direction == "to_preparer"],
        "uploaded_by": {d_id: names.get(role, role) for d_id, role in by.items()},
        "closed": stage in ("cancelled", "completed"),
        "reason": attention_reason(db, engagement) if row is not None and row.needs_attention else None,
        "joint": "spouse" in names,
    }


async def signer_locks(client: Client, engagement: Engagement, max_failures: int) -> dict[str, bool]:
    """Which signers the workflow has locked out (identity mismatches, wrong codes); best effort."""
    with contextlib.suppress(HTTPException):
        state = await workflow_calls.query_status(client, engagement.id or 0)
        return {
            role: s.registration_locked or s.code_failures >= max_failures
            for role, s in state.signers.items()
        }
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
    locks = await signer_locks(client, engagement, resources.settings.code_max_failures)
    chat = chat_of(db, engagement.id or 0)
    context = {
        **engagement_context(db, ws, engagement, locks),
        "chat": chat,
        "after": chat[-1].id if chat else 0,
        "timeline": timeline(db, engagement),
        "error": error,
        "error_at": error_at,
    }
    return render(request, "preparer/engagement.html", context, status_code)


def own_engagement(db: SessionDep, ws: Workspace, engagement_id: int) -> Engagement:
    try:
        return work.engagement_of(db, ws.preparer, engagement_id)
    except ServiceError as exc:
        raise HTTPException(exc.status_code, exc.message) from exc


@router.get("/{engagement_id}")
async def view_engagement(
    engagement_id: int,
    request: Request,
    ws: CurrentWorkspace,
    db: SessionDep,
    resources: ResourcesDep,
    client: TemporalDep,
) -> Response:
    try:
        engagement = work.engagement_of(db, ws.preparer, engagement_id)
    except ServiceError as exc:  # another firm's, or none: the same answer, no hint which
        return render(request, "preparer/not_found.html", {"ws": ws, "message": exc.message}, 404)
    work.record_view(db, request, ws.preparer, engagement)
    return await engagement_page(request, ws, db, resources, client, engagement)


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
    locks = await signer_locks(client, engagement, resources.settings.code_max_failures)
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
