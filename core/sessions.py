"""Server-side sessions: the cookie holds a random id, the database holds only its hash."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlmodel import Session, col, delete, select

from core.models import WebSession, utcnow


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_hash(token: str) -> str:
    """The id a session row is stored under, for binding something to one session."""
    return _hash(token)


def start(db: Session, kind: str, subject_id: int, ip: str | None, user_agent: str | None) -> str:
    token = secrets.token_urlsafe(32)  # 256 bits
    db.add(WebSession(id_hash=_hash(token), kind=kind, subject_id=subject_id, ip=ip, user_agent=user_agent))
    db.commit()
    return token


def resolve(db: Session, token: str, kind: str, idle: timedelta, absolute: timedelta) -> WebSession | None:
    row = db.get(WebSession, _hash(token))
    now = utcnow()
    if row is None or row.kind != kind:
        return None
    if now - row.last_seen_at > idle or now - row.created_at > absolute:
        db.delete(row)
        db.commit()
        return None
    if now - row.last_seen_at > timedelta(seconds=60):  # don't write on every request
        row.last_seen_at = now
        db.add(row)
        db.commit()
    return row


def end(db: Session, token: str) -> None:
    db.exec(delete(WebSession).where(col(WebSession.id_hash) == _hash(token)))
    db.commit()


def end_all(db: Session, kind: str, subject_id: int) -> int:
    rows = db.exec(
        select(WebSession).where(WebSession.kind == kind, WebSession.subject_id == subject_id)
    ).all()
    for row in rows:
        db.delete(row)
    db.commit()
    return len(rows)
