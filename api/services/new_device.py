"""Logging in from a browser Portico has not seen: password first, then a fresh one-time code.

Not pipeline state, so the API keeps it, not the workflow:
- a *pending login* is a server-side session row of its own kind (`taxpayer-login`), 10 minutes long,
  reached through its own cookie; it proves the password was right and nothing more;
- a *login code* is a `LoginCode` row: keyed digest only, 10 minutes, single use; wrong tries are summed
  over the account's codes of the last hour, so a new code does not reset them;
- a *remembered device* is a random token in a cookie (several, for a browser a couple shares), stored
  hashed in `TrustedDevice` for 30 days. Logging out everywhere forgets them all.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import Request, Response, status
from sqlalchemy import func
from sqlmodel import Session, col, delete, select, update
from starlette.concurrency import run_in_threadpool

from activities.delivery import DeliveryError, OutgoingMessage
from activities.messages import MessageContext, render
from activities.outbox import Outbox
from api.deps import request_actor
from api.services import ServiceError, cookies
from core import audit, sessions
from core.context import Resources
from core.identity import mask_email, mask_phone
from core.models import (
    Engagement,
    Firm,
    LoginCode,
    Signer,
    TaxpayerAccount,
    TrustedDevice,
    WebSession,
    utcnow,
)

ATTEMPT_KIND = "taxpayer-login"
ATTEMPT_LIFETIME = timedelta(minutes=10)
CODE_LIFETIME = timedelta(minutes=10)
DEVICE_LIFETIME = timedelta(days=30)
MAX_WRONG_TRIES = 5
WRONG_TRIES_WINDOW = timedelta(hours=1)
MAX_DEVICES_PER_BROWSER = 4
# Codes proving a new email address or phone number (api/services/account_changes.py) are `LoginCode` rows
# too, told apart by this prefix of `attempt_hash`: their wrong tries and cooldown are counted on their own.
CHANGE_PREFIX = "change:"
LOCKED = "Too many wrong codes. Wait an hour and try again, or ask your preparer for help."
EXPIRED_ATTEMPT = "Your login timed out. Enter your user name and password again."


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ---- remembered devices ------------------------------------------------------------------------------


def _device_tokens(request: Request, resources: Resources) -> list[str]:
    raw = cookies.read(request, resources, cookies.DEVICE) or ""
    return [t for t in raw.split(".") if t][:MAX_DEVICES_PER_BROWSER]


def is_trusted(db: Session, request: Request, resources: Resources, account_id: int) -> bool:
    now = utcnow()
    for token in _device_tokens(request, resources):
        row = db.get(TrustedDevice, _hash(token))
        if row is not None and row.account_id == account_id and row.expires_at > now:
            row.last_used_at = now
            db.add(row)
            db.commit()
            return True
    return False


def remember(
    db: Session, request: Request, response: Response, resources: Resources, account_id: int
) -> None:
    """Trust this browser for 30 days; tokens of other accounts (a spouse's) in the cookie are kept."""
    token = secrets.token_urlsafe(32)
    actor = request_actor(request, "taxpayer", str(account_id))
    db.add(
        TrustedDevice(
            token_hash=_hash(token),
            account_id=account_id,
            expires_at=utcnow() + DEVICE_LIFETIME,
            ip=actor.ip,
            user_agent=actor.user_agent,
        )
    )
    db.commit()
    kept = [t for t in _device_tokens(request, resources) if _kept(db, t, account_id)]
    value = ".".join([token, *kept][:MAX_DEVICES_PER_BROWSER])
    cookies.put(response, resources, cookies.DEVICE, value, max_age=DEVICE_LIFETIME)


def _kept(db: Session, token: str, account_id: int) -> bool:
    row = db.get(TrustedDevice, _hash(token))
    return row is not None and row.account_id != account_id and row.expires_at > utcnow()


def forget_everywhere(db: Session, account_id: int) -> int:
    """Log out everywhere: every session, every pending login and every remembered browser."""
    ended = sessions.end_all(db, "taxpayer", account_id)
    db.exec(
        delete(WebSession).where(
            col(WebSession.kind) == ATTEMPT_KIND, col(WebSession.subject_id) == account_id
        )
    )
    db.exec(delete(TrustedDevice).where(col(TrustedDevice.account_id) == account_id))
    db.commit()
    return ended


# ---- pending login -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingLogin:
    attempt_hash: str
    account: TaxpayerAccount
    signer: Signer


def start_attempt(
    db: Session, request: Request, response: Response, resources: Resources, account: TaxpayerAccount
) -> None:
    actor = request_actor(request, "taxpayer", str(account.id))
    token = sessions.start(db, ATTEMPT_KIND, account.id or 0, actor.ip, actor.user_agent)
    cookies.put(response, resources, cookies.LOGIN, token, max_age=ATTEMPT_LIFETIME)


def pending_login(db: Session, request: Request, resources: Resources) -> PendingLogin:
    token = cookies.read(request, resources, cookies.LOGIN)
    row = sessions.resolve(db, token, ATTEMPT_KIND, ATTEMPT_LIFETIME, ATTEMPT_LIFETIME) if token else None
    account = db.get(TaxpayerAccount, row.subject_id) if row else None
    signer = db.get(Signer, account.signer_id) if account else None
    if row is None or account is None or signer is None:
        raise ServiceError(status.HTTP_401_UNAUTHORIZED, EXPIRED_ATTEMPT)
    return PendingLogin(row.id_hash, account, signer)


def end_attempt(db: Session, request: Request, response: Response, resources: Resources) -> None:
    token = cookies.read(request, resources, cookies.LOGIN)
    if token:
        sessions.end(db, token)
    cookies.drop(response, resources, cookies.LOGIN)


# ---- login codes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginCodeSent:
    masked_destination: str
    expires_at: datetime
    resend_after: datetime


def _of_kind(change: bool) -> Any:
    prefixed = col(LoginCode.attempt_hash).startswith(CHANGE_PREFIX)
    return prefixed if change else ~prefixed


def wrong_tries(db: Session, account_id: int, *, change: bool = False) -> int:
    """Wrong codes of the last hour, summed over the account's login codes (or its change codes)."""
    since = utcnow() - WRONG_TRIES_WINDOW
    total = db.exec(
        select(func.coalesce(func.sum(LoginCode.wrong_tries), 0)).where(
            LoginCode.account_id == account_id, col(LoginCode.created_at) > since, _of_kind(change)
        )
    ).one()
    return int(total)


def latest_code(
    db: Session, account_id: int, attempt_hash: str | None = None, *, change: bool = False
) -> LoginCode | None:
    query = select(LoginCode).where(LoginCode.account_id == account_id, _of_kind(change))
    if attempt_hash is not None:
        query = query.where(LoginCode.attempt_hash == attempt_hash)
    return db.exec(query.order_by(col(LoginCode.id).desc())).first()


def code_state(db: Session, pending: PendingLogin, resources: Resources) -> LoginCodeSent | None:
    """The code already sent for this login, if any, so a reloaded page shows it and its cooldown."""
    code = latest_code(db, pending.account.id or 0, pending.attempt_hash)
    if code is None or code.used_at is not None:
        return None
    return LoginCodeSent(
        _masked(pending.signer, code.channel),
        code.expires_at,
        code.created_at + resources.settings.code_resend_cooldown,
    )


def _masked(signer: Signer, channel: str) -> str:
    if channel == "email":
        return mask_email(signer.email) if signer.email else ""
    return mask_phone(signer.phone) if signer.phone else ""


async def send_login_code(
    db: Session,
    request: Request,
    resources: Resources,
    outbox: Outbox,
    pending: PendingLogin,
    channel: Literal["email", "sms"],
) -> LoginCodeSent:
    account, signer = pending.account, pending.signer
    destination = signer.email if channel == "email" else signer.phone
    if not destination:
        raise ServiceError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "That way of receiving a code is not available."
        )
    if wrong_tries(db, account.id or 0) >= MAX_WRONG_TRIES:
        raise ServiceError(status.HTTP_423_LOCKED, LOCKED)
    now = utcnow()
    cooldown = resources.settings.code_resend_cooldown
    last = latest_code(db, account.id or 0)
    if last is not None and now < last.created_at + cooldown:
        wait = int((last.created_at + cooldown - now).total_seconds()) + 1
        raise ServiceError(
            status.HTTP_429_TOO_MANY_REQUESTS, f"Please wait {wait} seconds before asking for a new code."
        )
    code = f"{secrets.randbelow(1_000_000):06d}"
    row = LoginCode(
        account_id=account.id or 0,
        attempt_hash=pending.attempt_hash,
        channel=channel,
        code_digest=_code_digest(resources, account.id or 0, code),
        created_at=now,
        expires_at=now + CODE_LIFETIME,
    )
    db.add(row)
    db.commit()
    message = _compose(db, signer, channel, destination, code)
    await send_code(
        db,
        outbox,
        CodeMessage(f"login-code:{row.id}", signer.engagement_id, "login_code", message),
        "login.code_sent",
        request_actor(request, "taxpayer", signer.role.value),
        {"channel": channel},
    )
    return LoginCodeSent(_masked(signer, channel), row.expires_at, now + cooldown)


