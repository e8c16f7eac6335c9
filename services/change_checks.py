"""The checks a taxpayer's and a preparer's own account changes share (`account_changes`, `preparer_account`).

What stays in each of those on purpose: who is asked what (a taxpayer the password; a preparer the password
and an authenticator code), where a pending code lives (see `services.codes`), and what the notices say.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from core import audit, sessions
from core.context import Resources
from core.passwords import password_problems, verify_password
from messaging.delivery import DeliveryError, OutgoingMessage
from messaging.outbox import Outbox
from services import Refusal, ServiceError, cookies
from services.throttled_step import Step

WRONG_PASSWORD = "That is not your current password."  # noqa: S105 - a message, not a secret
SAME_PASSWORD = "Choose a password different from your current one."  # noqa: S105 - a message, not a secret


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
        raise ServiceError(Refusal.FORBIDDEN, WRONG_PASSWORD, "current_password")


def check_new_password(new: str, current: str, names: tuple[str, ...], refused: Refused) -> None:
    """The registration rules (not like `names`: user name, email), and not the current password again."""
    problems = password_problems(new, *names)
    if not problems and new == current:
        problems = [SAME_PASSWORD]
    if problems:
        refused("rules")
        raise ServiceError(Refusal.INVALID, " ".join(problems), "new_password")


def session_id(request: Request, resources: Resources) -> str:
    """This browser's session as stored (its token's hash): a pending code is bound to it."""
    return sessions.token_hash(cookies.read(request, resources, cookies.SESSION) or "")


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
