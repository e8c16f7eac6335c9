"""Firm settings: the reminder schedule and quiet hours new engagements start with, and the firm's own
wording of client messages: checked when saved, previewed and sent through the same
`messaging.wording.render_wording`. Every preparer reads them; only the firm's administrators change
them (`require_admin`). Colleagues: `services.preparer_colleagues`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from zoneinfo import available_timezones

from fastapi import Request
from sqlmodel import Session, select

from core import audit
from core.actor import Actor
from core.models import FirmSettings, MessageTemplate, Preparer, utcnow
from messaging import wording as messages
from messaging.wording import MessageContext, RenderedMessage, Wording, WordingError, render
from services import Refusal, ServiceError
from services.deps import request_actor

ADMIN_ONLY = (
    "Only your firm's administrators can change this: invite or deactivate preparers, choose who is an "
    "administrator, and change the reminders, quiet hours, message templates and signature places."
)


def actor_of(request: Request, preparer: Preparer) -> Actor:
    return request_actor(request, "preparer", str(preparer.id))


def require_admin(preparer: Preparer) -> None:
    """Refuses (403) a preparer who is not one of the firm's administrators."""
    if not preparer.is_admin:
        raise ServiceError(Refusal.FORBIDDEN, ADMIN_ONLY)


# ---- schedule and quiet hours ------------------------------------------------------------------------

# (field, label, unit, lowest, highest)
SCHEDULE_FIELDS: tuple[tuple[str, str, str, int, int], ...] = (
    ("invite_reminder_days", "Remind to create the account every", "days", 1, 30),
    ("invite_reminders_max", "Invitation reminders, at most", "reminders", 0, 10),
    ("invite_expires_days", "The invitation link expires after", "days", 1, 90),
    ("verify_reminder_hours", "Remind to verify the account after", "hours", 1, 72),
    ("signature_reminder_first_days", "First reminder to sign after", "days", 1, 30),
    ("signature_reminder_interval_days", "Then remind to sign every", "days", 1, 30),
    ("signature_reminders_max", "Signature reminders, at most", "reminders", 0, 10),
    ("quiet_hours_start", "Quiet hours: no texts from", "o'clock, client's time", 0, 23),
    ("quiet_hours_end", "Texts may go out again at", "o'clock, client's time", 0, 23),
)


def firm_settings(db: Session, firm_id: int) -> FirmSettings:
    """The firm's settings, or the defaults (unsaved) when it never changed them."""
    return db.get(FirmSettings, firm_id) or FirmSettings(firm_id=firm_id)


def save_firm_settings(
    db: Session, request: Request, preparer: Preparer, values: dict[str, str]
) -> tuple[FirmSettings, dict[str, str]]:
    """Validates every field; saves only when all are right. Returns the settings and errors by field."""
    require_admin(preparer)
    current = firm_settings(db, preparer.firm_id)
    errors: dict[str, str] = {}
    parsed: dict[str, Any] = {}
    for name, label, unit, low, high in SCHEDULE_FIELDS:
        raw = values.get(name, "").strip()
        if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
            what = "an hour" if "o'clock" in unit else f"a whole number of {unit}"
            errors[name] = f"{label}: enter {what} from {low} to {high}."
        else:
            parsed[name] = int(raw)
    zone = values.get("time_zone", "").strip()
    if zone not in available_timezones():
        errors["time_zone"] = "Choose a time zone from the list."
    else:
        parsed["time_zone"] = zone
    if errors:  # show what was typed, keep what is stored
        shown = FirmSettings(**{**current.model_dump(), **parsed})
        return shown, errors
    changed = {k: v for k, v in parsed.items() if getattr(current, k) != v}
    for name, value in parsed.items():
        setattr(current, name, value)
    current.updated_at, current.updated_by = utcnow(), preparer.id
    db.add(current)
    audit.record(
        db,
        action="firm.settings_changed",
        actor=actor_of(request, preparer),
        firm_id=preparer.firm_id,
        detail={k: str(v) for k, v in changed.items()},
    )
    db.commit()
    return current, {}