@dataclass(frozen=True)
class CodeMessage:
    key: str
    """The outbox idempotency key: one per `LoginCode` row, so a code goes out at most once."""
    engagement_id: int
    purpose: str
    message: OutgoingMessage


CODE_REFUSED = "code.delivery_refused"
ADDRESS_REFUSED = (
    "That address refused our message, so no code is on its way. Choose another way to get the code, "
    "or ask your preparer to check your contact details."
)


async def send_code(
    db: Session,
    outbox: Outbox,
    code: CodeMessage,
    action: str,
    actor: audit.Actor,
    detail: dict[str, str],
) -> None:
    """A one-time code (a login's or a contact change's) through the outbox, then its audit entry.
    A 503 when the provider cannot take it just now: the person asks again; nothing is audited as sent.
    A 422 when the provider refuses the address for good: the person is not left waiting for a code."""
    try:
        # The outbox is synchronous (SQL and a provider call): keep it off the event loop.
        sent = await run_in_threadpool(
            outbox.send, code.key, code.engagement_id, code.purpose, lambda _s: (code.message, None)
        )
    except DeliveryError as exc:
        raise ServiceError(
            status.HTTP_503_SERVICE_UNAVAILABLE, "The code could not be sent just now. Try again shortly."
        ) from exc
    if sent.status == "failed":  # the provider refused the address for good: no code is on its way
        refused = {**detail, "purpose": code.purpose}
        audit.record(db, action=CODE_REFUSED, actor=actor, engagement_id=code.engagement_id, detail=refused)
        db.commit()
        raise ServiceError(status.HTTP_422_UNPROCESSABLE_CONTENT, ADDRESS_REFUSED)
    audit.record(db, action=action, actor=actor, engagement_id=code.engagement_id, detail=detail)
    db.commit()


