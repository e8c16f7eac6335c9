"""A person who forgot their portal password sets a new one with a one-time code (NIST SP 800-63B, ASVS V2.5).

- They type their user name, email address or phone number and choose email or text. The answer is the
  same whether or not an account uses it ("If an account uses this, we sent a code"), and so is its timing:
  the request only sets a reset-attempt cookie and hands the rest (finding the account, issuing and sending
  the code) to work that runs once the answer is on its way (`start` returns it).
- Only a verified account gets a code, at the address it has on file. The code is one of `services.codes`'
  `RESET_CODES`, bound to the reset-attempt cookie of the browser that asked (there is no session yet):
  10 minutes, single use, five wrong tries an hour lock the account's reset codes. The resend cooldown and
  the daily cap hold silently: a refusal would tell a stranger that the account exists.
- Confirming takes that browser's cookie, the code and a new password. An attempt with no code behind it
  (no such account, or no code was sent) gets the answers a wrong code gets, counted the same way against
  what was typed, so trying codes tells a stranger nothing about the account either.
- A right code and a new password that meets the registration rules: the password is re-hashed off the
  event loop; every session, pending login and remembered browser of the account ends; the login
  throttle's count for the account is cleared; the account's email address and phone are told. The person
  then logs in as usual, and a new browser still needs a login code.

Both steps are throttled per IP and per what they name (`REQUEST_THROTTLE`, `CONFIRM_THROTTLE`), like the
login; the code and the password never reach the audit log.
"""

from __future__ import annotations

import functools
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from fastapi import Request, Response
from sqlmodel import Session, func, select
from starlette.concurrency import run_in_threadpool

from core import audit, throttle
from core.account_emails import accounts_with_email
from core.context import Resources
from core.identity import InvalidContact, mask_email, mask_phone, normalise_email, normalise_phone
from core.models import Engagement, Firm, Signer, TaxpayerAccount, ThrottleState, utcnow
from core.passwords import hash_password, password_problems
from messaging.delivery import OutgoingMessage
from messaging.outbox import Outbox
from messaging.wording import MessageContext, render
from services import Refusal, ServiceError, change_checks, codes, cookies, new_device, throttling
from services.deps import request_actor

Channel = Literal["email", "sms"]
COOKIE = "portico_reset"
SENT = "If an account uses this, we sent a code to its {where}. It expires in {minutes} minutes."
START_AGAIN = "Ask for a code first."
DONE = "Your password is reset. Log in with your new password."
WHERE = {"email": "email address", "sms": "phone by text message"}

# Every request counts for the IP and for what it names, answered or not: each is answered "sent".
REQUEST_THROTTLE = throttling.guard(
    "taxpayer-password-reset",
    throttling.body_field("login"),
    forget_on_success=False,
    ip_keeps_successes=True,
)
# Code entry, per IP and per attempt: the codes themselves lock after five wrong ones, well below this.
CONFIRM_THROTTLE = throttling.guard(
    "taxpayer-password-reset-confirm", throttling.cookie(COOKIE), account_rule=throttle.LOCKED_BY_WORKFLOW
)
# Wrong codes typed into an attempt with no code behind it, per what was typed: a counter, never a wait.
_NOBODY_SCOPE = "taxpayer-password-reset-nobody"
_NOBODY = throttle.Rule(free=1_000_000_000, window=codes.WRONG_TRIES_WINDOW)


