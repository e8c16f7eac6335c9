"""A signed-in client's security settings: sign-in email addresses, sessions and remembered browsers.

- **Another email address** is added only once a code sent to it comes back, with the current password
  asked first (counted by the login throttle, as every account change): the code is one of
  `services.codes`' `CHANGE_CODES`, bound to this session, its digest covering the new address, so nothing
  pending is stored. The account's existing addresses are told. Any verified address then signs in and
  is recognised on a later invitation (`core.account_emails`).
- **Removing one** is refused for the last verified address. Removing the primary one makes the oldest
  other verified address primary; the returns whose messages went to it follow.
- **Sessions and remembered browsers** are listed by a reference derived from their stored hash (never the
  hash itself): ending a session logs that browser out, forgetting a browser makes its next login ask for
  a code. This browser's own session is ended with "Log out", not here. A reference is looked up among the
  caller's own rows only, so another account's is simply not found (404).

Every change is audited and the account's owner is told, as every account change is (`account_changes`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request
from sqlmodel import col, select

from core import audit
from core.account_emails import emails_of
from core.client_accounts import linked_returns
from core.identity import mask_email
from core.models import AccountEmail, TrustedDevice, WebSession, utcnow
from messaging.delivery import OutgoingMessage
from messaging.wording import render
from services import Refusal, ServiceError, account_changes, change_checks, codes, new_device
from services.context import TaxpayerContext
from services.engagements import add_search_terms

LAST_EMAIL = "This is your only email address. Add another one before you remove it."
THIS_BROWSER = "That is this browser: use Log out instead."
GONE = "Not found."


@dataclass(frozen=True)
class EmailView:
    id: int
    email: str
    primary: bool
    verified: bool


@dataclass(frozen=True)
class SessionView:
    ref: str
    created_at: datetime
    last_seen_at: datetime
    ip: str
    user_agent: str
    this_browser: bool


@dataclass(frozen=True)
class DeviceView:
    ref: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    ip: str
    user_agent: str
    this_browser: bool


def reference(kind: str, stored: str) -> str:
    """A row's public reference: derived from its stored hash, which never leaves the server."""
    return hashlib.sha256(f"{kind}:{stored}".encode()).hexdigest()[:24]


# ---- reading ------------------------------------------------------------------------------------------


def emails(ctx: TaxpayerContext) -> list[EmailView]:
    """The account's addresses, the primary one first."""
    rows = emails_of(ctx.db, ctx.account)
    ctx.db.commit()  # the primary address's row, when this is the first time it is listed
    primary = ctx.account.email.lower()
    return [
        EmailView(r.id or 0, r.email, r.email.lower() == primary, r.verified_at is not None) for r in rows
    ]


def _live_sessions(ctx: TaxpayerContext) -> list[WebSession]:
    settings, now = ctx.resources.settings, utcnow()
    rows = ctx.db.exec(
        select(WebSession)
        .where(WebSession.kind == "taxpayer", WebSession.subject_id == ctx.account.id)
        .order_by(col(WebSession.last_seen_at).desc())
    ).all()
    return [
        r
        for r in rows
        if now - r.last_seen_at <= settings.session_idle_timeout
        and now - r.created_at <= settings.session_absolute_timeout
    ]


def signed_in(ctx: TaxpayerContext, request: Request) -> list[SessionView]:
    """Where the account is signed in, the most recently seen first; this browser's marked."""
    mine = change_checks.session_id(request, ctx.resources)
    return [
        SessionView(
            reference("session", r.id_hash),
            r.created_at,
            r.last_seen_at,
            r.ip or "",
            r.user_agent or "",
            r.id_hash == mine,
        )
        for r in _live_sessions(ctx)
    ]


def _live_devices(ctx: TaxpayerContext) -> list[TrustedDevice]:
    rows = ctx.db.exec(
        select(TrustedDevice)
        .where(TrustedDevice.account_id == ctx.account.id)
        .order_by(col(TrustedDevice.last_used_at).desc())
    ).all()
    return [r for r in rows if r.expires_at > utcnow()]


def remembered(ctx: TaxpayerContext, request: Request) -> list[DeviceView]:
    """The browsers that log in without a code, the most recently used first; this browser's marked."""
    here = new_device.this_browsers_devices(request, ctx.resources)
    return [
        DeviceView(
            reference("device", r.token_hash),
            r.created_at,
            r.last_used_at,
            r.expires_at,
            r.ip or "",
            r.user_agent or "",
            r.token_hash in here,
        )
        for r in _live_devices(ctx)
    ]


# ---- another email address ------------------------------------------------------------------------------


def _scope(account_id: int, email: str) -> str:
    """What an added address's code covers besides the digits (another scope than a changed address's)."""
    return f"email-add:{account_id}:{email}"


def _new_address(ctx: TaxpayerContext, email: str) -> str:
    new = account_changes.normalised("email", email)
    if any(e.email.lower() == new and e.verified for e in emails(ctx)):
        raise ServiceError(Refusal.INVALID, "That address is already one of yours.", "value")
    return new


async def send_email_code(
    ctx: TaxpayerContext, request: Request, *, email: str, current_password: str
) -> codes.CodeSent:
    """Checks the password and sends a code to the address to add (which adds nothing yet)."""
    db, resources, account, signer = ctx.db, ctx.resources, ctx.account, ctx.signer
    new = _new_address(ctx, email)
    await account_changes.confirm_password(ctx, request, password=current_password, what="email_add")
    account_id = account.id or 0
    account_changes.refuse_past_daily_cap(db, resources, account_id)
    row, code = codes.CHANGE_CODES.issue(
        db,
        resources,
        account_id=account_id,
        binding=change_checks.session_id(request, resources),
        channel="email",
        scope=_scope(account_id, new),
    )
    rendered = render("contact_code", account_changes.message_context(db, signer, "email", code=code))
    await codes.send_code(
        db,
        ctx.outbox,
        codes.CodeMessage(
            f"email-add-code:{row.id}",
            signer.engagement_id,
            "contact_code",
            OutgoingMessage("email", new, rendered.subject, rendered.body),
        ),
        audit.EMAIL_CODE_SENT,
        ctx.actor,
        {"to": mask_email(new)},
    )
    return codes.CodeSent(
        mask_email(new), row.expires_at, row.created_at + resources.settings.code_resend_cooldown
    )


