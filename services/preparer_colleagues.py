"""A firm's preparers: who they are, inviting colleagues (and joining from an invitation), deactivating
them, resetting their two-step login, and who is an administrator. Only administrators change any of it
(`preparer_settings.require_admin`), and a firm always keeps at least one active administrator."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request
from sqlmodel import Session, col, func, select
from starlette.concurrency import run_in_threadpool

from core import audit
from core.context import Resources
from core.identity import InvalidContact, normalise_email
from core.models import Firm, Preparer, PreparerInvite, PreparerMfa, utcnow
from core.passwords import hash_password, password_problems
from messaging.delivery import DeliveryError, OutgoingMessage
from messaging.outbox import Outbox
from services import Refusal, ServiceError
from services.deps import request_actor
from services.preparer_auth import end_all_sessions, reset_mfa
from services.preparer_settings import actor_of, require_admin

INVITE_LIFETIME = timedelta(days=7)
LAST_ADMIN = (
    "Your firm needs at least one administrator: make a colleague an administrator first, then try again."
)


@dataclass
class Colleague:
    preparer: Preparer
    enrolled: bool


def colleagues(db: Session, firm_id: int) -> list[Colleague]:
    people = db.exec(select(Preparer).where(Preparer.firm_id == firm_id).order_by(col(Preparer.name))).all()
    ids = [p.id for p in people]
    enrolled = {
        m.preparer_id
        for m in db.exec(select(PreparerMfa).where(col(PreparerMfa.preparer_id).in_(ids)))
        if m.enrolled_at is not None
    }
    return [Colleague(p, p.id in enrolled) for p in people]


def colleague_of(db: Session, preparer: Preparer, colleague_id: int) -> Preparer:
    other = db.exec(
        select(Preparer).where(Preparer.id == colleague_id, Preparer.firm_id == preparer.firm_id)
    ).first()
    if other is None:
        raise ServiceError(Refusal.NOT_FOUND, "No such preparer.")
    return other


def pending_invites(db: Session, firm_id: int) -> list[PreparerInvite]:
    return list(
        db.exec(
            select(PreparerInvite)
            .where(
                PreparerInvite.firm_id == firm_id,
                col(PreparerInvite.accepted_at).is_(None),
                col(PreparerInvite.expires_at) > utcnow(),
            )
            .order_by(col(PreparerInvite.id).desc())
        ).all()
    )


def administrators(db: Session, firm_id: int) -> list[Preparer]:
    """The firm's active administrators, by name."""
    return list(
        db.exec(
            select(Preparer)
            .where(Preparer.firm_id == firm_id, col(Preparer.is_admin), col(Preparer.active))
            .order_by(col(Preparer.name))
        ).all()
    )


def _lock_firm(db: Session, firm_id: int) -> None:
    """Serialises changes to a firm's administrators, so two of them can't each remove the other at once.
    PostgreSQL locks the firm's row; SQLite ignores FOR UPDATE but lets one writer in at a time, and
    `_still_has_admin` counts after this transaction's own write."""
    db.exec(select(Firm.id).where(Firm.id == firm_id).with_for_update()).first()


def _still_has_admin(db: Session, firm_id: int) -> None:
    """Call after flushing a change: refuses (409) when it left the firm without an active administrator."""
    db.flush()
    count = db.exec(
        select(func.count())
        .select_from(Preparer)
        .where(Preparer.firm_id == firm_id, col(Preparer.is_admin), col(Preparer.active))
    ).one()
    if count == 0:
        db.rollback()
        raise ServiceError(Refusal.CONFLICT, LAST_ADMIN)


def set_active(db: Session, request: Request, by: Preparer, colleague_id: int, active: bool) -> Preparer:
    """Deactivating ends every session at once; their engagements stay with the firm."""
    require_admin(by)
    other = colleague_of(db, by, colleague_id)
    if other.id == by.id and not active:
        raise ServiceError(Refusal.CONFLICT, "You can't deactivate yourself.")
    _lock_firm(db, by.firm_id)
    other.active = active
    db.add(other)
    _still_has_admin(db, by.firm_id)
    if not active:
        end_all_sessions(db, other.id or 0)
    audit.record(
        db,
        action="preparer.activated" if active else "preparer.deactivated",
        actor=actor_of(request, by),
        firm_id=by.firm_id,
        detail={"preparer": other.id, "email": other.email},
    )
    db.commit()
    return other


def set_admin(db: Session, request: Request, by: Preparer, colleague_id: int, admin: bool) -> Preparer:
    """Makes a colleague (or oneself) an administrator or not; the firm's last one can't stop being one."""
    require_admin(by)
    other = colleague_of(db, by, colleague_id)
    if other.is_admin == admin:
        return other
    _lock_firm(db, by.firm_id)
    other.is_admin = admin
    db.add(other)
    _still_has_admin(db, by.firm_id)
    audit.record(
        db,
        action="preparer.admin_granted" if admin else "preparer.admin_revoked",
        actor=actor_of(request, by),
        firm_id=by.firm_id,
        detail={"preparer": other.id, "email": other.email},
    )
    db.commit()
    return other


