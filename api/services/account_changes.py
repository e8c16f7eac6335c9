"""A signed-in taxpayer changes their password, email address or phone number (NIST SP 800-63B, ASVS V2/V3).

- Every change asks for the current password again; a wrong one is counted by the login throttle (the same
  per-account and per-IP counts as `/api/taxpayer/login`) and lands in the audit log.
- A new password follows the registration rules, is hashed with argon2id off the event loop, and ends every
  other session of the account; this browser gets a new session id.
- A new email address or phone number replaces the old one only once a one-time code sent to it comes
  back. The code is a `LoginCode` row of its own kind (`CHANGE_PREFIX`), bound to the session that asked
  for it; its keyed digest covers the new address as well, so no pending address is stored anywhere and a
  code proves exactly the address it was sent to.
- Afterwards a notice goes to the old address through the outbox, like every other message.

The contact is changed on the `Signer` row as well as on the account: that row is where every message to
the signer goes, the workflow's reminders included (its `send_message` activity reads it when it sends). It
is identity data, not pipeline state; the workflow keeps only masked copies and digests of the contacts on
the return, for the invitation and the registration match, and consults neither once the account exists.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Literal

from fastapi import Request, Response, status
from sqlmodel import Session, col, delete, update
from starlette.concurrency import run_in_threadpool

from activities.delivery import OutgoingMessage
from activities.messages import MessageContext, render
from activities.outbox import Outbox
from api.deps import request_actor
from api.engagements import add_search_terms
from api.services import ServiceError, change_checks, cookies, new_device, throttling
from api.services.throttled_step import throttled_step
from core import audit, sessions
from core.context import Resources
from core.identity import InvalidContact, mask_email, mask_phone, normalise_email, normalise_phone
from core.models import Engagement, Firm, LoginCode, Signer, TaxpayerAccount, WebSession, utcnow
from core.passwords import hash_password

ContactKind = Literal["email", "phone"]
WRONG_PASSWORD = change_checks.WRONG_PASSWORD
CHANNEL = {"email": "email", "phone": "sms"}
WORDS = {"email": "email address", "phone": "phone number"}


async def _signed_in_username(request: Request, resources: Resources) -> str | None:
    username = getattr(request.state, "throttle_username", None)
    return username.strip().lower() if isinstance(username, str) else None


# Action "taxpayer-login": a password typed here is counted exactly like one typed on the login form.
PASSWORD_CHECK = throttling.guard("taxpayer-login", _signed_in_username)


def _actor_of(request: Request, signer: Signer) -> audit.Actor:
    return request_actor(request, "taxpayer", signer.role.value)


def _refused(db: Session, request: Request, signer: Signer, what: str, reason: str) -> None:
    actor = _actor_of(request, signer)
    change_checks.record_refusal(
        db, audit.CHANGE_REFUSED, actor, what, reason, engagement_id=signer.engagement_id
    )


async def confirm_password(
    db: Session, request: Request, account: TaxpayerAccount, signer: Signer, password: str, what: str
) -> None:
    """The current password, asked again before a change; throttled and audited like a login."""
    request.state.throttle_username = account.username
    async with throttled_step(request, PASSWORD_CHECK) as step:
        await change_checks.check_current_password(
            step, account.password_hash, password, lambda reason: _refused(db, request, signer, what, reason)
        )


# ---- password ----------------------------------------------------------------------------------------


async def change_password(
    db: Session,
    resources: Resources,
    request: Request,
    response: Response,
    outbox: Outbox,
    account: TaxpayerAccount,
    signer: Signer,
    current: str,
    new: str,
) -> None:
    """Re-hash, end every other session (and pending login) of the account, rotate this one, notify."""
    await confirm_password(db, request, account, signer, current, "password")
    change_checks.check_new_password(
        new,
        current,
        (account.username, account.email),
        lambda reason: _refused(db, request, signer, "password", reason),
    )
    account.password_hash = await run_in_threadpool(hash_password, new)
    db.add(account)
    ended = sessions.end_all(db, "taxpayer", account.id or 0)
    db.exec(
        delete(WebSession).where(  # a login waiting for its code proved the old password: it ends too
            col(WebSession.kind) == new_device.ATTEMPT_KIND, col(WebSession.subject_id) == account.id
        )
    )
    actor = _actor_of(request, signer)
    token = sessions.start(db, "taxpayer", account.id or 0, actor.ip, actor.user_agent)
    cookies.put(response, resources, cookies.SESSION, token)
    audit.record(
        db,
        action=audit.PASSWORD_CHANGED,
        actor=actor,
        engagement_id=signer.engagement_id,
        detail={"other_sessions_ended": max(ended - 1, 0)},
    )
    db.commit()
    await _notify(db, request, outbox, signer, "password_changed", _notice_channel(signer, None))


# ---- email and phone ---------------------------------------------------------------------------------


def normalised(kind: ContactKind, value: str) -> str:
    """The new address as Portico stores it; a clear 422 when it is not one."""
    try:
        return normalise_email(value) if kind == "email" else normalise_phone(value)
    except InvalidContact as exc:
        what = "an email address" if kind == "email" else "a phone number, like 702 555 0197"
        raise ServiceError(status.HTTP_422_UNPROCESSABLE_CONTENT, f"Enter {what}.", "value") from exc


def current_contact(account: TaxpayerAccount, signer: Signer, kind: ContactKind) -> str:
    """Where messages of this kind go now: the signer's contact, else what was given at registration."""
    if kind == "email":
        return signer.email or account.email
    return signer.phone or account.phone


