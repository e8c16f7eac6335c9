"""A signed-in preparer changes their own password or login email (NIST SP 800-63B, FTC Safeguards Rule).

- Every change asks for the current password *and* a current authenticator code (or a recovery code): a
  workspace left open on a desk changes nothing. Wrong answers are counted by the login throttle
  (`preparer-login`: the same per-account and per-IP counts as the login page and /api/preparer/login),
  the second factor keeps its own five-strikes lock as at login, and every refusal is audited.
- A new password follows the registration rules, is hashed with argon2id off the event loop, and ends every
  other session of the preparer (set-up sessions and pending logins too); this browser gets a new session id.
- A new login email replaces the old one only once a one-time code sent to it comes back, in the same
  session. The pending change is a session row of its own kind (`preparer-email-change`, 10 minutes) whose
  id is the keyed digest of the code, the new address and the session that asked: no pending address is
  stored, the code proves exactly the address it was sent to, and deleting the row is what uses it (once).
  Wrong codes are counted by the same throttle.
- Afterwards a notice goes to the old address (for a password, to the preparer's email) through the outbox,
  like every message Portico sends outside the workflow.
"""

from __future__ import annotations

import re
import uuid

from fastapi import Request, Response
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select
from starlette.concurrency import run_in_threadpool

from core import audit, sessions
from core.context import Resources
from core.identity import InvalidContact, mask_email, normalise_email
from core.models import Firm, Preparer, WebSession, utcnow
from core.passwords import hash_password
from messaging.delivery import OutgoingMessage
from messaging.outbox import Outbox
from services import Refusal, ServiceError, change_checks, codes, cookies, throttling
from services import preparer_auth as auth
from services.codes import CODE_LIFETIME
from services.deps import PREPARER_SETUP_KIND, request_actor
from services.preparer_settings import contact_problem
from services.throttled_step import throttled_step

PENDING_EMAIL_KIND = "preparer-email-change"
WRONG_PASSWORD = change_checks.WRONG_PASSWORD
EMAIL_TAKEN = "Another preparer already logs in with this email address. Choose a different one."


async def _signed_in_email(request: Request, resources: Resources) -> str | None:
    email = getattr(request.state, "throttle_preparer_email", None)
    return email.strip().lower()[:320] if isinstance(email, str) else None  # as the login reads it


# Action "preparer-login": an answer typed here is counted exactly like one typed on the login form.
ANSWER_CHECK = throttling.guard("preparer-login", _signed_in_email)


def _actor(request: Request, preparer: Preparer) -> audit.Actor:
    return request_actor(request, "preparer", str(preparer.id))


def _refused(db: Session, request: Request, preparer: Preparer, what: str, reason: str) -> None:
    actor = _actor(request, preparer)
    change_checks.record_refusal(
        db, audit.PREPARER_CHANGE_REFUSED, actor, what, reason, firm_id=preparer.firm_id
    )


async def confirm_identity(
    db: Session,
    request: Request,
    resources: Resources,
    preparer: Preparer,
    password: str,
    code: str,
    what: str,
) -> str:
    """The current password and a second factor, asked again before a change; throttled and audited like
    a login. Answers how the second factor was given ("totp" or "recovery_code")."""
    request.state.throttle_preparer_email = preparer.email
    async with throttled_step(request, ANSWER_CHECK) as step:
        # The password first: a wrong one must not use up the authenticator's code (or a recovery code).
        await change_checks.check_current_password(
            step,
            preparer.password_hash,
            password,
            lambda reason: _refused(db, request, preparer, what, reason),
        )
        try:
            return await run_in_threadpool(auth.check_second_factor, db, request, resources, preparer, code)
        except ServiceError as exc:
            step.refuse()
            reason = "second factor locked" if exc.kind is Refusal.LOCKED else "wrong code"
            _refused(db, request, preparer, what, reason)
            raise


# ---- password ----------------------------------------------------------------------------------------