def reset_colleague_mfa(db: Session, request: Request, by: Preparer, colleague_id: int) -> Preparer:
    """A colleague lost their phone and their recovery codes: they set two-step login up again."""
    require_admin(by)
    other = colleague_of(db, by, colleague_id)
    if other.id == by.id:
        raise ServiceError(
            Refusal.CONFLICT,
            "Replace your own recovery codes instead; ask another administrator to reset yours.",
        )
    reset_mfa(db, request, by, other)
    return other


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def invite_colleague(
    db: Session, request: Request, resources: Resources, outbox: Outbox, by: Preparer, name: str, email: str
) -> tuple[PreparerInvite, dict[str, str]]:
    require_admin(by)
    errors: dict[str, str] = {}
    name = name.strip()
    if not name or len(name) > 120:
        errors["name"] = "Enter their name."
    try:
        email = normalise_email(email)
    except InvalidContact:
        errors["email"] = "Enter an email address, like name@example.com."
    existing = db.exec(select(Preparer).where(Preparer.email == email)).first() if not errors else None
    if existing is not None and existing.firm_id == by.firm_id:
        errors["email"] = "A preparer of your firm already logs in with this email."
    # A preparer of another firm: the invitation is answered (and listed) as any other, so an administrator
    # cannot learn who works elsewhere; the person is told instead, and their email's link can't be used.
    elsewhere = existing is not None and existing.firm_id != by.firm_id
    invite = PreparerInvite(
        firm_id=by.firm_id, email=email, name=name, token_hash="", invited_by=by.id or 0, expires_at=utcnow()
    )
    if errors:
        return invite, errors
    token = secrets.token_urlsafe(32)
    invite.token_hash, invite.expires_at = _token_hash(token), utcnow() + INVITE_LIFETIME
    db.add(invite)
    audit.record(
        db,
        action="preparer.invited",
        actor=actor_of(request, by),
        firm_id=by.firm_id,
        detail={"email": email},
    )
    db.commit()
    firm = db.get(Firm, by.firm_id)
    link = f"{resources.settings.public_url.rstrip('/')}/preparer/join/{token}"
    message = _invitation(by, firm.name if firm else "", name, email, link, elsewhere)
    try:
        await run_in_threadpool(
            outbox.send, f"preparer-invite:{invite.id}", None, "preparer_invite", lambda _s: (message, None)
        )
    except DeliveryError as exc:
        raise ServiceError(
            Refusal.UNAVAILABLE,
            "The invitation could not be sent just now. Try again shortly.",
        ) from exc
    return invite, {}


def _invitation(
    by: Preparer, firm_name: str, name: str, email: str, link: str, elsewhere: bool
) -> OutgoingMessage:
    """The invitation; to an address another firm's workspace uses, a note that it can't join instead."""
    subject = f"{by.name} invites you to {firm_name or 'Portico'}"
    if elsewhere:
        body = (
            f"Hello {name},\n\n{by.name} tried to invite you to the Portico workspace of "
            f"{firm_name or 'their firm'}, but this email address already logs in to another "
            "firm's workspace, and an address belongs to one workspace only. If you want to join them, "
            f"ask {by.name} to invite another address of yours.\n"
        )
    else:
        body = (
            f"Hello {name},\n\n{by.name} invites you to the Portico workspace of "
            f"{firm_name or 'the firm'}. Choose your password here (the link works for 7 days):\n\n"
            f"{link}\n\nYou will set up two-step login with an authenticator app at your first login.\n"
        )
    return OutgoingMessage("email", email, subject, body)


def open_invite(db: Session, token: str) -> PreparerInvite:
    invite = db.exec(select(PreparerInvite).where(PreparerInvite.token_hash == _token_hash(token))).first()
    if invite is None or invite.accepted_at is not None or invite.expires_at < utcnow():
        raise ServiceError(
            Refusal.NOT_FOUND, "This invitation is no longer valid. Ask your colleague for a new one."
        )
    return invite


def accept_invite(
    db: Session, request: Request, token: str, password: str
) -> tuple[Preparer | None, list[str]]:
    invite = open_invite(db, token)
    problems = password_problems(password, invite.email)
    if problems:
        return None, problems
    if db.exec(select(Preparer).where(Preparer.email == invite.email)).first() is not None:
        raise ServiceError(Refusal.CONFLICT, "A preparer with this email already exists. Log in instead.")
    preparer = Preparer(
        firm_id=invite.firm_id, email=invite.email, name=invite.name, password_hash=hash_password(password)
    )
    db.add(preparer)
    invite.accepted_at = utcnow()
    db.add(invite)
    db.flush()
    audit.record(
        db,
        action="preparer.joined",
        actor=request_actor(request, "preparer", str(preparer.id)),
        firm_id=invite.firm_id,
    )
    db.commit()
    return preparer, []
