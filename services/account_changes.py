"""A signed-in taxpayer changes their password, email address, phone number or time zone (NIST SP 800-63B,
ASVS V2/V3).

- Every change asks for the current password again; a wrong one is counted by the login throttle (the same
  per-account and per-IP counts as `/api/taxpayer/login`) and lands in the audit log.
- A new password follows the registration rules, is hashed with argon2id off the event loop, and ends every
  other session of the account; this browser gets a new session id.
- A new email address or phone number replaces the old one only once a one-time code sent to it comes
  back. The code is one of `services.codes`' `CHANGE_CODES`, bound to the session that asked for it; its
  keyed digest covers the new address as well, so no pending address is stored anywhere and a code
  proves exactly the address it was sent to.
- Afterwards a notice goes to the old address through the outbox, like every other message.

The contact is changed on the `Signer` row as well as on the account: that row is where every message to
the signer goes, the workflow's reminders included (its `send_message` activity reads it when it sends). It
is identity data, not pipeline state; the workflow keeps only masked copies and digests of the contacts on
the return, for the invitation and the registration match, and consults neither once the account exists.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Literal

import phonenumbers
from fastapi import Request, Response
from sqlmodel import Session, col, delete
from starlette.concurrency import run_in_threadpool

from core import audit, sessions
from core.account_emails import replace_primary
from core.context import Resources
from core.identity import InvalidContact, mask_email, mask_phone, normalise_email, normalise_phone
from core.models import Engagement, Firm, Signer, TaxpayerAccount, TrustedDevice, WebSession, utcnow
from core.passwords import hash_password
from messaging.delivery import OutgoingMessage
from messaging.wording import MessageContext, render
from services import Refusal, ServiceError, change_checks, codes, cookies, new_device, throttling
from services.context import TaxpayerContext
from services.engagements import add_search_terms
from services.engagements import change_time_zone as move_signer
from services.throttled_step import throttled_step

ContactKind = Literal["email", "phone"]
WRONG_PASSWORD = change_checks.WRONG_PASSWORD
CHANNEL = {"email": "email", "phone": "sms"}
WORDS = {"email": "email address", "phone": "phone number"}


async def _signed_in_username(request: Request, resources: Resources) -> str | None:
    username = getattr(request.state, "throttle_username", None)
    return username.strip().lower() if isinstance(username, str) else None


# Action "taxpayer-login": a password typed here is counted exactly like one typed on the login form.
PASSWORD_CHECK = throttling.guard("taxpayer-login", _signed_in_username)


def _refused(ctx: TaxpayerContext, what: str, reason: str) -> None:
    change_checks.record_refusal(
        ctx.db, audit.CHANGE_REFUSED, ctx.actor, what, reason, engagement_id=ctx.signer.engagement_id
    )


async def confirm_password(ctx: TaxpayerContext, request: Request, *, password: str, what: str) -> None:
    """The current password, asked again before a change; throttled and audited like a login (the
    request carries the throttle's per-IP count)."""
    request.state.throttle_username = ctx.account.username
    async with throttled_step(request, PASSWORD_CHECK) as step:
        await change_checks.check_current_password(
            step, ctx.account.password_hash, password, lambda reason: _refused(ctx, what, reason)
        )


# ---- password ----------------------------------------------------------------------------------------


async def change_password(
    ctx: TaxpayerContext, request: Request, response: Response, *, current: str, new: str
) -> None:
    """Re-hash, end every other session (and pending login) of the account, forget its remembered
    browsers, rotate this session (its cookie goes on `response`), notify."""
    db, account, signer = ctx.db, ctx.account, ctx.signer
    await confirm_password(ctx, request, password=current, what="password")
    change_checks.check_new_password(
        new,
        current,
        (account.username, account.email),
        lambda reason: _refused(ctx, "password", reason),
    )
    account.password_hash = await run_in_threadpool(hash_password, new)
    db.add(account)
    ended = sessions.end_all(db, "taxpayer", account.id or 0)
    db.exec(
        delete(WebSession).where(  # a login waiting for its code proved the old password: it ends too
            col(WebSession.kind) == new_device.ATTEMPT_KIND, col(WebSession.subject_id) == account.id
        )
    )
    # Remembered browsers too: whoever knew the old password must not keep skipping the login code.
    db.exec(delete(TrustedDevice).where(col(TrustedDevice.account_id) == account.id))
    actor = ctx.actor
    token = sessions.start(db, "taxpayer", account.id or 0, actor.ip, actor.user_agent)
    cookies.put(response, ctx.resources, cookies.SESSION, token)
    audit.record(
        db,
        action=audit.PASSWORD_CHANGED,
        actor=actor,
        engagement_id=signer.engagement_id,
        detail={"other_sessions_ended": max(ended - 1, 0)},
    )
    db.commit()
    await notify(ctx, "password_changed", _notice_channel(signer, None))


# ---- email and phone ---------------------------------------------------------------------------------


def normalised(kind: ContactKind, value: str) -> str:
    """The new address as Portico stores it; a clear 422 when it is not one."""
    try:
        return normalise_email(value) if kind == "email" else normalise_phone(value)
    except InvalidContact as exc:
        what = "an email address" if kind == "email" else "a phone number, like 702 555 0197"
        raise ServiceError(Refusal.INVALID, f"Enter {what}.", "value") from exc


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


def _refuse_unless_textable(resources: Resources, phone: str) -> None:
    """Codes are texted only to the countries the firm allows (`sms_countries`, US and Canada unless set):
    +1 alone is not enough, the Caribbean shares it."""
    allowed = {country.upper() for country in resources.settings.sms_countries}
    region = phonenumbers.region_code_for_number(phonenumbers.parse(phone))
    if region not in allowed:
        names = ", ".join(sorted(allowed))
        raise ServiceError(
            Refusal.INVALID,
            f"Portico can text codes only to phone numbers in {names}. Enter such a number, or ask your "
            "preparer for help.",
            "value",
        )


def refuse_past_daily_cap(db: Session, resources: Resources, account_id: int) -> None:
    """A day's contact-change codes are capped per account: each one is a message the firm pays for."""
    cap = resources.settings.contact_codes_per_day
    if codes.CHANGE_CODES.issued_since(db, account_id, utcnow() - timedelta(days=1)) >= cap:
        raise ServiceError(
            Refusal.THROTTLED,
            f"You have asked for {cap} codes today. Try again tomorrow, or ask your preparer for help.",
            retry_after=3600,
        )


def _scope(account_id: int, kind: ContactKind, value: str) -> str:
    """What a change code's digest covers besides the digits: the new address."""
    return f"contact-change:{account_id}:{kind}:{value}"


async def send_contact_code(
    ctx: TaxpayerContext, request: Request, *, kind: ContactKind, value: str, current_password: str
) -> codes.CodeSent:
    """Checks the password and sends a one-time code to the new address (which changes nothing yet). The
    code is bound to this browser's session (from `request`)."""
    db, resources, account, signer = ctx.db, ctx.resources, ctx.account, ctx.signer
    new = normalised(kind, value)
    if new == current_contact(account, signer, kind):
        raise ServiceError(Refusal.INVALID, f"That is already your {WORDS[kind]}.", "value")
    if kind == "phone":
        _refuse_unless_textable(resources, new)
    await confirm_password(ctx, request, password=current_password, what=kind)
    account_id = account.id or 0
    refuse_past_daily_cap(db, resources, account_id)
    row, code = codes.CHANGE_CODES.issue(
        db,
        resources,
        account_id=account_id,
        binding=change_checks.session_id(request, resources),
        channel=CHANNEL[kind],
        scope=_scope(account_id, kind, new),
    )
    rendered = render("contact_code", message_context(db, signer, CHANNEL[kind], code=code))
    message = OutgoingMessage(CHANNEL[kind], new, rendered.subject, rendered.body)  # type: ignore[arg-type]
    await codes.send_code(
        db,
        ctx.outbox,
        codes.CodeMessage(f"contact-code:{row.id}", signer.engagement_id, "contact_code", message),
        audit.CONTACT_CODE_SENT,
        ctx.actor,
        {"what": kind, "to": _masked(kind, new)},
    )
    resend_after = row.created_at + resources.settings.code_resend_cooldown
    return codes.CodeSent(_masked(kind, new), row.expires_at, resend_after)


async def confirm_contact(
    ctx: TaxpayerContext, request: Request, *, kind: ContactKind, value: str, code: str
) -> str:
    """The code sent to the new address: when right, the address replaces the old one. Answers it masked."""
    db, account, signer = ctx.db, ctx.account, ctx.signer
    new = normalised(kind, value)
    _check_contact_code(ctx, request, kind, new, code)
    old = current_contact(account, signer, kind)
    notice_channel = _notice_channel(signer, kind)
    notice_to = old if notice_channel == CHANNEL[kind] else None
    if kind == "email":
        # emails_of reads the account's primary address: the row is moved before the account changes.
        replace_primary(db, account, account.email or old, new, utcnow())
        account.email = signer.email = new
    else:
        account.phone = signer.phone = new
    db.add(account)
    db.add(signer)
    audit.record(
        db,
        action=audit.EMAIL_CHANGED if kind == "email" else audit.PHONE_CHANGED,
        actor=ctx.actor,
        engagement_id=signer.engagement_id,
        detail={"from": _masked(kind, old) if old else "", "to": _masked(kind, new)},
    )
    add_search_terms(db, signer)  # the preparer's dashboard finds the engagement by the new address too
    db.commit()
    await notify(ctx, f"{kind}_changed", notice_channel, notice_to)
    return _masked(kind, new)


def _check_contact_code(
    ctx: TaxpayerContext, request: Request, kind: ContactKind, new: str, code: str
) -> None:
    """Accepts the latest change code of this session once; a wrong one counts (five an hour lock it)."""
    account_id = ctx.account.id or 0
    codes.CHANGE_CODES.check(
        ctx.db,
        ctx.resources,
        account_id=account_id,
        binding=change_checks.session_id(request, ctx.resources),
        scope=_scope(account_id, kind, new),
        code=code,
        on_wrong=lambda: _refused(ctx, kind, "wrong code"),
        channel=CHANNEL[kind],
        sent_to=_masked(kind, new),
    )


# ---- notices -----------------------------------------------------------------------------------------


def _notice_channel(signer: Signer, changed: ContactKind | None) -> str | None:
    """The old address of what changed when there was one; else the signer's email, else their phone."""
    if changed == "email" and signer.email:
        return "email"
    if changed == "phone" and signer.phone:
        return "sms"
    return "email" if signer.email else ("sms" if signer.phone else None)


def message_context(db: Session, signer: Signer, channel: str, code: str = "") -> MessageContext:
    engagement = db.get(Engagement, signer.engagement_id)
    firm = db.get(Firm, engagement.firm_id) if engagement else None
    minutes = int(codes.CODE_LIFETIME.total_seconds() // 60)
    return MessageContext(
        firm.name if firm else "Portico", signer.first_name, channel, code=code, code_minutes=minutes
    )


async def notify(ctx: TaxpayerContext, purpose: str, channel: str | None, to: str | None = None) -> None:
    """ "Your … was changed; if this wasn't you, contact your preparer" to the old address. The change is
    done whatever happens here: a notice that cannot go out is recorded, not retried by the person."""
    db, signer = ctx.db, ctx.signer
    destination = to or (signer.email if channel == "email" else signer.phone)
    if channel is None or not destination:
        return
    rendered = render(purpose, message_context(db, signer, channel))
    message = OutgoingMessage(channel, destination, rendered.subject, rendered.body)  # type: ignore[arg-type]
    key = f"account-notice:{uuid.uuid4().hex}"
    outcome = await change_checks.send_notice(ctx.outbox, key, signer.engagement_id, purpose, message)
    audit.record(
        db,
        action=audit.CHANGE_NOTICE,
        actor=ctx.actor,
        engagement_id=signer.engagement_id,
        detail={"purpose": purpose, "channel": channel, "status": outcome},
    )
    db.commit()


# ---- time zone -----------------------------------------------------------------------------------------


async def change_time_zone(ctx: TaxpayerContext, *, time_zone: str) -> bool:
    """The portal shows times, and reminders keep quiet hours, where the signer says they live. Not a
    security change: no password asked, and the change is in the audit log."""
    engagement = ctx.db.get(Engagement, ctx.signer.engagement_id)
    if engagement is None:
        raise ServiceError(Refusal.NOT_FOUND, "This return is gone.")
    return await move_signer(
        ctx.db, ctx.client, engagement=engagement, signer=ctx.signer, time_zone=time_zone, actor=ctx.actor
    )


__all__ = [
    "WRONG_PASSWORD",
    "change_password",
    "change_time_zone",
    "confirm_contact",
    "confirm_password",
    "current_contact",
    "send_contact_code",
]
