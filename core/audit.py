"""Appending to the audit log. Workflow-driven entries carry an event key so a retry adds nothing."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from core.actor import SYSTEM, Actor
from core.models import AuditEntry, utcnow

# A signed-in taxpayer's own account changes (services/account_changes.py).
PASSWORD_CHANGED = "account.password_changed"  # noqa: S105 - an event name
EMAIL_CHANGED = "account.email_changed"
PHONE_CHANGED = "account.phone_changed"
CONTACT_CODE_SENT = "account.contact_code_sent"
CHANGE_REFUSED = "account.change_refused"  # wrong password or code, throttled, a new password's rules
CHANGE_NOTICE = "account.change_notice"  # the "was this you?" message to the old address
# Security settings (services/security_settings.py): sign-in emails, sessions, remembered browsers.
EMAIL_CODE_SENT = "account.email_code_sent"
EMAIL_ADDED = "account.email_added"
EMAIL_REMOVED = "account.email_removed"
SESSION_ENDED = "account.session_ended"
DEVICE_FORGOTTEN = "account.device_forgotten"

# A forgotten password reset by a code (services/password_reset.py); never the code or the password.
PASSWORD_RESET_CODE_SENT = "account.password_reset_code_sent"  # noqa: S105 - an event name
PASSWORD_RESET_NOT_SENT = "account.password_reset_not_sent"  # noqa: S105 - why no code went out
PASSWORD_RESET_REFUSED = "account.password_reset_refused"  # noqa: S105 - wrong code, expired, rules
PASSWORD_RESET = "account.password_reset"  # noqa: S105 - an event name
PASSWORD_RESET_NOTICE = "account.password_reset_notice"  # noqa: S105 - the "was this you?" message

# A signed-in preparer's own account changes (services/preparer_account.py).
PREPARER_PASSWORD_CHANGED = "preparer.password_changed"  # noqa: S105 - an event name
PREPARER_EMAIL_CHANGED = "preparer.email_changed"
PREPARER_EMAIL_CODE_SENT = "preparer.email_code_sent"
PREPARER_CHANGE_REFUSED = "preparer.account_change_refused"  # wrong password/code, throttled, rules, taken
PREPARER_CHANGE_NOTICE = "preparer.account_change_notice"  # the "was this you?" message


def record(
    session: Session,
    *,
    action: str,
    actor: Actor,
    firm_id: int | None = None,
    engagement_id: int | None = None,
    detail: dict[str, Any] | None = None,
    event_key: str | None = None,
    at: datetime | None = None,
) -> None:
    """Adds an entry to the session; the caller commits with the change it describes."""
    if event_key is not None:
        exists = session.exec(select(AuditEntry.id).where(AuditEntry.event_key == event_key)).first()
        if exists is not None:
            return
    session.add(
        AuditEntry(
            event_key=event_key,
            firm_id=firm_id,
            engagement_id=engagement_id,
            actor=actor.label,
            action=action,
            detail=json.dumps(detail or {}, sort_keys=True, default=str),
            ip=actor.ip,
            user_agent=actor.user_agent,
            at=at or utcnow(),
        )
    )


__all__ = ["SYSTEM", "Actor", "record"]
