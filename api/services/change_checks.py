"""The checks a taxpayer's and a preparer's own account changes share (`account_changes`, `preparer_account`).

What stays in each of those on purpose: who is asked what (a taxpayer the password; a preparer the password
and an authenticator code), where a pending code lives (a taxpayer's is a `LoginCode` row with its own
five-strikes lock; a preparer's is a session row counted by the login throttle), and what the notices say.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request, status
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from activities.delivery import DeliveryError, OutgoingMessage
from activities.outbox import Outbox
from api.services import ServiceError, cookies
from api.services.throttled_step import Step
from core import audit, sessions
from core.context import Resources
from core.passwords import password_problems, verify_password

WRONG_PASSWORD = "That is not your current password."  # noqa: S105 - a message, not a secret
SAME_PASSWORD = "Choose a password different from your current one."  # noqa: S105 - a message, not a secret
NO_CODE_YET = "Ask for a code first."
CODE_EXPIRED = "That code has expired. Ask for a new one."


@dataclass(frozen=True)
class CodeSent:
    """A code on its way to a new address, which changes nothing until the code comes back."""

    masked_destination: str
    """The new address as a page may show it."""
    expires_at: datetime
    """When the code stops working."""
    resend_after: datetime
    """When another code may be asked for."""


# Records one refused attempt (its reason: "throttled", "wrong password", "rules" …) in the audit log.
Refused = Callable[[str], None]


def record_refusal(
    db: Session,
    action: str,
    actor: audit.Actor,
    what: str,
    reason: str,
    *,
    engagement_id: int | None = None,
    firm_id: int | None = None,
) -> None:
    """A refused change in the audit log, committed at once: the refusal raises right after."""
    audit.record(
        db,
        action=action,
        actor=actor,
        engagement_id=engagement_id,
        firm_id=firm_id,
        detail={"what": what, "reason": reason},
    )
    db.commit()


async def check_current_password(step: Step, password_hash: str, password: str, refused: Refused) -> None:
    """The current password, asked again inside a login-throttle `step`: a throttled or wrong answer is
    audited and raised (a wrong one stays counted)."""
    if step.refusal is not None:
        refused("throttled")
        raise step.refusal
    if not await run_in_threadpool(verify_password, password_hash, password):
        step.refuse()
        refused("wrong password")
        raise ServiceError(status.HTTP_403_FORBIDDEN, WRONG_PASSWORD, "current_password")


def check_new_password(new: str, current: str, names: tuple[str, ...], refused: Refused) -> None:
    """The registration rules (not like `names`: user name, email), and not the current password again."""
    problems = password_problems(new, *names)
    if not problems and new == current:
        problems = [SAME_PASSWORD]
    if problems:
        refused("rules")
        raise ServiceError(status.HTTP_422_UNPROCESSABLE_CONTENT, " ".join(problems), "new_password")


def session_id(request: Request, resources: Resources) -> str:
    """This browser's session as stored (its token's hash): a pending code is bound to it."""
    return sessions.token_hash(cookies.read(request, resources, cookies.SESSION) or "")


def new_code() -> str:
    """A one-time code of six digits for a new address."""
    return f"{secrets.randbelow(1_000_000):06d}"


def refuse_during_cooldown(last_sent_at: datetime | None, cooldown: timedelta, now: datetime) -> None:
    """429 while the code sent last is younger than the resend cooldown."""
    if last_sent_at is not None and now < last_sent_at + cooldown:
        wait = int((last_sent_at + cooldown - now).total_seconds()) + 1
        raise ServiceError(
            status.HTTP_429_TOO_MANY_REQUESTS, f"Please wait {wait} seconds before asking for a new code."
        )


async def send_notice(
    outbox: Outbox, key: str, engagement_id: int | None, purpose: str, message: OutgoingMessage
) -> str:
    """Sends a "your … was changed" notice; answers its status for the audit log. A notice that cannot go
    out is recorded, not retried by the person: the change is done whatever happens here."""
    try:
        sent = await run_in_threadpool(outbox.send, key, engagement_id, purpose, lambda _s: (message, None))
    except DeliveryError as exc:
        return f"not sent: {exc}"[:200]
    return sent.status