async def change_password(
    db: Session,
    resources: Resources,
    request: Request,
    response: Response,
    outbox: Outbox,
    preparer: Preparer,
    current: str,
    code: str,
    new: str,
) -> None:
    """Re-hash, end every other session (and pending login) of the preparer, rotate this one, notify."""
    # The new password's rules first: a refusal there must not use up the authenticator's code.
    change_checks.check_new_password(
        new, current, (preparer.email,), lambda reason: _refused(db, request, preparer, "password", reason)
    )
    method = await confirm_identity(db, request, resources, preparer, current, code, "password")
    preparer.password_hash = await run_in_threadpool(hash_password, new)
    db.add(preparer)
    ended = _end_every_session(db, preparer.id or 0)
    actor = _actor(request, preparer)
    token = sessions.start(db, "preparer", preparer.id or 0, actor.ip, actor.user_agent)
    cookies.put(response, resources, cookies.SESSION, token)
    audit.record(
        db,
        action=audit.PREPARER_PASSWORD_CHANGED,
        actor=actor,
        firm_id=preparer.firm_id,
        detail={"authentication": f"password+{method}", "other_sessions_ended": max(ended - 1, 0)},
    )
    db.commit()
    await _notify(db, request, outbox, preparer, "preparer_password_changed", preparer.email, "password")


def _end_every_session(db: Session, preparer_id: int) -> int:
    """Full and set-up sessions, logins waiting for their code (they proved the old password) and email
    changes waiting for theirs; answers how many full sessions ended (this browser's included)."""
    ended = sessions.end_all(db, "preparer", preparer_id)
    sessions.end_all(db, PREPARER_SETUP_KIND, preparer_id)
    kinds = (auth.CODE_KIND, auth.ENROL_KIND, PENDING_EMAIL_KIND)
    db.exec(
        delete(WebSession).where(col(WebSession.kind).in_(kinds), col(WebSession.subject_id) == preparer_id)
    )
    db.commit()
    return ended


# ---- login email -------------------------------------------------------------------------------------


def normalised_email(value: str) -> str:
    """The new address as Portico stores it; a clear 422 when it is not one."""
    try:
        return normalise_email(value)
    except InvalidContact as exc:
        raise ServiceError(
            Refusal.INVALID,
            "Enter an email address, like name@example.com.",
            "new_email",
        ) from exc


def masked_or_blank(value: str) -> str:
    """The new address masked for a page, or "" when it isn't one."""
    try:
        return mask_email(normalised_email(value))
    except ServiceError:
        return ""


def _taken(db: Session, preparer: Preparer, email: str) -> bool:
    other = db.exec(select(Preparer.id).where(Preparer.email == email, Preparer.id != preparer.id)).first()
    return other is not None


def _pending(db: Session, preparer_id: int) -> WebSession | None:
    query = select(WebSession).where(
        WebSession.kind == PENDING_EMAIL_KIND, WebSession.subject_id == preparer_id
    )
    return db.exec(query.order_by(col(WebSession.created_at).desc())).first()


def change_pending(db: Session, preparer_id: int) -> bool:
    """An email change waits for its code (one that has not expired)."""
    row = _pending(db, preparer_id)
    return row is not None and utcnow() <= row.created_at + CODE_LIFETIME


def _code_digest(request: Request, resources: Resources, preparer_id: int, email: str, code: str) -> str:
    """The pending change's id: binds the code to this session, this preparer and the new address."""
    session_id = change_checks.session_id(request, resources)
    return resources.cipher.digest(f"preparer-email-change:{preparer_id}:{session_id}:{email}", code)


def _pending_change(db: Session, preparer_id: int, digest: str, actor: audit.Actor) -> WebSession:
    """The change waiting for its code; one at a time: a new code replaces the one before."""
    db.exec(
        delete(WebSession).where(
            col(WebSession.kind) == PENDING_EMAIL_KIND, col(WebSession.subject_id) == preparer_id
        )
    )
    now = utcnow()
    row = WebSession(
        id_hash=digest,
        kind=PENDING_EMAIL_KIND,
        subject_id=preparer_id,
        created_at=now,
        last_seen_at=now,
        ip=actor.ip,
        user_agent=actor.user_agent,
    )
    db.add(row)
    db.commit()
    return row


