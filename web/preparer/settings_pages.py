"""Firm settings pages: colleagues, reminder schedule and quiet hours, message templates with a preview,
and the preparer's own recovery codes. Every preparer reads them; only the firm's administrators see the
controls that change them, and anyone else who posts a change gets the settings page back with a 403 and
the reason. Rules: `services.preparer_settings` and `services.preparer_colleagues`."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import available_timezones

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response, status

from messaging.wording import REQUIRED_PLACEHOLDER
from services import ServiceError, proofing, retention
from services import placement_templates as places
from services import preparer_auth as auth
from services import preparer_colleagues as people
from services import preparer_settings as firm_admin
from services.deps import OutboxDep, ResourcesDep, SessionDep
from web.preparer.rendering import CurrentWorkspace, Workspace, WorkspaceContext, render
from web.security import check_csrf
from web.toolkit import see_other

router = APIRouter(prefix="/preparer/settings", include_in_schema=False, dependencies=[Depends(check_csrf)])
PURPOSE_LABELS = dict(firm_admin.EDITABLE)
CHANNEL_LABELS = dict(firm_admin.CHANNELS)


# The schedule's units after a value of 1: "1 hour", not "1 hours".
SINGULAR_UNITS = {"days": "day", "hours": "hour", "reminders": "reminder"}
PROOFING_PROVIDERS = [
    ("dev", "Development provider (not a real check)"),
    ("http", "The firm's identity bureau (PORTICO_PROOFING_URL)"),
]


def unit_for(unit: str, value: object) -> str:
    """`unit` as it reads after `value` (a stored number, or what was typed into the form)."""
    return SINGULAR_UNITS.get(unit, unit) if str(value).strip() == "1" else unit


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
    rules = proofing.firm_proofing(db, firm_id, request.app.state.resources.settings)
    context = {
        "ws": ws,
        "page": "settings",
        "is_admin": ws.preparer.is_admin,
        "admins": people.administrators(db, firm_id),
        "colleagues": people.colleagues(db, firm_id),
        "invites": people.pending_invites(db, firm_id),
        "settings": firm_admin.firm_settings(db, firm_id),
        "fields": firm_admin.SCHEDULE_FIELDS,
        "contact_fields": firm_admin.CONTACT_FIELDS,
        "contact_errors": {},
        "minimum_retention_years": retention.MINIMUM_YEARS,
        "unit_for": unit_for,
        "zones": sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc/")),
        "templates": templates,
        "codes_left": auth.recovery_codes_left(db, ws.preparer.id or 0),
        "place_templates": [(row, places.places_summary(row)) for row in places.templates_of(db, firm_id)],
        "signature_labels": places.label_rows(db, firm_id),
        "label_roles": (("taxpayer", "Taxpayer"), ("spouse", "Spouse")),
        "errors": {},
        "values": {},
        "proofing_rules": rules,
        "proofing_asked": [label for form, label in proofing.FORMS.items() if form in rules.forms],
        "proofing_providers": PROOFING_PROVIDERS,
        "proofing_forms": list(proofing.FORMS.items()),
        "alerts": {},  # a refusal, shown in the section (by id) it is about
        **extra,
    }
    return render(request, "preparer/settings.html", context, status_code)


def _refused(request: Request, ws: Workspace, db: SessionDep, exc: ServiceError, section: str) -> Response:
    return _settings_page(request, ws, db, exc.status_code, alerts={section: exc.message})


@router.get("")
def settings_page(request: Request, ws: CurrentWorkspace, db: SessionDep) -> Response:
    return _settings_page(request, ws, db)


@router.post("/schedule")
async def save_schedule(request: Request, ws: CurrentWorkspace, db: SessionDep) -> Response:
    form = await request.form()
    values = {k: str(v)[:100] for k, v in form.items() if isinstance(v, str)}
    try:
        settings, errors = firm_admin.save_firm_settings(db, request, ws.preparer, values)
    except ServiceError as exc:
        return _refused(request, ws, db, exc, "schedule")
    if errors:
        return _settings_page(
            request, ws, db, 422, settings=settings, schedule_errors=errors, schedule_values=values
        )
    return see_other("/preparer/settings?m=settings-saved#schedule")


@router.post("/contact")
async def save_contact(request: Request, ws: CurrentWorkspace, db: SessionDep) -> Response:
    """The office address, phone, email and hours the firm's clients see in the portal."""
    form = await request.form()
    values = {k: str(v)[:400] for k, v in form.items() if isinstance(v, str)}
    try:
        settings, errors = firm_admin.save_firm_contact(db, request, ws.preparer, values)
    except ServiceError as exc:
        return _refused(request, ws, db, exc, "contact")
    if errors:
        return _settings_page(request, ws, db, 422, settings=settings, contact_errors=errors)
    return see_other("/preparer/settings?m=contact-saved#contact")


