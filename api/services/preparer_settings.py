"""Firm settings: colleagues (invite, deactivate, reset two-step login), the reminder schedule and quiet
hours new engagements start with, and the firm's own wording of client messages (stored and previewed;
`activities/messages.py` does not read them yet — that wiring is a follow-up)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast
from zoneinfo import available_timezones

from fastapi import Request, status
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from activities.delivery import DeliveryError, OutgoingMessage
from activities.messages import MessageContext, render
from activities.outbox import Outbox
from api.deps import request_actor
from api.services import ServiceError
from core import audit, sessions
from core.actor import Actor
from core.context import Resources
from core.identity import InvalidContact, normalise_email
from core.models import (
    Firm,
    FirmSettings,
    MessageTemplate,
    Preparer,
    PreparerInvite,
    PreparerMfa,
    utcnow,
)
from core.passwords import hash_password, password_problems

INVITE_LIFETIME = timedelta(days=7)


def _actor(request: Request, preparer: Preparer) -> Actor:
    return request_actor(request, "preparer", str(preparer.id))


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
    current = firm_settings(db, preparer.firm_id)
    errors: dict[str, str] = {}
    parsed: dict[str, Any] = {}
    for name, label, unit, low, high in SCHEDULE_FIELDS:
        raw = values.get(name, "").strip()
        if not raw.isdigit() or not low <= int(raw) <= high:
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
        actor=_actor(request, preparer),
        firm_id=preparer.firm_id,
        detail={k: str(v) for k, v in changed.items()},
    )
    db.commit()
    return current, {}


# ---- message templates -------------------------------------------------------------------------------

EDITABLE = (
    ("invite", "Invitation"),
    ("invite_reminder", "Invitation reminder"),
    ("code", "Verification code"),
    ("verify_reminder", "Verification reminder"),
    ("documents_ready", "Documents ready to sign"),
    ("signature_reminder", "Signature reminder"),
)
CHANNELS = (("email", "Email"), ("sms", "Text message"))
PLACEHOLDERS = {
    "firm_name": "Lovelace Tax",
    "first_name": "Shelby",
    "link": "https://portal.example.com/invite/abc123",
    "code": "482913",
    "code_minutes": "10",
    "reminder_number": "2",
}
REQUIRED = {"invite": "link", "invite_reminder": "link", "code": "code"}
_PLACEHOLDER = re.compile(r"\{(\w*)\}")
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
    row = db.exec(
        select(MessageTemplate).where(
            MessageTemplate.firm_id == firm_id,
            MessageTemplate.purpose == purpose,
            MessageTemplate.channel == channel,
        )
    ).first()
    if row is None:
        return default_template(purpose, channel)
    return TemplateText(purpose, channel, row.subject, row.body, True)


def fill(text: str) -> str:
    """The text with sample values in its placeholders (the preview)."""
    return _PLACEHOLDER.sub(lambda m: PLACEHOLDERS.get(m.group(1), m.group(0)), text)


def template_problems(purpose: str, channel: str, subject: str, body: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if (purpose, channel) not in {(p, c) for p, _ in EDITABLE for c, _ in CHANNELS}:
        errors["purpose"] = "Choose a message from the list."
        return errors
    for name, text in (("subject", subject), ("body", body)):
        unknown = sorted({m for m in _PLACEHOLDER.findall(text) if m not in PLACEHOLDERS})
        if unknown:
            allowed = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            errors[name] = f"Unknown placeholder {{{unknown[0]}}}. You can use {allowed}."
    if not body.strip():
        errors["body"] = "Write the message."
    elif len(body) > 5000:
        errors["body"] = "Keep the message under 5,000 characters."
    needed = REQUIRED.get(purpose)
    if needed and f"{{{needed}}}" not in body and "body" not in errors:
        errors["body"] = f"This message must contain {{{needed}}}."
    if channel == "email" and not subject.strip():
        errors["subject"] = "An email needs a subject."
    if len(subject) > 200:
        errors["subject"] = "Keep the subject under 200 characters."
    return errors


def sms_segments(body: str) -> int:
    return max(1, -(-len(fill(body)) // SMS_SEGMENT))


def save_template(
    db: Session, request: Request, preparer: Preparer, purpose: str, channel: str, subject: str, body: str
) -> dict[str, str]:
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
        actor=_actor(request, preparer),
        firm_id=preparer.firm_id,
        detail={"purpose": purpose, "channel": channel},
    )
    db.commit()
    return {}


def reset_template(db: Session, request: Request, preparer: Preparer, purpose: str, channel: str) -> None:
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
            actor=_actor(request, preparer),
            firm_id=preparer.firm_id,
            detail={"purpose": purpose, "channel": channel},
        )
        db.commit()


# ---- colleagues --------------------------------------------------------------------------------------


@dataclass
class Colleague:
    preparer: Preparer
    enrolled: bool


def colleagues(db: Session, firm_id: int) -> list[Colleague]:
    people = db.exec(select(Preparer).where(Preparer.firm_id == firm_id).order_by(col(Preparer.name))).all()
    ids = [p.id for p in people]
    enrolled = {
        m.preparer_id
        for m in db.exec(select(PreparerMfa).where(col(PreparerMfa.preparer_id).in_(ids)))
        if m.enrolled_at is not None
    }
    return [Colleague(p, p.id in enrolled) for p in people]


def colleague_of(db: Session, preparer: Preparer, colleague_id: int) -> Preparer:
    other = db.exec(
        select(Preparer).where(Preparer.id == colleague_id, Preparer.firm_id == preparer.firm_id)
    ).first()
    if other is None:
        raise ServiceError(status.HTTP_404_NOT_FOUND, "No such preparer.")
    return other


def pending_invites(db: Session, firm_id: int) -> list[PreparerInvite]:
    return list(
        db.exec(
            select(PreparerInvite)
            .where(
                PreparerInvite.firm_id == firm_id,
                col(PreparerInvite.accepted_at).is_(None),
                col(PreparerInvite.expires_at) > utcnow(),
            )
            .order_by(col(PreparerInvite.id).desc())
        ).all()
    )


def set_active(db: Session, request: Request, by: Preparer, colleague_id: int, active: bool) -> Preparer:
    """Deactivating ends every session at once; their engagements stay with the firm."""
    other = colleague_of(db, by, colleague_id)
    if other.id == by.id and not active:
        raise ServiceError(status.HTTP_409_CONFLICT, "You can't deactivate yourself.")
    other.active = active
    db.add(other)
    if not active:
        sessions.end_all(db, "preparer", other.id or 0)
    audit.record(
        db,
        action="preparer.activated" if active else "preparer.deactivated",
        actor=_actor(request, by),
        firm_id=by.firm_id,
        detail={"preparer": other.id, "email": other.email},
    )
    db.commit()
    return other


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def invite_colleague(
    db: Session, request: Request, resources: Resources, outbox: Outbox, by: Preparer, name: str, email: str
) -> tuple[PreparerInvite, dict[str, str]]:
    errors: dict[str, str] = {}
    name = name.strip()
    if not name or len(name) > 120:
        errors["name"] = "Enter their name."
    try:
        email = normalise_email(email)
    except InvalidContact:
        errors["email"] = "Enter an email address, like name@example.com."
    if not errors and db.exec(select(Preparer).where(Preparer.email == email)).first() is not None:
        errors["email"] = "A preparer with this email already exists."
    invite = PreparerInvite(
        firm_id=by.firm_id, email=email, name=name, token_hash="", invited_by=by.id or 0, expires_at=utcnow()
    )
    if errors:
        return invite, errors
    token = secrets.token_urlsafe(32)
    invite.token_hash, invite.expires_at = _token_hash(token), utcnow() + INVITE_LIFETIME
    db.add(invite)
    audit.record(
        db, action="preparer.invited", actor=_actor(request, by), firm_id=by.firm_id, detail={"email": email}
    )
    db.commit()
    firm = db.get(Firm, by.firm_id)
    link = f"{resources.settings.public_url.rstrip('/')}/preparer/join/{token}"
    message = OutgoingMessage(
        "email",
        email,
        f"{by.name} invites you to {firm.name if firm else 'Portico'}",
        f"Hello {name},\n\n{by.name} invites you to the Portico workspace of "
        f"{firm.name if firm else 'the firm'}. Choose your password here (the link works for 7 days):\n\n"
        f"{link}\n\nYou will set up two-step login with an authenticator app at your first login.\n",
    )
    try:
        await run_in_threadpool(
            outbox.send, f"preparer-invite:{invite.id}", None, "preparer_invite", lambda _s: (message, None)
        )
    except DeliveryError as exc:
        raise ServiceError(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "The invitation could not be sent just now. Try again shortly.",
        ) from exc
    return invite, {}


def open_invite(db: Session, token: str) -> PreparerInvite:
    invite = db.exec(select(PreparerInvite).where(PreparerInvite.token_hash == _token_hash(token))).first()
    if invite is None or invite.accepted_at is not None or invite.expires_at < utcnow():
        raise ServiceError(
            status.HTTP_404_NOT_FOUND, "This invitation is no longer valid. Ask your colleague for a new one."
        )
    return invite


def accept_invite(
    db: Session, request: Request, token: str, password: str
) -> tuple[Preparer | None, list[str]]:
    invite = open_invite(db, token)
    problems = password_problems(password, invite.email)
    if problems:
        return None, problems
    if db.exec(select(Preparer).where(Preparer.email == invite.email)).first() is not None:
        raise ServiceError(
            status.HTTP_409_CONFLICT, "A preparer with this email already exists. Log in instead."
        )
    preparer = Preparer(
        firm_id=invite.firm_id, email=invite.email, name=invite.name, password_hash=hash_password(password)
    )
    db.add(preparer)
    invite.accepted_at = utcnow()
    db.add(invite)
    db.flush()
    audit.record(
        db,
        action="preparer.joined",
        actor=request_actor(request, "preparer", str(preparer.id)),
        firm_id=invite.firm_id,
    )
    db.commit()
    return preparer, []
