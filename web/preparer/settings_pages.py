"""Firm settings pages: colleagues, reminder schedule and quiet hours, message templates with a preview,
and the preparer's own recovery codes. Rules: `api.services.preparer_settings`."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import available_timezones

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse

from activities.outbox import Outbox
from api.deps import ResourcesDep, SessionDep
from api.services import ServiceError, new_device
from api.services import preparer_auth as auth
from api.services import preparer_settings as firm_admin
from web.preparer.rendering import CurrentWorkspace, Workspace, render
from web.security import check_csrf

router = APIRouter(prefix="/preparer/settings", include_in_schema=False, dependencies=[Depends(check_csrf)])
OutboxDep = Annotated[Outbox, Depends(new_device.get_outbox)]
PURPOSE_LABELS = dict(firm_admin.EDITABLE)
CHANNEL_LABELS = dict(firm_admin.CHANNELS)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _settings_page(
    request: Request, ws: Workspace, db: SessionDep, status_code: int = 200, **extra: Any
) -> Response:
    firm_id = ws.preparer.firm_id
    templates = [
        (
            purpose,
            label,
            [
                (channel, channel_label, firm_admin.template_of(db, firm_id, purpose, channel).custom)
                for channel, channel_label in firm_admin.CHANNELS
            ],
        )
        for purpose, label in firm_admin.EDITABLE
    ]
    context = {
        "ws": ws,
        "page": "settings",
        "colleagues": firm_admin.colleagues(db, firm_id),
        "invites": firm_admin.pending_invites(db, firm_id),
        "settings": firm_admin.firm_settings(db, firm_id),
        "fields": firm_admin.SCHEDULE_FIELDS,
        "zones": sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc/")),
        "templates": templates,
        "codes_left": auth.recovery_codes_left(db, ws.preparer.id or 0),
        "errors": {},
        "values": {},
        **extra,
    }
    return render(request, "preparer/settings.html", context, status_code)


@router.get("")
def settings_page(request: Request, ws: CurrentWorkspace, db: SessionDep) -> Response:
    return _settings_page(request, ws, db)


@router.post("/schedule")
async def save_schedule(request: Request, ws: CurrentWorkspace, db: SessionDep) -> Response:
    form = await request.form()
    values = {k: str(v)[:100] for k, v in form.items() if isinstance(v, str)}
    settings, errors = firm_admin.save_firm_settings(db, request, ws.preparer, values)
    if errors:
        return _settings_page(
            request, ws, db, 422, settings=settings, schedule_errors=errors, schedule_values=values
        )
    return see_other("/preparer/settings?m=settings-saved#schedule")


# ---- colleagues ----------------------------------------------------------------------------------------


@router.post("/preparers/invite")
async def invite_colleague(
    request: Request,
    ws: CurrentWorkspace,
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
    name: Annotated[str, Form(max_length=200)] = "",
    email: Annotated[str, Form(max_length=254)] = "",
) -> Response:
    try:
        _, errors = await firm_admin.invite_colleague(
            db, request, resources, outbox, ws.preparer, name, email
        )
    except ServiceError as exc:
        errors = {"email": exc.message}
    if errors:
        values = {"name": name, "email": email}
        return _settings_page(request, ws, db, 422, invite_errors=errors, invite_values=values)
    return see_other("/preparer/settings?m=invited#preparers")


@router.post("/preparers/{colleague_id}/{action}")
def change_colleague(
    colleague_id: int, action: str, request: Request, ws: CurrentWorkspace, db: SessionDep
) -> Response:
    try:
        if action in ("deactivate", "activate"):
            firm_admin.set_active(db, request, ws.preparer, colleague_id, action == "activate")
            notice = "deactivated" if action == "deactivate" else "activated"
        elif action == "reset-mfa":
            other = firm_admin.colleague_of(db, ws.preparer, colleague_id)
            if other.id == ws.preparer.id:
                raise ServiceError(
                    409, "Replace your own recovery codes instead; ask a colleague to reset yours."
                )
            auth.reset_mfa(db, request, ws.preparer, other)
            notice = "mfa-reset"
        else:
            raise HTTPException(404)
    except ServiceError as exc:
        return _settings_page(request, ws, db, exc.status_code, colleague_error=exc.message)
    return see_other(f"/preparer/settings?m={notice}#preparers")


# ---- message templates -----------------------------------------------------------------------------------


def _check_template(purpose: str, channel: str) -> None:
    if purpose not in PURPOSE_LABELS or channel not in CHANNEL_LABELS:
        raise HTTPException(404, "No such message.")


def _template_page(
    request: Request,
    ws: Workspace,
    purpose: str,
    channel: str,
    subject: str,
    body: str,
    custom: bool,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    default = firm_admin.default_template(purpose, channel)
    context = {
        "ws": ws,
        "page": "settings",
        "purpose": purpose,
        "channel": channel,
        "label": PURPOSE_LABELS[purpose],
        "channel_label": CHANNEL_LABELS[channel],
        "subject": subject,
        "body": body,
        "custom": custom,
        "errors": errors or {},
        "placeholders": firm_admin.PLACEHOLDERS,
        "preview": _preview(channel, subject, body),
        "default": default,
    }
    return render(request, "preparer/template.html", context, status_code)


def _preview(channel: str, subject: str, body: str) -> dict[str, Any]:
    return {
        "subject": firm_admin.fill(subject) if channel == "email" else "",
        "body": firm_admin.fill(body),
        "segments": firm_admin.sms_segments(body) if channel == "sms" else 0,
    }


@router.get("/templates/{purpose}/{channel}")
def template_page(
    purpose: str, channel: str, request: Request, ws: CurrentWorkspace, db: SessionDep
) -> Response:
    _check_template(purpose, channel)
    text = firm_admin.template_of(db, ws.preparer.firm_id, purpose, channel)
    return _template_page(request, ws, purpose, channel, text.subject, text.body, text.custom)


@router.post("/templates/{purpose}/{channel}/preview")
def template_preview(
    purpose: str,
    channel: str,
    request: Request,
    ws: CurrentWorkspace,
    subject: Annotated[str, Form(max_length=300)] = "",
    body: Annotated[str, Form(max_length=6000)] = "",
) -> Response:
    """The preview, refreshed as the preparer types (htmx)."""
    _check_template(purpose, channel)
    errors = firm_admin.template_problems(purpose, channel, subject, body)
    context = {"channel": channel, "preview": _preview(channel, subject, body), "errors": errors}
    return render(request, "preparer/_template_preview.html", context)


@router.post("/templates/{purpose}/{channel}")
def save_template(
    purpose: str,
    channel: str,
    request: Request,
    ws: CurrentWorkspace,
    db: SessionDep,
    subject: Annotated[str, Form(max_length=300)] = "",
    body: Annotated[str, Form(max_length=6000)] = "",
    action: Annotated[str, Form()] = "save",
) -> Response:
    _check_template(purpose, channel)
    if action == "reset":
        firm_admin.reset_template(db, request, ws.preparer, purpose, channel)
        return see_other(f"/preparer/settings/templates/{purpose}/{channel}?m=template-reset")
    if action == "preview":
        errors = firm_admin.template_problems(purpose, channel, subject, body)
        return _template_page(request, ws, purpose, channel, subject, body, True, errors)
    errors = firm_admin.save_template(db, request, ws.preparer, purpose, channel, subject, body)
    if errors:
        return _template_page(request, ws, purpose, channel, subject, body, True, errors, 422)
    return see_other(f"/preparer/settings/templates/{purpose}/{channel}?m=template-saved")
