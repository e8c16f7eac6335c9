"""Preparer login with a second factor: password, then a TOTP code (or a one-time recovery code).

The FTC Safeguards Rule (16 CFR 314.4(c)(5)) asks for MFA for anyone reaching customer information, so
the pages never open a session on a password alone: the first login enrols an authenticator app (QR
code + recovery codes), every later one asks for its code. The JSON API does the same: before the
preparer is enrolled, the password opens a *set-up session* good only for /api/preparer/mfa/enrol,
/api/preparer/mfa/confirm and logout (every other route answers 403); confirming replaces it with a full
session under a new id. Account security, not pipeline state: the API keeps it.

- a *pending login* is a server-side session row of its own kind, 10 minutes long, behind its own
  cookie; it proves the password and nothing more (`preparer-login`: a code is due; `preparer-enrol`:
  the authenticator must be set up first);
- TOTP codes are accepted once: the newest accepted time step is stored and a code for the same or an
  older step is refused (no replay inside the 90-second window);
- five wrong codes lock the second factor for 15 minutes. Each attempt is *claimed* (a conditional UPDATE
  of the count) before its code is compared, so parallel guesses can't all see "unlocked"; the step is
  also throttled per account and per IP (`core.throttle`) like the password step.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import pyotp
import qrcode
from fastapi import Request, Response
from sqlalchemy import case, literal, or_
from sqlmodel import Session, col, delete, select, update

from core import audit, sessions, throttle
from core.context import Resources
from core.models import Firm, Preparer, PreparerMfa, RecoveryCode, UTCDateTime, WebSession, utcnow
from core.passwords import verify_password
from services import Refusal, ServiceError, codes, cookies
from services.deps import PREPARER_SETUP_KIND, cookie_name, request_actor

CODE_KIND = "preparer-login"
ENROL_KIND = "preparer-enrol"
PENDING_COOKIE = "portico_preparer_login"
PENDING_LIFETIME = timedelta(minutes=10)
MAX_WRONG_CODES = 5
LOCK_FOR = timedelta(minutes=15)
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"

WRONG_CREDENTIALS = "Wrong email or password."
EXPIRED = "Your login timed out. Enter your email and password again."
LOCKED = "Too many wrong codes. Wait 15 minutes and try again."
CODE_THROTTLE = "preparer-login-code"


# ---- password ----------------------------------------------------------------------------------------


def check_password(db: Session, request: Request, email: str, password: str) -> Preparer:
    """The active preparer with this email and password; a failure is audited and says nothing more."""
    preparer = db.exec(select(Preparer).where(Preparer.email == email.strip().lower())).first()
    # Verify against a dummy hash when there is no such preparer, so timing doesn't reveal accounts.
    ok = verify_password(preparer.password_hash if preparer else _DUMMY_HASH, password)
    if ok and preparer and preparer.active:
        return preparer
    actor = request_actor(request, "preparer", str(preparer.id) if preparer else email.strip()[:254])
    firm_id = preparer.firm_id if preparer else None
    audit.record(db, action="preparer.login_failed", actor=actor, firm_id=firm_id)
    db.commit()
    raise ServiceError(Refusal.UNAUTHENTICATED, WRONG_CREDENTIALS)


def is_enrolled(db: Session, preparer_id: int) -> bool:
    mfa = db.get(PreparerMfa, preparer_id)
    return mfa is not None and mfa.enrolled_at is not None


# ---- pending logins ----------------------------------------------------------------------------------


def start_pending(
    db: Session, request: Request, response: Response, resources: Resources, preparer: Preparer, kind: str
) -> None:
    actor = request_actor(request, "preparer", str(preparer.id))
    token = sessions.start(db, kind, preparer.id or 0, actor.ip, actor.user_agent)
    cookies.put(response, resources, PENDING_COOKIE, token, max_age=PENDING_LIFETIME)


def pending(db: Session, request: Request, resources: Resources, kind: str) -> Preparer:
    """The preparer whose password was right in this browser a moment ago (for this step)."""
    token = cookies.read(request, resources, PENDING_COOKIE)
    row = sessions.resolve(db, token, kind, PENDING_LIFETIME, PENDING_LIFETIME) if token else None
    preparer = db.get(Preparer, row.subject_id) if row else None
    if preparer is None or not preparer.active:
        raise ServiceError(Refusal.UNAUTHENTICATED, EXPIRED)
    return preparer


def end_pending(db: Session, request: Request, response: Response, resources: Resources) -> None:
    token = cookies.read(request, resources, PENDING_COOKIE)
    if token:
        sessions.end(db, token)
    cookies.drop(response, resources, PENDING_COOKIE)


# ---- sessions ----------------------------------------------------------------------------------------


def start_session(
    db: Session, request: Request, response: Response, resources: Resources, preparer: Preparer, method: str
) -> None:
    """A full session: the password and `method` ("totp" or "recovery_code") were checked."""
    _open_session(db, request, response, resources, preparer, "preparer", {"authentication": method})


def start_setup_session(
    db: Session, request: Request, response: Response, resources: Resources, preparer: Preparer
) -> None:
    """The JSON API's session for a right password before two-step login is set up: it reaches the
    enrolment endpoints and logout only (see `services.deps.current_preparer`)."""
    detail = {"authentication": "password", "access": "two-step login set-up only"}
    _open_session(db, request, response, resources, preparer, PREPARER_SETUP_KIND, detail)


def _open_session(
    db: Session,
    request: Request,
    response: Response,
    resources: Resources,
    preparer: Preparer,
    kind: str,
    detail: dict[str, str],
) -> None:
    actor = request_actor(request, "preparer", str(preparer.id))
    token = sessions.start(db, kind, preparer.id or 0, actor.ip, actor.user_agent)
    audit.record(db, action="preparer.login", actor=actor, firm_id=preparer.firm_id, detail=detail)
    db.commit()
    response.set_cookie(
        cookie_name(resources),
        token,
        httponly=True,
        samesite="lax",
        path="/",
        secure=not resources.settings.is_development,
    )


def end_all_sessions(db: Session, preparer_id: int) -> None:
    """Every session of this preparer, set-up-only ones included (deactivation, enrolment)."""
    sessions.end_all(db, "preparer", preparer_id)
    sessions.end_all(db, PREPARER_SETUP_KIND, preparer_id)


def end_session(db: Session, request: Request, response: Response, resources: Resources) -> None:
    token = request.cookies.get(cookie_name(resources))
    row = db.get(WebSession, hashlib.sha256(token.encode()).hexdigest()) if token else None  # as sessions
    if token:
        sessions.end(db, token)
    if row is not None and row.kind in ("preparer", PREPARER_SETUP_KIND):
        preparer = db.get(Preparer, row.subject_id)
        actor = request_actor(request, "preparer", str(row.subject_id))
        audit.record(
            db, action="preparer.logout", actor=actor, firm_id=preparer.firm_id if preparer else None
        )
        db.commit()
    response.delete_cookie(cookie_name(resources), path="/")


# ---- enrolment ---------------------------------------------------------------------------------------


def enrolment_secret(db: Session, resources: Resources, preparer: Preparer) -> str:
    """The secret being enrolled: the same one until enrolment succeeds, so a reload shows the same QR."""
    mfa = db.get(PreparerMfa, preparer.id)
    if mfa is not None and mfa.enrolled_at is not None:
        raise ServiceError(Refusal.CONFLICT, "Two-step login is already set up.")
    if mfa is None:
        secret = pyotp.random_base32()  # 160 bits
        mfa = PreparerMfa(
            preparer_id=preparer.id or 0, secret_encrypted=resources.cipher.encrypt_text(secret, "totp")
        )
        db.add(mfa)
        db.commit()
        return secret
    return resources.cipher.decrypt_text(mfa.secret_encrypted, "totp")


def provisioning_uri(db: Session, secret: str, preparer: Preparer) -> str:
    firm = db.get(Firm, preparer.firm_id)
    issuer = f"Portico ({firm.name})" if firm else "Portico"
    return pyotp.TOTP(secret).provisioning_uri(name=preparer.email, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The QR code as inline SVG markup (no inline style, so the page's CSP holds)."""
    qr = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(uri)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    size = len(matrix)
    runs = []  # one rectangle per run of dark cells in a row: no hairline seams between cells
    for y, line in enumerate(matrix):
        x = 0
        while x < size:
            if line[x]:
                start = x
                while x < size and line[x]:
                    x += 1
                runs.append(f"M{start},{y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    path = "".join(runs)
    return (
        f'<svg class="qr" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" '
        f'shape-rendering="crispEdges" role="img" aria-label="QR code for your authenticator app">'
        f'<rect width="{size}" height="{size}" fill="#fff"/><path d="{path}" fill="#000"/></svg>'
    )


def grouped(secret: str) -> str:
    """`ABCD EFGH …`: easier to type into an authenticator by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def confirm_enrolment(
    db: Session, request: Request, resources: Resources, preparer: Preparer, code: str
) -> list[str]:
    """Checks the first code from the app, turns MFA on and returns fresh recovery codes (shown once).
    Every session of the preparer ends (the set-up one too): from now on every session has both factors."""
    mfa = db.get(PreparerMfa, preparer.id)
    if mfa is None or mfa.enrolled_at is not None:
        raise ServiceError(Refusal.CONFLICT, "Start the set-up again.")
    digits = _six_digits(code)
    secret = resources.cipher.decrypt_text(mfa.secret_encrypted, "totp")
    step = _matching_step(secret, digits, utcnow()) if digits else None
    if step is None:
        raise ServiceError(
            Refusal.INVALID,
            "That code does not match. Check the time on your phone and enter the newest code.",
            "code",
        )
    mfa.enrolled_at, mfa.last_used_step, mfa.failed_attempts = utcnow(), step, 0
    db.add(mfa)
    end_all_sessions(db, preparer.id or 0)
    codes = _replace_recovery_codes(db, resources, preparer)
    actor = request_actor(request, "preparer", str(preparer.id))
    audit.record(db, action="preparer.mfa_enrolled", actor=actor, firm_id=preparer.firm_id)
    db.commit()
    return codes


def new_recovery_codes(db: Session, request: Request, resources: Resources, preparer: Preparer) -> list[str]:
    codes = _replace_recovery_codes(db, resources, preparer)
    actor = request_actor(request, "preparer", str(preparer.id))
    audit.record(db, action="preparer.recovery_codes_replaced", actor=actor, firm_id=preparer.firm_id)
    db.commit()
    return codes


def _replace_recovery_codes(db: Session, resources: Resources, preparer: Preparer) -> list[str]:
    db.exec(delete(RecoveryCode).where(col(RecoveryCode.preparer_id) == preparer.id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))  # ~49 bits each
        codes.append(f"{raw[:5]}-{raw[5:]}")
        db.add(
            RecoveryCode(preparer_id=preparer.id or 0, code_digest=_recovery_digest(resources, preparer, raw))
        )
    return codes


def recovery_codes_left(db: Session, preparer_id: int) -> int:
    rows = db.exec(
        select(RecoveryCode.id).where(
            RecoveryCode.preparer_id == preparer_id, col(RecoveryCode.used_at).is_(None)
        )
    ).all()
    return len(rows)


def reset_mfa(db: Session, request: Request, by: Preparer, preparer: Preparer) -> None:
    """A colleague lost their phone and their recovery codes: they enrol again at their next login."""
    db.exec(delete(RecoveryCode).where(col(RecoveryCode.preparer_id) == preparer.id))
    db.exec(delete(PreparerMfa).where(col(PreparerMfa.preparer_id) == preparer.id))
    end_all_sessions(db, preparer.id or 0)
    actor = request_actor(request, "preparer", str(by.id))
    audit.record(
        db, action="preparer.mfa_reset", actor=actor, firm_id=by.firm_id, detail={"preparer": preparer.id}
    )
    db.commit()


# ---- the second factor at login ------------------------------------------------------------------------


def check_second_factor(
    db: Session, request: Request, resources: Resources, preparer: Preparer, code: str
) -> str:
    """Accepts a current TOTP code (once) or an unused recovery code; returns which one it was."""
    mfa = db.get(PreparerMfa, preparer.id)
    if mfa is None or mfa.enrolled_at is None:
        raise ServiceError(Refusal.CONFLICT, "Set up two-step login first.")
    keys = _count_code_attempt(db, request, resources, preparer)
    now = utcnow()
    claimed = _claim_attempt(db, preparer.id or 0, now)
    actor = request_actor(request, "preparer", str(preparer.id))
    method = _judge(db, resources, preparer, actor, code, now)
    if method is not None:
        for scope, key, _rule in keys:
            is_ip = scope.endswith(":ip")
            throttle.succeeded(resources.engine, scope, key, forget=not is_ip)
        return method
    audit.record(db, action="preparer.mfa_failed", actor=actor, firm_id=preparer.firm_id)
    db.commit()
    if claimed >= MAX_WRONG_CODES:  # this was the last try before the lock
        raise ServiceError(Refusal.LOCKED, LOCKED, "code")
    advice = "Enter the 6-digit code from your authenticator app, or a recovery code."
    raise ServiceError(Refusal.INVALID, codes.not_right(advice=advice), "code")


def _judge(
    db: Session, resources: Resources, preparer: Preparer, actor: audit.Actor, code: str, now: datetime
) -> str | None:
    """Compares the (already claimed) attempt: "totp" or "recovery_code" when right, None when wrong."""
    mfa = db.get(PreparerMfa, preparer.id)
    assert mfa is not None
    digits = _six_digits(code)
    if digits is not None:
        secret = resources.cipher.decrypt_text(mfa.secret_encrypted, "totp")
        step = _matching_step(secret, digits, now)
        if step is not None:
            # In SQL, so the same code sent twice at once is accepted once.
            claimed = db.exec(
                update(PreparerMfa)
                .where(col(PreparerMfa.preparer_id) == preparer.id, col(PreparerMfa.last_used_step) < step)
                .values(last_used_step=step, failed_attempts=0, locked_until=None)
            )
            db.commit()
            if claimed.rowcount == 1:
                return "totp"
            raise ServiceError(
                Refusal.INVALID,
                "That code was already used. Wait for the next one in your app.",
                "code",
            )
    elif _recovery_normalised(code) is not None and _use_recovery_code(db, resources, preparer, code):
        db.exec(
            update(PreparerMfa)
            .where(col(PreparerMfa.preparer_id) == preparer.id)
            .values(failed_attempts=0, locked_until=None)
        )
        audit.record(db, action="preparer.recovery_code_used", actor=actor, firm_id=preparer.firm_id)
        db.commit()
        return "recovery_code"
    return None


def _count_code_attempt(
    db: Session, request: Request, resources: Resources, preparer: Preparer
) -> list[tuple[str, str, throttle.Rule]]:
    """Counts this code attempt per IP and per account (as the password step is), or refuses it while
    either must wait. The lock below is stricter per account; the IP's count stops one address from
    working through many accounts."""
    ip = request.client.host if request.client else "unknown"
    keys = [
        (f"{CODE_THROTTLE}:ip", ip, throttle.IP),
        (f"{CODE_THROTTLE}:account", str(preparer.id), throttle.LOCKED_BY_WORKFLOW),
    ]
    for scope, key, rule in keys:
        try:
            count = throttle.attempt(resources.engine, scope, key, rule)
        except throttle.Throttled as exc:
            raise ServiceError(Refusal.THROTTLED, exc.message, "code", retry_after=exc.retry_after) from exc
        if rule.delay(count) > 0 and rule.delay(count - 1) == 0:
            actor = request_actor(request, "anonymous", scope.rsplit(":", 1)[-1])
            detail = {"action": CODE_THROTTLE, "scope": scope}
            audit.record(db, action="throttle.lockout", actor=actor, detail=detail)
            db.commit()
    return keys


def _claim_attempt(db: Session, preparer_id: int, now: datetime) -> int:
    """Takes one of the `MAX_WRONG_CODES` tries in SQL before the code is compared, so parallel guesses
    can't all read "unlocked" (check-then-act): the claim that takes the last try sets the lock, a right
    code gives every try back. Answers how many tries are taken, this one included; refuses when locked."""
    for _ in range(2):
        taken = col(PreparerMfa.failed_attempts) + 1
        claimed = db.exec(
            update(PreparerMfa)
            .where(
                col(PreparerMfa.preparer_id) == preparer_id,
                col(PreparerMfa.failed_attempts) < MAX_WRONG_CODES,
                or_(col(PreparerMfa.locked_until).is_(None), col(PreparerMfa.locked_until) <= now),
            )
            .values(
                failed_attempts=taken,
                locked_until=case(
                    (taken >= MAX_WRONG_CODES, literal(now + LOCK_FOR, UTCDateTime())), else_=None
                ),
            )
        )
        db.commit()
        if claimed.rowcount == 1:
            mfa = db.get(PreparerMfa, preparer_id)
            if mfa is not None:
                db.refresh(mfa)
            return mfa.failed_attempts if mfa is not None else MAX_WRONG_CODES
        # Every try is taken: a lock that has run out starts afresh (once, however many ask at once).
        db.exec(
            update(PreparerMfa)
            .where(
                col(PreparerMfa.preparer_id) == preparer_id,
                col(PreparerMfa.failed_attempts) >= MAX_WRONG_CODES,
                col(PreparerMfa.locked_until).is_not(None),
                col(PreparerMfa.locked_until) <= now,
            )
            .values(failed_attempts=0, locked_until=None)
        )
        db.commit()
    raise ServiceError(Refusal.LOCKED, LOCKED, "code")


def _use_recovery_code(db: Session, resources: Resources, preparer: Preparer, code: str) -> bool:
    normalised = _recovery_normalised(code) or ""
    digest = _recovery_digest(resources, preparer, normalised)
    claimed = db.exec(
        update(RecoveryCode)
        .where(
            col(RecoveryCode.preparer_id) == preparer.id,
            col(RecoveryCode.code_digest) == digest,
            col(RecoveryCode.used_at).is_(None),
        )
        .values(used_at=utcnow())
    )
    return claimed.rowcount == 1


def _recovery_normalised(code: str) -> str | None:
    raw = "".join(c for c in code.lower() if c.isalnum())
    return raw if len(raw) == 10 and all(c in _RECOVERY_ALPHABET for c in raw) else None


def _recovery_digest(resources: Resources, preparer: Preparer, raw: str) -> str:
    return resources.cipher.digest(f"recovery-code:{preparer.id}", raw)


def _six_digits(code: str) -> str | None:
    digits = "".join(c for c in code if c in "0123456789")  # str.isdigit() also takes other scripts
    stripped = "".join(c for c in code if not c.isspace() and c != "-")
    return digits if len(digits) == 6 and len(stripped) == 6 else None


def _matching_step(secret: str, digits: str | None, now: datetime) -> int | None:
    """The time step whose code this is: this one or its neighbours (clocks drift by ±30 s)."""
    if digits is None:
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), digits):
            return step
    return None