def _masked(kind: ContactKind, value: str) -> str:
    return mask_email(value) if kind == "email" else mask_phone(value)


def masked_or_blank(kind: ContactKind, value: str) -> str:
    """The new address masked for a page, or "" when it isn't one."""
    try:
        return _masked(kind, normalised(kind, value))
    except ServiceError:
        return ""


def _session_binding(request: Request, resources: Resources) -> str:
    return new_device.CHANGE_PREFIX + change_checks.session_id(request, resources)


def _code_digest(resources: Resources, account_id: int, kind: ContactKind, value: str, code: str) -> str:
    return resources.cipher.digest(f"contact-change:{account_id}:{kind}:{value}", code.strip())


async def send_contact_code(
    db: Session,
    resources: Resources,
    request: Request,
    outbox: Outbox,
    account: TaxpayerAccount,
    signer: Signer,
    kind: ContactKind,
    value: str,
    current_password: str,
) -> change_checks.CodeSent:
    """Checks the password and sends a one-time code to the new address (which changes nothing yet)."""
    new = normalised(kind, value)
    if new == current_contact(account, signer, kind):
        raise ServiceError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"That is already your {WORDS[kind]}.", "value"
        )
    await confirm_password(db, request, account, signer, current_password, kind)
    account_id = account.id or 0
    if new_device.wrong_tries(db, account_id, change=True) >= new_device.MAX_WRONG_TRIES:
        raise ServiceError(status.HTTP_423_LOCKED, new_device.LOCKED)
    now = utcnow()
    cooldown = resources.settings.code_resend_cooldown
    last = new_device.latest_code(db, account_id, change=True)
    change_checks.refuse_during_cooldown(last.created_at if last else None, cooldown, now)
    code = change_checks.new_code()
    row = LoginCode(
        account_id=account_id,
        attempt_hash=_session_binding(request, resources),
        channel=CHANNEL[kind],
        code_digest=_code_digest(resources, account_id, kind, new, code),
        created_at=now,
        expires_at=now + new_device.CODE_LIFETIME,
    )
    db.add(row)
    db.commit()
    ctx = _context(db, signer, CHANNEL[kind], code=code)
    rendered = render("contact_code", ctx)
    message = OutgoingMessage(CHANNEL[kind], new, rendered.subject, rendered.body)  # type: ignore[arg-type]
    await new_device.send_code(
        db,
        outbox,
        new_device.CodeMessage(f"contact-code:{row.id}", signer.engagement_id, "contact_code", message),
        audit.CONTACT_CODE_SENT,
        _actor_of(request, signer),
        {"what": kind, "to": _masked(kind, new)},
    )
    return change_checks.CodeSent(_masked(kind, new), row.expires_at, now + cooldown)


async def confirm_contact(
    db: Session,
    resources: Resources,
    request: Request,
    outbox: Outbox,
    account: TaxpayerAccount,
    signer: Signer,
    kind: ContactKind,
    value: str,
    code: str,
) -> str:
    """The code sent to the new address: when right, the address replaces the old one. Answers it masked."""
    new = normalised(kind, value)
    account_id = account.id or 0
    _check_contact_code(db, resources, request, account_id, signer, kind, new, code)
    old = current_contact(account, signer, kind)
    notice_channel = _notice_channel(signer, kind)
    notice_to = old if notice_channel == CHANNEL[kind] else None
    if kind == "email":
        account.email = signer.email = new
    else:
        account.phone = signer.phone = new
    db.add(account)
    db.add(signer)
    audit.record(
        db,
        action=audit.EMAIL_CHANGED if kind == "email" else audit.PHONE_CHANGED,
        actor=_actor_of(request, signer),
        engagement_id=signer.engagement_id,
        detail={"from": _masked(kind, old) if old else "", "to": _masked(kind, new)},
    )
    add_search_terms(db, signer)  # the preparer's dashboard finds the engagement by the new address too
    db.commit()
    await _notify(db, request, outbox, signer, f"{kind}_changed", notice_channel, notice_to)
    return _masked(kind, new)