async def send_email_code(
    db: Session,
    resources: Resources,
    request: Request,
    outbox: Outbox,
    preparer: Preparer,
    new_email: str,
    current_password: str,
    code: str,
) -> codes.CodeSent:
    """Checks both factors and sends a one-time code to the new address (which changes nothing yet)."""
    new = normalised_email(new_email)
    if new == preparer.email:
        raise ServiceError(Refusal.INVALID, "That is already your login email.", "new_email")
    preparer_id = preparer.id or 0
    now = utcnow()
    cooldown = resources.settings.code_resend_cooldown
    last = _pending(db, preparer_id)
    # Before the factors: a refusal here must not use up the authenticator's code.
    codes.refuse_during_cooldown(last.created_at if last else None, cooldown, now)
    method = await confirm_identity(db, request, resources, preparer, current_password, code, "email")
    # Only after both factors: whether an address belongs to a preparer is not for a stolen session to probe.
    if _taken(db, preparer, new):
        _refused(db, request, preparer, "email", "taken")
        raise ServiceError(Refusal.CONFLICT, EMAIL_TAKEN, "new_email")
    digits = codes.new_code()
    actor = _actor(request, preparer)
    row = _pending_change(db, preparer_id, _code_digest(request, resources, preparer_id, new, digits), actor)
    message = _code_message(db, preparer, new, digits)
    try:
        await codes.deliver(
            outbox, f"preparer-email-code:{uuid.uuid4().hex}", None, "preparer_email_code", message
        )
    except ServiceError:  # not sent: no code waits for an answer
        db.delete(row)
        db.commit()
        raise
    audit.record(
        db,
        action=audit.PREPARER_EMAIL_CODE_SENT,
        actor=actor,
        firm_id=preparer.firm_id,
        detail={"to": mask_email(new), "authentication": f"password+{method}"},
    )
    db.commit()
    return codes.CodeSent(mask_email(new), now + CODE_LIFETIME, now + cooldown)


def _six_digits(code: str) -> str:
    digits = re.sub(r"[\s-]", "", code)
    if not re.fullmatch(r"[0-9]{6}", digits):
        raise ServiceError(Refusal.INVALID, "Enter the 6-digit code from the email.", "email_code")
    return digits


async def confirm_email(
    db: Session,
    resources: Resources,
    request: Request,
    outbox: Outbox,
    preparer: Preparer,
    new_email: str,
    code: str,
) -> str:
    """The code sent to the new address: when right, it becomes the login email. Answers it."""
    new = normalised_email(new_email)
    digits = _six_digits(code)
    preparer_id = preparer.id or 0
    pending = _pending(db, preparer_id)
    if pending is None:
        raise ServiceError(Refusal.INVALID, codes.NO_CODE_YET, "email_code")
    now = utcnow()
    if now > pending.created_at + CODE_LIFETIME:
        db.delete(pending)
        db.commit()
        raise ServiceError(Refusal.INVALID, codes.CODE_EXPIRED, "email_code")
    request.state.throttle_preparer_email = preparer.email
    async with throttled_step(request, ANSWER_CHECK) as step:
        if step.refusal is not None:
            _refused(db, request, preparer, "email", "throttled")
            raise step.refusal
        # Single use even when the same code arrives twice at once: only one delete finds the row.
        claimed = db.exec(
            delete(WebSession).where(
                col(WebSession.id_hash) == _code_digest(request, resources, preparer_id, new, digits),
                col(WebSession.kind) == PENDING_EMAIL_KIND,
                col(WebSession.subject_id) == preparer_id,
                col(WebSession.created_at) > now - CODE_LIFETIME,
            )
        )
        db.commit()
        if claimed.rowcount != 1:
            step.refuse()
            _refused(db, request, preparer, "email", "wrong code")
            advice = "Check the newest email, or ask for a new code."
            wrong = codes.not_right(sent_to=mask_email(new), advice=advice)
            raise ServiceError(Refusal.INVALID, wrong, "email_code")
    return await _replace_email(db, request, outbox, preparer, new)


