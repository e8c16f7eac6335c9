"""One-time codes: the one place a code is made, stored, sent, checked and claimed, and a refusal worded.

Every flow that sends a code and checks it comes here:
- a login from a browser Portico has not seen (`new_device`) and a new email address or phone number
  (`account_changes`) keep their codes as `LoginCode` rows: keyed digest only, 10 minutes, single use.
  Wrong tries are summed over the account's codes of the last hour, so a new code does not reset them;
  five lock the account's codes of that book for the rest of the hour. The books are told apart by a
  prefix of `attempt_hash`, so each counts its own wrong tries and cooldown;
- a forgotten password's reset code (`password_reset`) is a third book of the same rows, bound to the
  browser that asked (a reset-attempt cookie): no session exists yet;
- a preparer's new login email (`preparer_account`) keeps its code as a session row whose id is the code's
  digest; deleting it is what uses it, and its wrong tries are counted by the login throttle;
- the taxpayer's verification code is pipeline state: the workflow checks it and answers a `VerifyResult`,
  which `verification_refused` words like every other refusal here.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func
from sqlmodel import Session, col, select, update
from starlette.concurrency import run_in_threadpool

from core import audit
from core.context import Resources
from core.models import LoginCode, utcnow
from messaging.delivery import DeliveryError, OutgoingMessage
from messaging.outbox import Outbox
from services import Refusal, ServiceError

CODE_LIFETIME = timedelta(minutes=10)
MAX_WRONG_TRIES = 5
# A `LoginCode` row proving a new address (not a login) starts its `attempt_hash` with this.
CHANGE_PREFIX = "change:"
# A `LoginCode` row resetting a forgotten password starts its `attempt_hash` with this.
RESET_PREFIX = "reset:"
# Every book but the login book has its prefix; the login book is the rows none of them claims.
_PREFIXED_BOOKS = (CHANGE_PREFIX, RESET_PREFIX)
WRONG_TRIES_WINDOW = timedelta(hours=1)

LOCKED = "Too many wrong codes. Wait an hour and try again, or ask your preparer for help."
NO_CODE_YET = "Ask for a code first."
CODE_EXPIRED = "That code has expired. Ask for a new one."
ALREADY_USED = "That code was already used."
NOT_SENT = "The code could not be sent just now. Try again shortly."
ADDRESS_REFUSED = (
    "That address refused our message, so no code is on its way. Choose another way to get the code, "
    "or ask your preparer to check your contact details."
)
CODE_REFUSED = "code.delivery_refused"
# What the workflow's verification answers, by its `VerifyResult.reason` ("wrong" is worded by `not_right`).
VERIFICATION_REFUSALS = {
    "expired": CODE_EXPIRED,
    "used": "That code was already used. Ask for a new one.",
    "locked": "Too many wrong codes. Ask your preparer to unlock your account.",
}


@dataclass(frozen=True)
class CodeSent:
    """A code on its way: where to (masked), until when it works, when another may be asked for."""

    masked_destination: str
    """The address as a page may show it."""
    expires_at: datetime
    """When the code stops working."""
    resend_after: datetime
    """When another code may be asked for."""


def new_code() -> str:
    """Six random digits."""
    return f"{secrets.randbelow(1_000_000):06d}"


# ---- wording -------------------------------------------------------------------------------------------


def not_right(tries_left: int | None = None, *, sent_to: str = "", advice: str = "") -> str:
    """ "That code is not right[ for she*****com]. 4 tries left." (or "1 try", or `advice` instead)."""
    said = f"That code is not right{f' for {sent_to}' if sent_to else ''}."
    if tries_left is not None:
        return f"{said} {'1 try' if tries_left == 1 else f'{tries_left} tries'} left."
    return f"{said} {advice}" if advice else said


def wrong_code(tries_left: int, *, sent_to: str = "") -> ServiceError:
    """The refusal of a wrong code: a lock once no try is left, else how many are."""
    if tries_left <= 0:
        return ServiceError(Refusal.LOCKED, LOCKED, "code")
    return ServiceError(Refusal.INVALID, not_right(tries_left, sent_to=sent_to), "code")


def verification_refused(reason: str, tries_left: int) -> ServiceError:
    """The workflow's answer to a wrong verification code (its `VerifyResult`), worded."""
    if reason == "wrong":
        return ServiceError(Refusal.INVALID, not_right(tries_left), "code")
    kind = Refusal.LOCKED if reason == "locked" else Refusal.INVALID
    return ServiceError(kind, VERIFICATION_REFUSALS.get(reason, "That code did not work."), "code")


