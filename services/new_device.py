"""Logging in from a browser Portico has not seen: password first, then a fresh one-time code.

Not pipeline state, so the API keeps it, not the workflow:
- a *pending login* is a server-side session row of its own kind (`taxpayer-login`), 10 minutes long,
  reached through its own cookie; it proves the password was right and nothing more;
- a *login code* is one of `services.codes`' `LoginCode` rows (`LOGIN_CODES`): keyed digest only,
  10 minutes, single use, five wrong tries an hour lock them;
- a *remembered device* is a random token in a cookie (several, for a browser a couple shares), stored
  hashed in `TrustedDevice` for 30 days. Logging out everywhere forgets them all.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from fastapi import Request, Response
from sqlmodel import Session, col, delete

from core import audit, sessions
from core.client_accounts import newest_signer
from core.context import Resources
from core.identity import mask_email, mask_phone
from core.models import (
    Engagement,
    Firm,
    Signer,
    TaxpayerAccount,
    TrustedDevice,
    WebSession,
    utcnow,
)
from messaging.delivery import OutgoingMessage
from messaging.outbox import Outbox
from messaging.wording import MessageContext, render
from services import Refusal, ServiceError, codes, cookies
from services.codes import CODE_LIFETIME
from services.deps import request_actor

ATTEMPT_KIND = "taxpayer-login"
ATTEMPT_LIFETIME = timedelta(minutes=10)
DEVICE_LIFETIME = timedelta(days=30)
MAX_DEVICES_PER_BROWSER = 4
EXPIRED_ATTEMPT = "Your login timed out. Enter your user name and password again."


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ---- remembered devices ------------------------------------------------------------------------------


def _device_tokens(request: Request, resources: Resources) -> list[str]:
    raw = cookies.read(request, resources, cookies.DEVICE) or ""
    return [t for t in raw.split(".") if t][:MAX_DEVICES_PER_BROWSER]


def this_browsers_devices(request: Request, resources: Resources) -> set[str]:
    """The `TrustedDevice` rows (their token hashes) this browser's cookie holds, whoever's they are."""
    return {_hash(token) for token in _device_tokens(request, resources)}


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
    signer = newest_signer(db, account) if account else None
    if row is None or account is None or signer is None:
        raise ServiceError(Refusal.UNAUTHENTICATED, EXPIRED_ATTEMPT)
    return PendingLogin(row.id_hash, account, signer)


def end_attempt(db: Session, request: Request, response: Response, resources: Resources) -> None:
    token = cookies.read(request, resources, cookies.LOGIN)
    if token:
        sessions.end(db, token)
    cookies.drop(response, resources, cookies.LOGIN)


# ---- login codes ---------------------------------------------------------------------------------------


def code_state(db: Session, pending: PendingLogin, resources: Resources) -> codes.CodeSent | None:
    """The code already sent for this login, if any, so a reloaded page shows it and its cooldown."""
    code = codes.LOGIN_CODES.latest(db, pending.account.id or 0, pending.attempt_hash)
    if code is None or code.used_at is not None:
        return None
    return codes.CodeSent(
        _masked(pending.signer, code.channel),
        code.expires_at,
        code.created_at + resources.settings.code_resend_cooldown,
    )


def _masked(signer: Signer, channel: str) -> str:
    if channel == "email":
        return mask_email(signer.email) if signer.email else ""
    return mask_phone(signer.phone) if signer.phone else ""


def _scope(account_id: int) -> str:
    """What a login code's digest covers besides the digits."""
    return f"login-code:{account_id}"


async def send_login_code(
    db: Session,
    request: Request,
    resources: Resources,
    outbox: Outbox,
    pending: PendingLogin,
    channel: Literal["email", "sms"],
) -> codes.CodeSent:
    account, signer = pending.account, pending.signer
    destination = signer.email if channel == "email" else signer.phone
    if not destination:
        raise ServiceError(Refusal.INVALID, "That way of receiving a code is not available.")
    account_id = account.id or 0
    row, code = codes.LOGIN_CODES.issue(
        db,
        resources,
        account_id=account_id,
        binding=pending.attempt_hash,
        channel=channel,
        scope=_scope(account_id),
    )
    message = _compose(db, signer, channel, destination, code)
    await codes.send_code(
        db,
        outbox,
        codes.CodeMessage(f"login-code:{row.id}", signer.engagement_id, "login_code", message),
        "login.code_sent",
        request_actor(request, "taxpayer", signer.role.value),
        {"channel": channel},
    )
    return codes.CodeSent(
        _masked(signer, channel), row.expires_at, row.created_at + resources.settings.code_resend_cooldown
    )


def _compose(db: Session, signer: Signer, channel: str, destination: str, code: str) -> OutgoingMessage:
    engagement = db.get(Engagement, signer.engagement_id)
    firm = db.get(Firm, engagement.firm_id) if engagement else None
    minutes = int(CODE_LIFETIME.total_seconds() // 60)
    ctx = MessageContext(
        firm.name if firm else "Portico", signer.first_name, channel, code=code, code_minutes=minutes
    )
    rendered = render("login_code", ctx)
    return OutgoingMessage(channel, destination, rendered.subject, rendered.body)  # type: ignore[arg-type]


def check_login_code(
    db: Session, request: Request, resources: Resources, pending: PendingLogin, code: str
) -> None:
    """Accepts the current code of this pending login once; counts a wrong one against the account."""
    account_id = pending.account.id or 0
    actor = request_actor(request, "taxpayer", pending.signer.role.value)

    def audit_wrong() -> None:
        audit.record(db, action="login.code_wrong", actor=actor, engagement_id=pending.signer.engagement_id)

    codes.LOGIN_CODES.check(
        db,
        resources,
        account_id=account_id,
        binding=pending.attempt_hash,
        scope=_scope(account_id),
        code=code,
        on_wrong=audit_wrong,
    )
