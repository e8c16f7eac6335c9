"""An engagement's timeline for the preparer: the audit log in words (who did what, when, from where)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from core.enums import Channel, Role
from core.models import AuditEntry, Document, Engagement, Preparer, Signer

_ROLE: dict[str, str] = {Role.TAXPAYER: "taxpayer", Role.SPOUSE: "spouse"}
_CHANNEL: dict[str, str] = {Channel.EMAIL: "email", Channel.SMS: "text message"}


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    who: str
    what: str
    where: str  # IP address, or "" for Portico itself
    device: str
    important: bool = False
    good: bool = False
    view: bool = False  # only looked: the timeline hides these unless asked (the audit log keeps them)


def _d(detail: dict[str, str], key: str) -> str:
    value = detail.get(key, "")
    return _ROLE.get(value, _CHANNEL.get(value, value))


_TEXT = {
    "engagement.create": lambda d: "Created the engagement" + (" (CSV import)" if d.get("import") else ""),
    "engagement.created": lambda d: "Workflow started",
    "engagement.viewed": lambda d: "Opened the engagement",
    "invite.requested": lambda d: f"Asked for the portal link for the {_d(d, 'role')} by {_d(d, 'channel')}",
    "invite.sent": lambda d: f"Portal link sent to the {_d(d, 'role')} by {_d(d, 'channel')}",
    "invite.expired": lambda d: f"The {_d(d, 'role')}'s portal link expired",
    "registration.mismatch": lambda d: (
        f"Registration refused: details did not match ({d.get('attempts_left', '?')} tries left)"
    ),
    "registration.completed": lambda d: f"Created a portal account ({d.get('username', '')})",
    "code.sent": lambda d: f"Verification code sent by {_d(d, 'channel')}",
    "code.wrong": lambda d: "Entered a wrong verification code",
    "verification.completed": lambda d: f"Verified the account (code by {_d(d, 'channel')})",
    "documents.sent": lambda d: f"Sent {d.get('count', '')} document(s) to the Customer Portal",
    "signature.saved": lambda d: "Saved a signature",
    "document.signed": lambda d: f"Signed {d.get('document', 'a document')}",
    "document.declined": lambda d: f"Declined {d.get('document', 'a document')}: “{d.get('reason', '')}”",
    "document.replaced": lambda d: f"Sent a corrected copy in place of {d.get('document', 'a document')}",
    "document.signed_on_paper": lambda d: (
        f"Recorded the {' and '.join(_ROLE.get(r, r) for r in d.get('roles', '').split(',') if r)}'s"
        f" signature on paper for {d.get('document', 'a document')} (scan attached)"
    ),
    "document.view": lambda d: f"Viewed {d.get('document_name', 'a document')}",
    "document.download": lambda d: f"Downloaded {d.get('document_name', 'a document')}",
    "document.upload": lambda d: f"Uploaded {d.get('count', '')} file(s)",
    "client.upload": lambda d: "Uploaded files",
    "client.message": lambda d: "Wrote a message",
    "chat.sent": lambda d: "Wrote a message",
    "engagement.signed": lambda d: "Every required signature is in",
    "documents.sealed": lambda d: "Signed documents sealed with the certificate of completion",
    "engagement.completed": lambda d: "Completed",
    "engagement.needs_attention": lambda d: f"Needs attention: {d.get('reason', '')}",
    "engagement.cancelled": lambda d: "Cancelled" + (f": {d['reason']}" if d.get("reason") else ""),
    "signer.unlocked": lambda d: f"Unlocked the {_d(d, 'role')}",
    "contact.changed": lambda d: (
        f"Corrected the {_d(d, 'role')}'s {'phone' if d.get('channel') == 'sms' else 'email'}"
        f" from {d.get('from') or 'none'} to {d.get('to', '')}"
    ),
    "time_zone.changed": lambda d: (
        f"Changed the {_d(d, 'role')}'s time zone from {d.get('from', '')} to {d.get('to', '')}"
    ),
    "record.exported": lambda d: "Downloaded the e-signature record",
    "reminder.invite_reminder": lambda d: f"Reminder {d.get('number', '')} sent: create the account",
    "reminder.verify_reminder": lambda d: f"Reminder {d.get('number', '')} sent: verify the account",
    "reminder.signature_reminder": lambda d: f"Reminder {d.get('number', '')} sent: sign the documents",
}
_IMPORTANT = {
    "engagement.needs_attention",
    "engagement.cancelled",
    "invite.expired",
    "registration.mismatch",
    "document.declined",
}
_GOOD = {"engagement.completed", "verification.completed", "engagement.signed"}
_VIEWS = {"engagement.viewed"}
# The workflow's note of a client upload or message, beside the entry the action itself wrote: one line
# per action on the timeline, both stay in the audit log.
_ECHOES = {"client.upload", "client.message"}


def describe(action: str, detail: dict[str, str]) -> str:
    text = _TEXT.get(action)
    if text is None:
        return action.replace(".", " ").replace("_", " ").capitalize()
    try:
        return text(detail)
    except (KeyError, TypeError):
        return action


def _short_device(user_agent: str | None) -> str:
    if not user_agent:
        return ""
    for name in ("Edg/", "Firefox/", "Chrome/", "Safari/", "pytest", "python-httpx"):
        if name in user_agent:
            browser = name.rstrip("/")
            break
    else:
        browser = user_agent[:40]
    system = next(
        (s for s in ("iPhone", "iPad", "Android", "Windows", "Mac OS X", "Linux") if s in user_agent), ""
    )
    return f"{browser} on {system}" if system else browser


def timeline(db: Session, engagement: Engagement, limit: int = 200) -> list[TimelineEntry]:
    """Newest first. Entries are found by the engagement (already checked to be the preparer's firm's)."""
    rows = db.exec(
        select(AuditEntry)
        .where(AuditEntry.engagement_id == engagement.id)
        .order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc())
        .limit(limit)
    ).all()
    signers = {
        s.role.value: s.full_name
        for s in db.exec(select(Signer).where(Signer.engagement_id == engagement.id))
    }
    documents = {
        str(doc_id): name
        for doc_id, name in db.exec(
            select(Document.id, Document.name).where(Document.engagement_id == engagement.id)
        )
    }
    preparers = {
        str(p.id): p.name for p in db.exec(select(Preparer).where(Preparer.firm_id == engagement.firm_id))
    }
    entries = []
    for row in rows:
        if row.action in _ECHOES:
            continue
        try:
            detail = json.loads(row.detail or "{}")
        except ValueError:
            detail = {}
        if "document" in detail and str(detail["document"]) in documents:
            detail["document_name"] = documents[str(detail["document"])]
        kind, _, ident = row.actor.partition(":")
        if kind == "preparer":
            who = preparers.get(ident, "A preparer")
        elif kind == "taxpayer":
            who = signers.get(ident, ident.capitalize() or "Client")
        else:
            who = "Portico"
        entries.append(
            TimelineEntry(
                at=row.at,
                who=who,
                what=describe(row.action, {k: str(v) for k, v in detail.items()}),
                where=row.ip or "",
                device=_short_device(row.user_agent),
                important=row.action in _IMPORTANT,
                good=row.action in _GOOD,
                view=row.action in _VIEWS,
            )
        )
    return entries


def attention_reason(db: Session, engagement: Engagement) -> str | None:
    """Why the engagement needs attention: the reason the workflow gave last."""
    row = db.exec(
        select(AuditEntry)
        .where(AuditEntry.engagement_id == engagement.id, AuditEntry.action == "engagement.needs_attention")
        .order_by(col(AuditEntry.id).desc())
    ).first()
    if row is None:
        return None
    try:
        return str(json.loads(row.detail).get("reason") or "") or None
    except ValueError:
        return None