def refuse_during_cooldown(last_sent_at: datetime | None, cooldown: timedelta, now: datetime) -> None:
    """Refused while the code sent last is younger than the resend cooldown."""
    if last_sent_at is not None and now < last_sent_at + cooldown:
        wait = int((last_sent_at + cooldown - now).total_seconds()) + 1
        raise ServiceError(Refusal.THROTTLED, f"Please wait {wait} seconds before asking for a new code.")


# ---- codes kept as LoginCode rows ------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeBook:
    """One kind of `LoginCode` row, told apart by a prefix of `attempt_hash`: wrong tries, the lock and
    the cooldown are counted within a book."""

    prefix: str

    def _mine(self) -> ColumnElement[bool]:
        # The login book has no prefix: its rows are all those no other book claims.
        if self.prefix:
            return col(LoginCode.attempt_hash).startswith(self.prefix)
        return and_(*(~col(LoginCode.attempt_hash).startswith(prefix) for prefix in _PREFIXED_BOOKS))

    def wrong_tries(self, db: Session, account_id: int) -> int:
        """Wrong codes of the last hour, summed over the account's codes in this book."""
        since = utcnow() - WRONG_TRIES_WINDOW
        total = db.exec(
            select(func.coalesce(func.sum(LoginCode.wrong_tries), 0)).where(
                LoginCode.account_id == account_id, col(LoginCode.created_at) > since, self._mine()
            )
        ).one()
        return int(total)

    def issued_since(self, db: Session, account_id: int, since: datetime) -> int:
        """How many codes of this book the account was sent since `since`."""
        total = db.exec(
            select(func.count()).where(
                LoginCode.account_id == account_id, col(LoginCode.created_at) > since, self._mine()
            )
        ).one()
        return int(total)

    def latest(self, db: Session, account_id: int, binding: str | None = None) -> LoginCode | None:
        """The account's newest code in this book (of this `binding` when given)."""
        query = select(LoginCode).where(LoginCode.account_id == account_id, self._mine())
        if binding is not None:
            query = query.where(LoginCode.attempt_hash == binding)
        return db.exec(query.order_by(col(LoginCode.id).desc())).first()

    def holder(self, db: Session, binding: str) -> int | None:
        """The account whose newest code in this book is bound to `binding`, if any."""
        return db.exec(
            select(LoginCode.account_id)
            .where(LoginCode.attempt_hash == self.bound(binding), self._mine())
            .order_by(col(LoginCode.id).desc())
        ).first()

    def bound(self, binding: str) -> str:
        """What a code is bound to (a pending login, a session), as stored in `attempt_hash`."""
        return self.prefix + binding

    def issue(
        self,
        db: Session,
        resources: Resources,
        *,
        account_id: int,
        binding: str,
        channel: str,
        scope: str,
    ) -> tuple[LoginCode, str]:
        """A new code (the row, committed, and the digits to send): refused while the book is locked
        (423) or the last code is younger than the cooldown (429). The digest covers `scope`."""
        if self.wrong_tries(db, account_id) >= MAX_WRONG_TRIES:
            raise ServiceError(Refusal.LOCKED, LOCKED)
        now = utcnow()
        last = self.latest(db, account_id)
        refuse_during_cooldown(
            last.created_at if last else None, resources.settings.code_resend_cooldown, now
        )
        code = new_code()
        row = LoginCode(
            account_id=account_id,
            attempt_hash=self.bound(binding),
            channel=channel,
            code_digest=_digest(resources, scope, code),
            created_at=now,
            expires_at=now + CODE_LIFETIME,
        )
        db.add(row)
        db.commit()
        return row, code

    def check(
        self,
        db: Session,
        resources: Resources,
        *,
        account_id: int,
        binding: str,
        scope: str,
        code: str,
        on_wrong: Callable[[], None],
        channel: str | None = None,
        sent_to: str = "",
        before_use: Callable[[], None] | None = None,
    ) -> None:
        """Accepts the latest code bound to `binding` once. A wrong one counts (`on_wrong` audits it);
        the last of `MAX_WRONG_TRIES` locks the book. A `channel` must match the code's when given.
        `before_use` runs once the code is right, before it is used up: what it raises leaves the code
        unused (a new password refused by the rules is typed again with the same code)."""
        if self.wrong_tries(db, account_id) >= MAX_WRONG_TRIES:
            raise ServiceError(Refusal.LOCKED, LOCKED, "code")
        row = self.latest(db, account_id, self.bound(binding))
        if row is None or row.used_at is not None or (channel is not None and row.channel != channel):
            raise ServiceError(Refusal.INVALID, NO_CODE_YET, "code")
        if utcnow() > row.expires_at:
            raise ServiceError(Refusal.INVALID, CODE_EXPIRED, "code")
        if not secrets.compare_digest(row.code_digest, _digest(resources, scope, code)):
            # In SQL, so two wrong guesses at the same moment both count.
            db.exec(
                update(LoginCode)
                .where(col(LoginCode.id) == row.id)
                .values(wrong_tries=col(LoginCode.wrong_tries) + 1)
            )
            on_wrong()
            db.commit()
            raise wrong_code(MAX_WRONG_TRIES - self.wrong_tries(db, account_id), sent_to=sent_to)
        if before_use is not None:
            before_use()
        # Single use even when the same code arrives twice at once: only one update finds it unused.
        claimed = db.exec(
            update(LoginCode)
            .where(col(LoginCode.id) == row.id, col(LoginCode.used_at).is_(None))
            .values(used_at=utcnow())
        )
        db.commit()
        if claimed.rowcount != 1:
            raise ServiceError(Refusal.INVALID, ALREADY_USED, "code")