def neutral_answer(channel: Channel) -> str:
    """What every request is answered, whoever typed what."""
    return SENT.format(where=WHERE[channel], minutes=int(codes.CODE_LIFETIME.total_seconds() // 60))


# ---- the reset attempt (the cookie the code is bound to) ------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One browser's request: a random nonce, when it was made, and a keyed digest of what was typed."""

    nonce: str
    issued: int
    """Seconds since the epoch: the attempt expires with its code, whether or not there is one."""
    login_key: str

    @property
    def value(self) -> str:
        return f"{self.nonce}.{self.issued}.{self.login_key}"

    @property
    def binding(self) -> str:
        """What the code is bound to (stored hashed, like a session id)."""
        return throttle.key_hash(self.value)

    @property
    def expired(self) -> bool:
        issued = datetime.fromtimestamp(self.issued, UTC)
        return utcnow() > issued + codes.CODE_LIFETIME

    @classmethod
    def read(cls, request: Request, resources: Resources) -> Attempt | None:
        parts = (cookies.read(request, resources, COOKIE) or "").split(".")
        if len(parts) != 3 or not parts[1].isdigit() or not all(parts):
            return None
        return cls(parts[0], int(parts[1]), parts[2])


def _login_key(resources: Resources, login: str) -> str:
    """The same key for every spelling of one email address or phone number."""
    kind, value = _as_contact(login) or ("name", login.strip().lower())
    return resources.cipher.digest("password-reset-login", f"{kind}:{value}")[:32]


def _as_contact(login: str) -> tuple[str, str] | None:
    text = login.strip()
    try:
        return ("email", normalise_email(text)) if "@" in text else ("phone", normalise_phone(text))
    except InvalidContact:
        return None


# ---- asking for a code ---------------------------------------------------------------------------------


def start(
    request: Request,
    response: Response,
    resources: Resources,
    outbox: Outbox,
    *,
    login: str,
    channel: Channel,
) -> Callable[[], Awaitable[None]]:
    """Puts a new reset attempt on `response`; answers the work that finds the account and sends the code,
    for the caller to run after the answer (a background task), so known and unknown logins answer alike."""
    attempt = Attempt(secrets.token_urlsafe(24), int(utcnow().timestamp()), _login_key(resources, login))
    cookies.put(response, resources, COOKIE, attempt.value, max_age=codes.CODE_LIFETIME)
    actor = request_actor(request, "anonymous", "password-reset")
    return functools.partial(_send_code, resources, outbox, attempt, login, channel, actor)


def find_account(db: Session, login: str) -> list[TaxpayerAccount]:
    """The accounts a user name (any case), email address (any verified one) or phone number names."""
    text = login.strip()
    if not text:
        return []
    by_name = db.exec(
        select(TaxpayerAccount).where(func.lower(TaxpayerAccount.username) == text.lower())
    ).all()
    if by_name:
        return list(by_name)
    contact = _as_contact(text)
    if contact is None:
        return []
    column = TaxpayerAccount.email if contact[0] == "email" else TaxpayerAccount.phone
    found = list(db.exec(select(TaxpayerAccount).where(func.lower(column) == contact[1])).all())
    if contact[0] == "email":  # any verified address of an account names it, not only its primary one
        known = {a.id for a in found}
        found += [a for a in accounts_with_email(db, contact[1]) if a.id not in known]
    return found


def _one_verified(found: list[TaxpayerAccount]) -> TaxpayerAccount | str:
    """The account to reset, or why none (for the audit log only)."""
    verified = [a for a in found if a.verified_at is not None]
    if not found:
        return "no account"
    if not verified:
        return "not verified"
    # Two verified accounts share the address (a couple's one email): only the user name tells them apart.
    return verified[0] if len(verified) == 1 else "several accounts"


async def _send_code(
    resources: Resources, outbox: Outbox, attempt: Attempt, login: str, channel: Channel, actor: audit.Actor
) -> None:
    with Session(resources.engine) as db:
        account = _one_verified(find_account(db, login))
        if isinstance(account, str):
            _not_sent(db, actor, None, account)
            return
        whose = _whose(db, account)
        actor = replace(actor, kind="taxpayer", id=str(account.id))
        try:
            _refuse_past_daily_cap(db, resources, account.id or 0)
            row, code = codes.RESET_CODES.issue(
                db,
                resources,
                account_id=account.id or 0,
                binding=attempt.binding,
                channel=channel,
                scope=_scope(account.id or 0),
            )
        except ServiceError as exc:  # locked, cooling down, capped: said to nobody, kept in the audit log
            _not_sent(db, actor, whose.engagement_id, exc.kind.value)
            return
        to = account.email if channel == "email" else account.phone
        context = MessageContext(
            whose.firm_name, whose.first_name, channel, code=code, code_minutes=_minutes()
        )
        rendered = render("password_reset_code", context)
        message = OutgoingMessage(channel, to, rendered.subject, rendered.body)
        key = f"password-reset-code:{row.id}"
        try:
            await codes.send_code(
                db,
                outbox,
                codes.CodeMessage(key, whose.engagement_id, "password_reset_code", message),
                audit.PASSWORD_RESET_CODE_SENT,
                actor,
                {"channel": channel, "to": mask_email(to) if channel == "email" else mask_phone(to)},
            )
        except ServiceError as exc:  # the provider refused the address, or is down: nobody is told
            _not_sent(db, actor, whose.engagement_id, exc.kind.value)


def _refuse_past_daily_cap(db: Session, resources: Resources, account_id: int) -> None:
    """Reset codes are capped per account and day like contact-change codes: each is a message paid for."""
    cap = resources.settings.contact_codes_per_day
    if codes.RESET_CODES.issued_since(db, account_id, utcnow() - timedelta(days=1)) >= cap:
        raise ServiceError(Refusal.THROTTLED, "daily cap")


def _not_sent(db: Session, actor: audit.Actor, engagement_id: int | None, reason: str) -> None:
    detail = {"reason": reason}
    audit.record(
        db, action=audit.PASSWORD_RESET_NOT_SENT, actor=actor, engagement_id=engagement_id, detail=detail
    )
    db.commit()


def _scope(account_id: int) -> str:
    """What a reset code's digest covers besides the digits."""
    return f"password-reset:{account_id}"


def _minutes() -> int:
    return int(codes.CODE_LIFETIME.total_seconds() // 60)


@dataclass(frozen=True)
class _Whose:
    """Whose firm speaks in the messages, and the engagement they are filed under."""

    firm_name: str
    first_name: str
    engagement_id: int | None


def _whose(db: Session, account: TaxpayerAccount) -> _Whose:
    signer = db.get(Signer, account.signer_id) if account.signer_id else None
    engagement = db.get(Engagement, signer.engagement_id) if signer else None
    firm_id = engagement.firm_id if engagement else account.firm_id  # that return disposed of: the firm's
    firm = db.get(Firm, firm_id) if firm_id else None
    return _Whose(
        firm.name if firm else "Portico",
        signer.first_name if signer else "there",
        engagement.id if engagement else None,
    )


# ---- confirming with the code and a new password -------------------------------------------------------


async def confirm(
    db: Session,
    request: Request,
    response: Response,
    resources: Resources,
    outbox: Outbox,
    *,
    code: str,
    new_password: str,
) -> None:
    """The code sent for this browser's attempt and a new password: when both are right, the password is
    reset and the account logged out everywhere (the attempt's cookie is dropped on `response`)."""
    actor = request_actor(request, "anonymous", "password-reset")
    attempt = Attempt.read(request, resources)
    if attempt is None:
        _refused(db, actor, None, "no attempt")
        raise ServiceError(Refusal.INVALID, START_AGAIN, "code")
    if attempt.expired:
        _refused(db, actor, None, "expired")
        raise ServiceError(Refusal.INVALID, codes.CODE_EXPIRED, "code")
    problems = password_problems(new_password)  # the rules that need no account: before a try is spent
    if problems:
        _refused(db, actor, None, "rules")
        raise ServiceError(Refusal.INVALID, " ".join(problems), "new_password")
    holder = codes.RESET_CODES.holder(db, attempt.binding)
    account = db.get(TaxpayerAccount, holder) if holder is not None else None
    if account is None:
        _wrong_for_nobody(db, resources, actor, attempt)
    assert account is not None
    whose = _whose(db, account)
    actor = replace(actor, kind="taxpayer", id=str(account.id))

    def rules_with_names() -> None:  # not the user name or email: checked once the code is right
        change_checks.check_new_password(
            new_password,
            "",
            (account.username, account.email),
            lambda reason: _refused(db, actor, whose.engagement_id, reason),
        )

    codes.RESET_CODES.check(
        db,
        resources,
        account_id=account.id or 0,
        binding=attempt.binding,
        scope=_scope(account.id or 0),
        code=code,
        on_wrong=lambda: _record_refusal(db, actor, whose.engagement_id, "wrong code"),
        before_use=rules_with_names,
    )
    await _reset(db, resources, outbox, actor, account, whose, new_password)
    cookies.drop(response, resources, COOKIE)


def _wrong_for_nobody(db: Session, resources: Resources, actor: audit.Actor, attempt: Attempt) -> None:
    """An attempt no code was sent for: a wrong code, counted against what was typed as a real account's
    wrong codes are counted against it (and locked at the same count)."""
    key = throttle.key_hash(attempt.login_key)
    row = db.get(ThrottleState, (_NOBODY_SCOPE, key))
    so_far = row.attempts if row and utcnow() - row.last_attempt_at <= _NOBODY.window else 0
    if so_far >= codes.MAX_WRONG_TRIES:
        raise ServiceError(Refusal.LOCKED, codes.LOCKED, "code")
    count = throttle.attempt(resources.engine, _NOBODY_SCOPE, attempt.login_key, _NOBODY)
    _refused(db, actor, None, "wrong code")
    raise codes.wrong_code(codes.MAX_WRONG_TRIES - count)


def _record_refusal(db: Session, actor: audit.Actor, engagement_id: int | None, reason: str) -> None:
    detail = {"reason": reason}
    audit.record(
        db, action=audit.PASSWORD_RESET_REFUSED, actor=actor, engagement_id=engagement_id, detail=detail
    )


def _refused(db: Session, actor: audit.Actor, engagement_id: int | None, reason: str) -> None:
    _record_refusal(db, actor, engagement_id, reason)
    db.commit()


async def _reset(
    db: Session,
    resources: Resources,
    outbox: Outbox,
    actor: audit.Actor,
    account: TaxpayerAccount,
    whose: _Whose,
    new_password: str,
) -> None:
    account.password_hash = await run_in_threadpool(hash_password, new_password)
    db.add(account)
    # Every session, pending login and remembered browser: whoever knew the old password is out.
    ended = new_device.forget_everywhere(db, account.id or 0)
    audit.record(
        db,
        action=audit.PASSWORD_RESET,
        actor=actor,
        engagement_id=whose.engagement_id,
        detail={"sessions_ended": ended},
    )
    db.commit()
    # The code proved the account's address: wrong passwords typed before no longer hold the login back.
    for scope in ("taxpayer-login:account", "taxpayer-login:consecutive"):
        forget = functools.partial(
            throttle.succeeded, resources.engine, scope, account.username.lower(), forget=True
        )
        await run_in_threadpool(forget)
    await _notify(db, outbox, actor, account, whose)


async def _notify(
    db: Session, outbox: Outbox, actor: audit.Actor, account: TaxpayerAccount, whose: _Whose
) -> None:
    """ "Your password was reset; if this wasn't you, contact your preparer" to the email and the phone.
    The reset is done whatever happens here: a notice that cannot go out is recorded."""
    batch = uuid.uuid4().hex
    for channel, to in (("email", account.email), ("sms", account.phone)):
        if not to:
            continue
        rendered = render("password_reset_done", MessageContext(whose.firm_name, whose.first_name, channel))
        message = OutgoingMessage(channel, to, rendered.subject, rendered.body)  # type: ignore[arg-type]
        key = f"password-reset-done:{batch}:{channel}"
        outcome = await change_checks.send_notice(
            outbox, key, whose.engagement_id, "password_reset_done", message
        )
        audit.record(
            db,
            action=audit.PASSWORD_RESET_NOTICE,
            actor=actor,
            engagement_id=whose.engagement_id,
            detail={"channel": channel, "status": outcome},
        )
        db.commit()