def _compose(db: Session, signer: Signer, channel: str, destination: str, code: str) -> OutgoingMessage:
    engagement = db.get(Engagement, signer.engagement_id)
    firm = db.get(Firm, engagement.firm_id) if engagement else None
    minutes = int(CODE_LIFETIME.total_seconds() // 60)
    ctx = MessageContext(
        firm.name if firm else "Portico", signer.first_name, channel, code=code, code_minutes=minutes
    )
    rendered = render("login_code", ctx)
    return OutgoingMessage(channel, destination, rendered.subject, rendered.body)  # type: ignore[arg-type]


def _code_digest(resources: Resources, account_id: int, code: str) -> str:
    return resources.cipher.digest(f"login-code:{account_id}", code.strip())


def check_login_code(
    db: Session, request: Request, resources: Resources, pending: PendingLogin, code: str
) -> None:
    """Accepts the current code of this pending login once; counts a wrong one against the account."""
    account_id = pending.account.id or 0
    actor = request_actor(request, "taxpayer", pending.signer.role.value)
    if wrong_tries(db, account_id) >= MAX_WRONG_TRIES:
        raise ServiceError(status.HTTP_423_LOCKED, LOCKED, "code")
    row = latest_code(db, account_id, pending.attempt_hash)
    if row is None or row.used_at is not None:
        raise ServiceError(status.HTTP_422_UNPROCESSABLE_CONTENT, "Ask for a code first.", "code")
    if utcnow() > row.expires_at:
        raise ServiceError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "That code has expired. Ask for a new one.", "code"
        )
    if not secrets.compare_digest(row.code_digest, _code_digest(resources, account_id, code)):
        # In SQL, so two wrong guesses at the same moment both count.
        db.exec(
            update(LoginCode)
            .where(col(LoginCode.id) == row.id)
            .values(wrong_tries=col(LoginCode.wrong_tries) + 1)
        )
        audit.record(db, action="login.code_wrong", actor=actor, engagement_id=pending.signer.engagement_id)
        db.commit()
        left = MAX_WRONG_TRIES - wrong_tries(db, account_id)
        if left <= 0:
            raise ServiceError(status.HTTP_423_LOCKED, LOCKED, "code")
        tries = "1 try" if left == 1 else f"{left} tries"
        raise ServiceError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"That code is not right. {tries} left.", "code"
        )
    # Single use even when the same code arrives twice at once: only one update finds it unused.
    claimed = db.exec(
        update(LoginCode)
        .where(col(LoginCode.id) == row.id, col(LoginCode.used_at).is_(None))
        .values(used_at=utcnow())
    )
    db.commit()
    if claimed.rowcount != 1:
        raise ServiceError(status.HTTP_422_UNPROCESSABLE_CONTENT, "That code was already used.", "code")


def get_outbox(request: Request) -> Outbox:
    """One outbox per app, on the same delivery backends the worker uses."""
    outbox: Outbox | None = getattr(request.app.state, "outbox", None)
    if outbox is None:
        from worker.main import message_backends

        resources: Resources = request.app.state.resources
        outbox = Outbox(resources, message_backends(resources.settings))
        request.app.state.outbox = outbox
    return outbox