def _digest(resources: Resources, scope: str, code: str) -> str:
    return resources.cipher.digest(scope, code.strip())


LOGIN_CODES = CodeBook("")
"""A new browser's login codes (`new_device`), bound to the pending login."""
CHANGE_CODES = CodeBook(CHANGE_PREFIX)
"""Codes proving a new email address or phone number (`account_changes`), bound to the session."""
RESET_CODES = CodeBook(RESET_PREFIX)
"""Codes resetting a forgotten password (`password_reset`), bound to the browser that asked."""


# ---- sending -------------------------------------------------------------------------------------------


async def deliver(
    outbox: Outbox, key: str, engagement_id: int | None, purpose: str, message: OutgoingMessage
) -> str:
    """A code through the outbox (once per idempotency `key`), off the event loop; answers its status.
    A 503 when the provider cannot take it just now: the person asks again."""
    try:
        # The outbox is synchronous (SQL and a provider call): keep it off the event loop.
        sent = await run_in_threadpool(outbox.send, key, engagement_id, purpose, lambda _s: (message, None))
    except DeliveryError as exc:
        raise ServiceError(Refusal.UNAVAILABLE, NOT_SENT) from exc
    return sent.status


@dataclass(frozen=True)
class CodeMessage:
    key: str
    """The outbox idempotency key: one per `LoginCode` row, so a code goes out at most once."""
    engagement_id: int | None
    """The engagement the message is filed under (and whose firm it comes from), if any."""
    purpose: str
    message: OutgoingMessage


async def send_code(
    db: Session,
    outbox: Outbox,
    code: CodeMessage,
    action: str,
    actor: audit.Actor,
    detail: dict[str, str],
) -> None:
    """A taxpayer's code (a login's or a contact change's) through the outbox, then its audit entry.
    A 503 when the provider cannot take it just now: nothing is audited as sent.
    A 422 when the provider refuses the address for good: the person is not left waiting for a code."""
    sent = await deliver(outbox, code.key, code.engagement_id, code.purpose, code.message)
    if sent == "failed":  # the provider refused the address for good: no code is on its way
        refused = {**detail, "purpose": code.purpose}
        audit.record(db, action=CODE_REFUSED, actor=actor, engagement_id=code.engagement_id, detail=refused)
        db.commit()
        raise ServiceError(Refusal.INVALID, ADDRESS_REFUSED)
    audit.record(db, action=action, actor=actor, engagement_id=code.engagement_id, detail=detail)
    db.commit()
