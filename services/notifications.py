"""A client's notifications: the bell's list and count, opening one, marking them read, the firm's message
on a delivery, and what changed since a cursor (the portal's live updates).

Everything is read from the database, so any API process answers the same: a notification written by the
worker or by another process shows up on the next read. A notification of another account is "not found".
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, col, func, select, update

from core import notifications
from core.client_accounts import linked_returns
from core.models import ChatMessage, Engagement, Notification, WebSession, utcnow
from services import Refusal, ServiceError
from services.context import TaxpayerContext
from services.documents import chat_out
from services.kept import per_engine
from services.schemas import ChatOut

RECENT = 8  # what the bell lists
PAGE = 50  # what the notifications page and the API list


class NotificationOut(BaseModel):
    id: int
    kind: str
    title: str
    body: str
    link: str
    engagement_id: int | None
    tax_year: int | None
    created_at: datetime
    read: bool
    open_url: str


class NotificationsOut(BaseModel):
    unread: int
    notifications: list[NotificationOut]


@dataclass(frozen=True)
class Bell:
    """What every portal page's header shows: the unread count, the newest few, the firm's messages to
    show once, and the newest id (where the page's live updates start)."""

    unread: int
    recent: list[NotificationOut]
    firm_messages: list[NotificationOut]
    last_id: int

    @property
    def label(self) -> str:
        return f"Notifications, {self.unread} unread"


def _out(row: Notification, years: dict[int, int]) -> NotificationOut:
    return NotificationOut(
        id=row.id or 0,
        kind=row.kind,
        title=row.title,
        body=row.body,
        link=row.link,
        engagement_id=row.engagement_id,
        tax_year=years.get(row.engagement_id or 0),
        created_at=row.created_at,
        read=row.read_at is not None,
        open_url=f"/portal/notifications/{row.id}/open",
    )


def _outs(db: Session, rows: list[Notification]) -> list[NotificationOut]:
    ids = {r.engagement_id for r in rows if r.engagement_id}
    years = (
        dict(db.exec(select(Engagement.id, Engagement.tax_year).where(col(Engagement.id).in_(ids))).all())
        if ids
        else {}
    )
    return [_out(r, years) for r in rows]  # type: ignore[arg-type]


def unread_count(db: Session, account_id: int) -> int:
    return db.exec(
        select(func.count())
        .select_from(Notification)
        .where(Notification.account_id == account_id, col(Notification.read_at).is_(None))
    ).one()


def recent(db: Session, account_id: int, limit: int = PAGE) -> list[NotificationOut]:
    """The newest `limit`, newest first."""
    query = select(Notification).where(Notification.account_id == account_id)
    return _outs(db, list(db.exec(query.order_by(col(Notification.id).desc()).limit(limit)).all()))


_TABLE = Notification.__table__.c  # type: ignore[attr-defined]
_BELL_STAMP = sa.select(
    func.max(_TABLE.id), func.count(_TABLE.id), func.count(_TABLE.id).filter(_TABLE.read_at.is_(None))
).where(_TABLE.account_id == sa.bindparam("account_id"))


class BellCache:
    """Each account's bell under its stamp (newest id, how many, how many unread: a new notification, a
    read one and a dismissed firm's message each move it), so a page whose bell has not changed reads one
    row for it instead of five queries. The oldest go first past `size`; one per process."""

    def __init__(self, size: int = 2000) -> None:
        self.size = size
        self._entries: OrderedDict[int, tuple[tuple[Any, ...], Bell]] = OrderedDict()
        self._lock = threading.Lock()

    def bell(self, db: Session, account_id: int) -> Bell:
        stamp = tuple(db.connection().execute(_BELL_STAMP, {"account_id": account_id}).one())
        with self._lock:
            entry = self._entries.get(account_id)
            if entry is not None and entry[0] == stamp:
                self._entries.move_to_end(account_id)
                return entry[1]
        found = bell(db, account_id)
        with self._lock:
            self._entries[account_id] = (stamp, found)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return found


_BELLS: weakref.WeakKeyDictionary[Any, BellCache] = weakref.WeakKeyDictionary()


def cached_bell(db: Session, account_id: int) -> Bell:
    """`bell`, from the cache of the database `db` reads (one per engine) when nothing moved."""
    return per_engine(_BELLS, db.get_bind(), BellCache).bell(db, account_id)


def bell(db: Session, account_id: int) -> Bell:
    listed = recent(db, account_id, RECENT)
    firm = db.exec(
        select(Notification)
        .where(
            Notification.account_id == account_id,
            Notification.kind == notifications.FIRM_MESSAGE,
            col(Notification.read_at).is_(None),
        )
        .order_by(col(Notification.id))
    ).all()
    last = db.exec(select(func.max(Notification.id)).where(Notification.account_id == account_id)).one()
    return Bell(unread_count(db, account_id), listed, _outs(db, list(firm)), last or 0)


def listing(ctx: TaxpayerContext, *, limit: int = PAGE) -> NotificationsOut:
    account_id = ctx.account.id or 0
    return NotificationsOut(
        unread=unread_count(ctx.db, account_id), notifications=recent(ctx.db, account_id, limit)
    )


def _own(ctx: TaxpayerContext, notification_id: int) -> Notification:
    row = ctx.db.get(Notification, notification_id)
    if row is None or row.account_id != ctx.account.id:
        raise ServiceError(Refusal.NOT_FOUND, "No such notification.")
    return row


def mark_read(ctx: TaxpayerContext, *, notification_id: int) -> NotificationOut:
    row = _own(ctx, notification_id)
    if row.read_at is None:
        row.read_at = utcnow()
        ctx.db.add(row)
        ctx.db.commit()
        ctx.db.refresh(row)
    return _outs(ctx.db, [row])[0]


def mark_all_read(ctx: TaxpayerContext) -> int:
    """Every unread notification of the account, except the firm's messages: those wait for their OK."""
    result = ctx.db.execute(
        update(Notification)
        .where(
            col(Notification.account_id) == ctx.account.id,
            col(Notification.read_at).is_(None),
            col(Notification.kind) != notifications.FIRM_MESSAGE,
        )
        .values(read_at=utcnow())
    )
    ctx.db.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Target:
    """Where opening a notification goes, and the return to show there (None: keep the current one)."""

    link: str
    engagement_id: int | None


def open_notification(ctx: TaxpayerContext, *, notification_id: int) -> Target:
    """Marks it read and answers where it leads. A firm's message stays unread until its OK, so the page
    it opens still shows it; a return the account no longer reaches is not switched to."""
    row = _own(ctx, notification_id)
    if row.kind != notifications.FIRM_MESSAGE:
        mark_read(ctx, notification_id=notification_id)
    reachable = {r.engagement_id for r in linked_returns(ctx.db, ctx.account.id or 0)}
    link = row.link if row.link.startswith("/portal") and not row.link.startswith("//") else "/portal"
    return Target(link, row.engagement_id if row.engagement_id in reachable else None)


# ---- live updates --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """The last notification and chat message a page has: an SSE event id, `n12-c40`."""

    notification: int = 0
    chat: int = 0

    def event_id(self) -> str:
        return f"n{self.notification}-c{self.chat}"

    @staticmethod
    def parse(text: str | None) -> Cursor | None:
        if not text or len(text) > 40:
            return None
        try:
            n, c = text.split("-", 1)
            if n[0] != "n" or c[0] != "c":
                return None
            return Cursor(int(n[1:]), int(c[1:]))
        except (ValueError, IndexError):
            return None


@dataclass
class Changes:
    unread: int
    notifications: list[NotificationOut] = field(default_factory=list)
    chat: list[ChatOut] = field(default_factory=list)
    cursor: Cursor = field(default_factory=Cursor)


def cursor_now(db: Session, account_id: int, engagement_id: int) -> Cursor:
    last_n = db.exec(select(func.max(Notification.id)).where(Notification.account_id == account_id)).one()
    last_c = db.exec(select(func.max(ChatMessage.id)).where(ChatMessage.engagement_id == engagement_id)).one()
    return Cursor(last_n or 0, last_c or 0)


def changes_since(db: Session, *, account_id: int, engagement_id: int, cursor: Cursor) -> Changes:
    """The unread count, and the account's notifications and the return's chat messages after `cursor`
    (oldest first, a bounded batch; the next read carries on from the new cursor)."""
    rows = db.exec(
        select(Notification)
        .where(Notification.account_id == account_id, col(Notification.id) > cursor.notification)
        .order_by(col(Notification.id))
        .limit(PAGE)
    ).all()
    new = _outs(db, list(rows))
    chat_rows = db.exec(
        select(ChatMessage)
        .where(ChatMessage.engagement_id == engagement_id, col(ChatMessage.id) > cursor.chat)
        .order_by(col(ChatMessage.id))
        .limit(PAGE)
    ).all()
    chat = [chat_out(m) for m in chat_rows]
    moved = Cursor(
        new[-1].id if new else cursor.notification,
        chat[-1].id if chat else cursor.chat,
    )
    return Changes(unread_count(db, account_id), new, chat, moved)


def session_alive(db: Session, token_hash: str) -> bool:
    """The stream's login still stands (not logged out, not ended from another device). Read without
    touching it: an open tab is not activity that keeps a session from idling out."""
    return db.get(WebSession, token_hash) is not None