def _check_contact_code(
    db: Session,
    resources: Resources,
    request: Request,
    account_id: int,
    signer: Signer,
    kind: ContactKind,
    new: str,
    code: str,
) -> None:
    """Accepts the latest change code of this session once; a wrong one counts (five an hour lock it)."""
    if new_device.wrong_tries(db, account_id, change=True) >= new_device.MAX_WRONG_TRIES:
        raise ServiceError(status.HTTP_423_LOCKED, new_device.LOCKED, "code")
    binding = _session_binding(request, resources)
    row = new_device.latest_code(db, account_id, binding, change=True)
    if row is None or row.used_at is not None or row.channel != CHANNEL[kind]:
        raise ServiceError(status.HTTP_422_UNPROCESSABLE_CONTENT, change_checks.NO_CODE_YET, "code")
    if utcnow() > row.expires_at:
        raise ServiceError(status.HTTP_422_UNPROCESSABLE_CONTENT, change_checks.CODE_EXPIRED, "code")
    if not secrets.compare_digest(row.code_digest, _code_digest(resources, account_id, kind, new, code)):
        db.exec(
            update(LoginCode)
            .where(col(LoginCode.id) == row.id)
            .values(wrong_tries=col(LoginCode.wrong_tries) + 1)
        )
        _refused(db, request, signer, kind, "wrong code")
        left = new_device.MAX_WRONG_TRIES - new_device.wrong_tries(db, account_id, change=True)
        if left <= 0:
            raise ServiceError(status.HTTP_423_LOCKED, new_device.LOCKED, "code")
        tries = "1 try" if left == 1 else f"{left} tries"
        raise ServiceError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"That code is not right for {_masked(kind, new)}. {tries} left.",
            "code",
        )
    claimed = db.exec(
        update(LoginCode)
        .where(col(LoginCode.id) == row.id, col(LoginCode.used_at).is_(None))
        .values(used_at=utcnow())
    )
    db.commit()
    if claimed.rowcount != 1:
        raise ServiceError(status.HTTP_422_UNPROCESSABLE_CONTENT, "That code was already used.", "code")


# ---- notices -----------------------------------------------------------------------------------------


def _notice_channel(signer: Signer, changed: ContactKind | None) -> str | None:
    """The old address of what changed when there was one; else the signer's email, else their phone."""
    if changed == "email" and signer.email:
        return "email"
    if changed == "phone" and signer.phone:
        return "sms"
    return "email" if signer.email else ("sms" if signer.phone else None)


def _context(db: Session, signer: Signer, channel: str, code: str = "") -> MessageContext:
    engagement = db.get(Engagement, signer.engagement_id)
    firm = db.get(Firm, engagement.firm_id) if engagement else None
    minutes = int(new_device.CODE_LIFETIME.total_seconds() // 60)
    return MessageContext(
        firm.name if firm else "Portico", signer.first_name, channel, code=code, code_minutes=minutes
    )


async def _notify(
    db: Session,
    request: Request,
    outbox: Outbox,
    signer: Signer,
    purpose: str,
    channel: str | None,
    to: str | None = None,
) -> None:
    """ "Your … was changed; if this wasn't you, contact your preparer" to the old address. The change is
    done whatever happens here: a notice that cannot go out is recorded, not retried by the person."""
    destination = to or (signer.email if channel == "email" else signer.phone)
    if channel is None or not destination:
        return
    rendered = render(purpose, _context(db, signer, channel))
    message = OutgoingMessage(channel, destination, rendered.subject, rendered.body)  # type: ignore[arg-type]
    key = f"account-notice:{uuid.uuid4().hex}"
    outcome = await change_checks.send_notice(outbox, key, signer.engagement_id, purpose, message)
    audit.record(
        db,
        action=audit.CHANGE_NOTICE,
        actor=_actor_of(request, signer),
        engagement_id=signer.engagement_id,
        detail={"purpose": purpose, "channel": channel, "status": outcome},
    )
    db.commit()


__all__ = [
    "WRONG_PASSWORD",
    "change_password",
    "confirm_contact",
    "confirm_password",
    "current_contact",
    "send_contact_code",
]