# ---- message templates -------------------------------------------------------------------------------

_LABELS = {
    "invite": "Invitation",
    "invite_reminder": "Invitation reminder",
    "code": "Verification code",
    "verify_reminder": "Verification reminder",
    "documents_ready": "Documents ready to sign",
    "signature_reminder": "Signature reminder",
}
EDITABLE = tuple((purpose, _LABELS[purpose]) for purpose in messages.EDITABLE_PURPOSES)
CHANNELS = (("email", "Email"), ("sms", "Text message"))
# The preview's example values, one per placeholder `messaging.wording` fills (a test keeps them equal).
PLACEHOLDERS = {
    "firm_name": "Lovelace Tax",
    "first_name": "Shelby",
    "link": "https://portal.example.com/invite/abc123",
    "code": "482913",
    "code_minutes": "10",
    "reminder_number": "2",
}
SMS_SEGMENT = 160


@dataclass
class TemplateText:
    purpose: str
    channel: str
    subject: str
    body: str
    custom: bool


def default_template(purpose: str, channel: str) -> TemplateText:
    """Portico's own wording, with placeholders where the values go."""
    ctx = MessageContext(
        firm_name="{firm_name}",
        recipient_name="{first_name}",
        channel=channel,
        link="{link}",
        code="{code}",
        code_minutes=cast(int, "{code_minutes}"),  # a placeholder in place of the number
        reminder_number=cast(int, "{reminder_number}"),
    )
    rendered = render(purpose, ctx)
    return TemplateText(
        purpose, channel, rendered.subject if channel == "email" else "", rendered.body, False
    )


def template_of(db: Session, firm_id: int, purpose: str, channel: str) -> TemplateText:
    wording = messages.saved_wording(db, firm_id, purpose, channel)
    if wording is None:
        return default_template(purpose, channel)
    return TemplateText(purpose, channel, wording.subject, wording.body, True)


def preview(purpose: str, channel: str, subject: str, body: str, firm_name: str) -> RenderedMessage | None:
    """The message as a client would get it, with example values; None when the wording can't be used
    (`template_problems` says why). The same function fills a real send."""
    ctx = MessageContext(
        firm_name=firm_name or PLACEHOLDERS["firm_name"],
        recipient_name=PLACEHOLDERS["first_name"],
        channel=channel,
        link=PLACEHOLDERS["link"],
        code=PLACEHOLDERS["code"],
        code_minutes=int(PLACEHOLDERS["code_minutes"]),
        reminder_number=int(PLACEHOLDERS["reminder_number"]),
    )
    try:
        return messages.render_wording(purpose, ctx, Wording(subject, body))
    except WordingError:
        return None


def template_problems(purpose: str, channel: str, subject: str, body: str) -> dict[str, str]:
    """What keeps this wording from being saved, by field: the same checks a send makes, and more."""
    errors: dict[str, str] = {}
    if (purpose, channel) not in {(p, c) for p, _ in EDITABLE for c, _ in CHANNELS}:
        errors["purpose"] = "Choose a message from the list."
        return errors
    if not body.strip():
        errors["body"] = "Write the message."
    elif len(body) > 5000:
        errors["body"] = "Keep the message under 5,000 characters."
    if channel == "email" and not subject.strip():
        errors["subject"] = "An email needs a subject."
    elif len(subject) > 200:
        errors["subject"] = "Keep the subject under 200 characters."
    problem = messages.wording_problem(purpose, Wording(subject if channel == "email" else "", body))
    if problem is not None:
        field, message = problem
        errors.setdefault(field, message)
    return errors