async def add_email(ctx: TaxpayerContext, request: Request, *, email: str, code: str) -> str:
    """The code sent to the new address: when right, it becomes one of the account's verified addresses.
    Answers it masked."""
    db, account = ctx.db, ctx.account
    new = _new_address(ctx, email)
    account_id = account.id or 0
    codes.CHANGE_CODES.check(
        db,
        ctx.resources,
        account_id=account_id,
        binding=change_checks.session_id(request, ctx.resources),
        scope=_scope(account_id, new),
        code=code,
        on_wrong=lambda: _refused(ctx, "email_add", "wrong code"),
        channel="email",
        sent_to=mask_email(new),
    )
    told = [e.email for e in emails(ctx) if e.verified]
    row = db.exec(
        select(AccountEmail).where(AccountEmail.account_id == account_id, AccountEmail.email == new)
    ).first() or AccountEmail(account_id=account_id, email=new)
    row.verified_at = utcnow()
    db.add(row)
    audit.record(
        db,
        action=audit.EMAIL_ADDED,
        actor=ctx.actor,
        engagement_id=ctx.signer.engagement_id,
        detail={"email": mask_email(new)},
    )
    db.commit()
    for address in told:
        await account_changes.notify(ctx, "email_added", "email", address)
    return mask_email(new)


def _refused(ctx: TaxpayerContext, what: str, reason: str) -> None:
    change_checks.record_refusal(
        ctx.db, audit.CHANGE_REFUSED, ctx.actor, what, reason, engagement_id=ctx.signer.engagement_id
    )


# ---- removing an email address --------------------------------------------------------------------------


async def remove_email(ctx: TaxpayerContext, *, email_id: int) -> str:
    """Removes one of the account's addresses (never the last verified one); answers it masked."""
    db, account = ctx.db, ctx.account
    listed = emails(ctx)
    target = next((e for e in listed if e.id == email_id), None)
    if target is None:
        raise ServiceError(Refusal.NOT_FOUND, GONE)
    others = [e for e in listed if e.id != email_id and e.verified]
    if not others:
        _refused(ctx, "email_remove", "last address")
        raise ServiceError(Refusal.CONFLICT, LAST_EMAIL)
    row = db.get(AccountEmail, email_id)
    if row is not None:
        db.delete(row)
    if target.primary:
        _make_primary(ctx, target.email, others[0].email)
    audit.record(
        db,
        action=audit.EMAIL_REMOVED,
        actor=ctx.actor,
        engagement_id=ctx.signer.engagement_id,
        detail={"email": mask_email(target.email), "primary_now": mask_email(ctx.account.email)},
    )
    db.commit()
    for address in {target.email, account.email}:
        await account_changes.notify(ctx, "email_removed", "email", address)
    return mask_email(target.email)


def _make_primary(ctx: TaxpayerContext, old: str, new: str) -> None:
    """Messages to the account, and to each of its returns that used the removed address, go to `new`."""
    db, account = ctx.db, ctx.account
    account.email = new
    db.add(account)
    for linked in linked_returns(db, account.id or 0):
        signer = linked.signer
        if (signer.email or "").lower() == old.lower():
            signer.email = new
            db.add(signer)
            add_search_terms(db, signer)


# ---- sessions and remembered browsers ---------------------------------------------------------------------


async def end_session(ctx: TaxpayerContext, request: Request, *, ref: str) -> None:
    """Logs out one of the account's other sessions."""
    row = next((r for r in _live_sessions(ctx) if reference("session", r.id_hash) == ref), None)
    if row is None:
        raise ServiceError(Refusal.NOT_FOUND, GONE)
    if row.id_hash == change_checks.session_id(request, ctx.resources):
        raise ServiceError(Refusal.CONFLICT, THIS_BROWSER)
    await _remove(ctx, row, audit.SESSION_ENDED, "session_ended")


async def forget_device(ctx: TaxpayerContext, *, ref: str) -> None:
    """Forgets one remembered browser: its next login asks for a code again."""
    row = next((r for r in _live_devices(ctx) if reference("device", r.token_hash) == ref), None)
    if row is None:
        raise ServiceError(Refusal.NOT_FOUND, GONE)
    await _remove(ctx, row, audit.DEVICE_FORGOTTEN, "device_forgotten")


async def _remove(ctx: TaxpayerContext, row: WebSession | TrustedDevice, action: str, purpose: str) -> None:
    """Deletes a session or remembered browser of the account, audited (where it was used), owner told."""
    detail = {"ip": row.ip or "", "user_agent": (row.user_agent or "")[:120]}
    ctx.db.delete(row)
    where = ctx.signer.engagement_id
    audit.record(ctx.db, action=action, actor=ctx.actor, engagement_id=where, detail=detail)
    ctx.db.commit()
    await _tell_owner(ctx, purpose)


async def _tell_owner(ctx: TaxpayerContext, purpose: str) -> None:
    """To the account's primary email (else the phone): whoever did it, the owner hears of it."""
    if ctx.account.email:
        await account_changes.notify(ctx, purpose, "email", ctx.account.email)
    elif ctx.account.phone:
        await account_changes.notify(ctx, purpose, "sms", ctx.account.phone)