async def _replace_email(db: Session, request: Request, outbox: Outbox, preparer: Preparer, new: str) -> str:
    old = preparer.email
    if _taken(db, preparer, new):  # taken while the code was on its way
        _refused(db, request, preparer, "email", "taken")
        raise ServiceError(Refusal.CONFLICT, EMAIL_TAKEN, "new_email")
    preparer.email = new
    db.add(preparer)
    audit.record(
        db,
        action=audit.PREPARER_EMAIL_CHANGED,
        actor=_actor(request, preparer),
        firm_id=preparer.firm_id,
        detail={"from": old, "to": new},
    )
    try:
        db.commit()
    except IntegrityError as exc:  # the unique index: another preparer took it at this very moment
        db.rollback()
        db.refresh(preparer)
        _refused(db, request, preparer, "email", "taken")
        raise ServiceError(Refusal.CONFLICT, EMAIL_TAKEN, "new_email") from exc
    now_is = f" It is now {mask_email(new)}."
    await _notify(db, request, outbox, preparer, "preparer_email_changed", old, "login email", now_is)
    return new


# ---- messages ----------------------------------------------------------------------------------------


def _firm_name(db: Session, preparer: Preparer) -> str:
    firm = db.get(Firm, preparer.firm_id)
    return firm.name if firm else "your firm"


def _code_message(db: Session, preparer: Preparer, to: str, code: str) -> OutgoingMessage:
    minutes = int(CODE_LIFETIME.total_seconds() // 60)
    firm = _firm_name(db, preparer)
    return OutgoingMessage(
        "email",
        to,
        "Confirm your new Portico login email",
        f"Hello {preparer.name},\n\nYou asked to log in to the Portico workspace of {firm} with this "
        f"address.\n\nYour Portico confirmation code is {code}. It expires in {minutes} minutes.\n\n"
        "If you did not ask for it, you can ignore this message: nothing changes without the code.\n",
    )


async def _notify(
    db: Session,
    request: Request,
    outbox: Outbox,
    preparer: Preparer,
    purpose: str,
    to: str,
    what: str,
    more: str = "",
) -> None:
    """ "Your … was changed; if this wasn't you, tell an administrator". The change is done whatever
    happens here: a notice that cannot go out is recorded, not retried by the person."""
    firm = _firm_name(db, preparer)
    message = OutgoingMessage(
        "email",
        to,
        f"Your Portico {what} was changed",
        f"Hello {preparer.name},\n\nThe {what} of your Portico workspace account at {firm} was just "
        f"changed.{more}\n\nIf this wasn't you, tell an administrator of your firm right away: they can "
        "deactivate the account and reset its two-step login.\n",
    )
    key = f"preparer-notice:{uuid.uuid4().hex}"
    outcome = await change_checks.send_notice(outbox, key, None, purpose, message)
    audit.record(
        db,
        action=audit.PREPARER_CHANGE_NOTICE,
        actor=_actor(request, preparer),
        firm_id=preparer.firm_id,
        detail={"purpose": purpose, "to": mask_email(to), "status": outcome},
    )
    db.commit()


# ---- the phone number clients see -------------------------------------------------------------------


def change_phone(db: Session, request: Request, preparer: Preparer, phone: str) -> None:
    """The phone shown to this preparer's clients in the portal's firm contact (empty: none shown). Not a
    login factor, so no second factor: checked, saved and audited."""
    value = phone.strip()
    problem = contact_problem("phone", value)
    if problem is not None:
        raise ServiceError(Refusal.INVALID, problem.replace("Office phone", "Phone"), "phone")
    preparer.phone = value or None
    db.add(preparer)
    audit.record(
        db, action="preparer.phone_changed", actor=_actor(request, preparer), firm_id=preparer.firm_id
    )
    db.commit()