def sms_segments(text: str) -> int:
    return max(1, -(-len(text) // SMS_SEGMENT))


def save_template(
    db: Session, request: Request, preparer: Preparer, purpose: str, channel: str, subject: str, body: str
) -> dict[str, str]:
    require_admin(preparer)
    subject = subject.strip() if channel == "email" else ""
    errors = template_problems(purpose, channel, subject, body)
    if errors:
        return errors
    row = db.exec(
        select(MessageTemplate).where(
            MessageTemplate.firm_id == preparer.firm_id,
            MessageTemplate.purpose == purpose,
            MessageTemplate.channel == channel,
        )
    ).first() or MessageTemplate(firm_id=preparer.firm_id, purpose=purpose, channel=channel, body=body)
    row.subject, row.body, row.updated_at, row.updated_by = subject, body.strip(), utcnow(), preparer.id
    db.add(row)
    audit.record(
        db,
        action="firm.template_saved",
        actor=actor_of(request, preparer),
        firm_id=preparer.firm_id,
        detail={"purpose": purpose, "channel": channel},
    )
    db.commit()
    return {}


def reset_template(db: Session, request: Request, preparer: Preparer, purpose: str, channel: str) -> None:
    require_admin(preparer)
    row = db.exec(
        select(MessageTemplate).where(
            MessageTemplate.firm_id == preparer.firm_id,
            MessageTemplate.purpose == purpose,
            MessageTemplate.channel == channel,
        )
    ).first()
    if row is not None:
        db.delete(row)
        audit.record(
            db,
            action="firm.template_reset",
            actor=actor_of(request, preparer),
            firm_id=preparer.firm_id,
            detail={"purpose": purpose, "channel": channel},
        )
        db.commit()


# ---- the firm as its clients reach it (the portal's firm contact) ---------------------------------------

# (field, label, longest)
CONTACT_FIELDS: tuple[tuple[str, str, int], ...] = (
    ("address", "Office address", 300),
    ("phone", "Office phone", 40),
    ("email", "Office email", 254),
    ("hours", "Office hours", 200),
)


def contact_problem(name: str, value: str) -> str | None:
    """Why a firm or preparer contact value can't be saved (empty clears it)."""
    label, longest = next((lbl, n) for f, lbl, n in CONTACT_FIELDS if f == name)
    if len(value) > longest:
        return f"{label}: keep it under {longest} characters."
    if value and name == "phone" and not 7 <= sum(c.isdigit() for c in value) <= 15:
        return f"{label}: enter a phone number, e.g. +1 702 555 0100."
    if value and name == "phone" and any(not (c.isdigit() or c in " +-().x") for c in value):
        return f"{label}: use digits, spaces and + - ( ) only."
    if (
        value
        and name == "email"
        and (value.count("@") != 1 or "." not in value.rpartition("@")[2] or " " in value)
    ):
        return f"{label}: enter an email address, e.g. office@example.com."
    return None


def save_firm_contact(
    db: Session, request: Request, preparer: Preparer, values: dict[str, str]
) -> tuple[FirmSettings, dict[str, str]]:
    """The address, phone, email and hours clients see; administrators only, every field checked."""
    require_admin(preparer)
    current = firm_settings(db, preparer.firm_id)
    cleaned = {name: values.get(name, "").strip() for name, _, _ in CONTACT_FIELDS}
    cleaned["address"] = "\n".join(line.strip() for line in cleaned["address"].splitlines() if line.strip())
    errors = {name: p for name, value in cleaned.items() if (p := contact_problem(name, value))}
    if errors:
        return FirmSettings(**{**current.model_dump(), **cleaned}), errors
    changed = [name for name, value in cleaned.items() if (getattr(current, name) or "") != value]
    for name, value in cleaned.items():
        setattr(current, name, value or None)
    current.updated_at, current.updated_by = utcnow(), preparer.id
    db.add(current)
    audit.record(
        db,
        action="firm.contact_changed",
        actor=actor_of(request, preparer),
        firm_id=preparer.firm_id,
        detail={"changed": changed},
    )
    db.commit()
    return current, {}