@router.post("/retention")
def save_retention(
    request: Request,
    ws: CurrentWorkspace,
    db: SessionDep,
    retention_years: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    try:
        retention.save_retention_years(db, request, ws.preparer, retention_years)
    except ServiceError as exc:
        if exc.status_code == status.HTTP_403_FORBIDDEN:
            return _refused(request, ws, db, exc, "retention")
        return _settings_page(
            request, ws, db, exc.status_code, retention_error=exc.message, retention_value=retention_years
        )
    return see_other("/preparer/settings?m=retention-saved#retention")


@router.post("/proofing")
async def save_proofing(request: Request, ws: CurrentWorkspace, ctx: WorkspaceContext) -> Response:
    """The firm's identity provider and the forms that need identity verification (administrators)."""
    form = await request.form()
    try:
        firm_admin.require_admin(ws.preparer)
        forms = [str(f) for f in form.getlist("forms")]
        proofing.change_rules(ctx, provider=str(form.get("provider", "")), forms=forms)
    except ServiceError as exc:
        return _refused(request, ws, ctx.db, exc, "proofing")
    return see_other("/preparer/settings?m=proofing-saved#proofing")


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
        _, errors = await people.invite_colleague(db, request, resources, outbox, ws.preparer, name, email)
    except ServiceError as exc:
        if exc.status_code == status.HTTP_403_FORBIDDEN:
            return _refused(request, ws, db, exc, "preparers")
        errors = {"email": exc.message}
    if errors:
        values = {"name": name, "email": email}
        return _settings_page(request, ws, db, 422, invite_errors=errors, invite_values=values)
    return see_other("/preparer/settings?m=invited#preparers")


# action in the URL → the notice shown after it
COLLEAGUE_ACTIONS = {
    "deactivate": "deactivated",
    "activate": "activated",
    "make-admin": "admin-granted",
    "remove-admin": "admin-revoked",
    "reset-mfa": "mfa-reset",
}


@router.post("/preparers/{colleague_id}/{action}")
def change_colleague(
    colleague_id: int, action: str, request: Request, ws: CurrentWorkspace, db: SessionDep
) -> Response:
    if action not in COLLEAGUE_ACTIONS:
        raise HTTPException(404)
    try:
        if action in ("deactivate", "activate"):
            people.set_active(db, request, ws.preparer, colleague_id, action == "activate")
        elif action in ("make-admin", "remove-admin"):
            people.set_admin(db, request, ws.preparer, colleague_id, action == "make-admin")
        else:
            people.reset_colleague_mfa(db, request, ws.preparer, colleague_id)
    except ServiceError as exc:
        return _refused(request, ws, db, exc, "preparers")
    return see_other(f"/preparer/settings?m={COLLEAGUE_ACTIONS[action]}#preparers")


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
    refused: str = "",
) -> Response:
    default = firm_admin.default_template(purpose, channel)
    context = {
        "ws": ws,
        "page": "settings",
        "is_admin": ws.preparer.is_admin,
        "refused": refused,
        "purpose": purpose,
        "channel": channel,
        "label": PURPOSE_LABELS[purpose],
        "channel_label": CHANNEL_LABELS[channel],
        "subject": subject,
        "body": body,
        "custom": custom,
        "errors": errors or {},
        "placeholders": firm_admin.PLACEHOLDERS,
        "required": REQUIRED_PLACEHOLDER.get(purpose),
        "preview": _preview(ws, purpose, channel, subject, body),
        "default": default,
    }
    return render(request, "preparer/template.html", context, status_code)


def _preview(ws: Workspace, purpose: str, channel: str, subject: str, body: str) -> dict[str, Any]:
    """What a client would read, filled by the function a real send uses; empty while it can't be used."""
    shown = firm_admin.preview(purpose, channel, subject, body, ws.firm.name)
    if shown is None:
        return {"subject": "", "body": "", "segments": 0, "unusable": True}
    return {
        "subject": shown.subject,
        "body": shown.body,
        "segments": firm_admin.sms_segments(shown.body) if channel == "sms" else 0,
        "unusable": False,
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
    context = {"channel": channel, "preview": _preview(ws, purpose, channel, subject, body), "errors": errors}
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
    if action == "preview":
        errors = firm_admin.template_problems(purpose, channel, subject, body)
        return _template_page(request, ws, purpose, channel, subject, body, True, errors)
    try:
        if action == "reset":
            firm_admin.reset_template(db, request, ws.preparer, purpose, channel)
            return see_other(f"/preparer/settings/templates/{purpose}/{channel}?m=template-reset")
        errors = firm_admin.save_template(db, request, ws.preparer, purpose, channel, subject, body)
    except ServiceError as exc:
        text = firm_admin.template_of(db, ws.preparer.firm_id, purpose, channel)
        return _template_page(
            request,
            ws,
            purpose,
            channel,
            text.subject,
            text.body,
            text.custom,
            None,
            exc.status_code,
            exc.message,
        )
    if errors:
        return _template_page(request, ws, purpose, channel, subject, body, True, errors, 422)
    return see_other(f"/preparer/settings/templates/{purpose}/{channel}?m=template-saved")


# ---- signature places: templates per form, the firm's own labels -------------------------------------


@router.post("/placement-templates/{template_id}/delete")
def delete_places_template(
    template_id: int, request: Request, ws: CurrentWorkspace, db: SessionDep
) -> Response:
    try:
        places.delete_template(db, request, ws.preparer, template_id)
    except ServiceError as exc:
        return _refused(request, ws, db, exc, "places")
    return see_other("/preparer/settings?m=places-template-deleted#places")


@router.post("/signature-labels")
def add_signature_label(
    request: Request,
    ws: CurrentWorkspace,
    db: SessionDep,
    role: Annotated[str, Form(max_length=20)] = "",
    text: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        places.add_label(db, request, ws.preparer, role=role, text=text)
    except ServiceError as exc:
        if exc.status_code == status.HTTP_403_FORBIDDEN:
            return _refused(request, ws, db, exc, "places")
        return _settings_page(
            request,
            ws,
            db,
            exc.status_code,
            label_error=exc.message,
            label_values={"role": role, "text": text},
        )
    return see_other("/preparer/settings?m=label-added#places")


@router.post("/signature-labels/{label_id}/delete")
def delete_signature_label(label_id: int, request: Request, ws: CurrentWorkspace, db: SessionDep) -> Response:
    try:
        places.delete_label(db, request, ws.preparer, label_id)
    except ServiceError as exc:
        return _refused(request, ws, db, exc, "places")
    return see_other("/preparer/settings?m=label-deleted#places")
