"""The client's landing page: what the firm needs from this person across every return their account
reaches (pending tasks), what they have done (completed tasks), what happened lately (activity), and
how to reach the firm (contact).

Everything is read in a fixed number of queries however many returns and documents the account has:
the links once, then one query per kind of fact over all the linked engagements together. The page is the
portal's busiest, so what it shows is kept per account and return (`HubCache`) under a stamp read in one
query: the projection's versions, the documents, signatures and messages of those returns, and the firm's
contact details. A page whose stamp has not moved is answered from the cache.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, col, func, select

from core.client_accounts import LinkedReturn, linked_returns
from core.config import Settings
from core.enums import Role
from core.models import (
    ChatMessage,
    Direction,
    Document,
    EngagementStatus,
    Firm,
    FirmSettings,
    IdentityCheck,
    IdentityUnlock,
    Preparer,
    Signature,
    Signer,
    TaxpayerAccount,
)
from services import proofing
from services.kept import Kept, per_engine

ACTIVITY_LIMIT = 10
COMPLETED_LIMIT = 20
# Before the preparer sent the return, the firm is waiting for the client's own documents.
BEFORE_DOCUMENTS_SENT = ("created", "invited", "registered", "verified")

TaskKind = Literal["sign", "signature", "identity", "paper", "upload", "message"]


class HubTask(BaseModel):
    """Something the firm needs from the client on one return; `link` opens the step (switching to it)."""

    kind: TaskKind
    title: str
    detail: str = ""
    engagement_id: int
    tax_year: int
    since: datetime | None = None
    document_id: int | None = None
    link: str


class DoneTask(BaseModel):
    kind: Literal["signed", "uploaded"]
    title: str
    engagement_id: int
    tax_year: int
    done_at: datetime
    document_id: int | None = None


class ActivityItem(BaseModel):
    kind: Literal["document_received", "signature_applied", "message"]
    text: str
    engagement_id: int
    tax_year: int
    at: datetime


class FirmContact(BaseModel):
    firm_name: str = ""
    preparer_name: str = ""
    preparer_email: str = ""
    preparer_phone: str | None = None
    address: str | None = None
    phone: str | None = None
    email: str | None = None
    hours: str | None = None


class HubOut(BaseModel):
    tasks: list[HubTask]
    completed: list[DoneTask]
    activity: list[ActivityItem]
    contact: FirmContact


def go_link(engagement_id: int, to: str) -> str:
    """A link that shows this return first, then opens `to` (web/portal_pages `/portal/go`)."""
    return f"/portal/go?return={engagement_id}&to={to}"


@dataclass(frozen=True)
class _Reach:
    """The account's returns, by engagement id."""

    returns: dict[int, LinkedReturn]

    @property
    def ids(self) -> list[int]:
        return list(self.returns)

    def year(self, engagement_id: int) -> int:
        return self.returns[engagement_id].engagement.tax_year

    def mine(self, engagement_col: Any, role_col: Any) -> sa.ColumnElement[bool]:
        """`role_col` is this person's role on the row's engagement (a person may be taxpayer on one
        return and spouse on another)."""
        return sa.or_(
            *(sa.and_(engagement_col == eid, role_col == r.role) for eid, r in self.returns.items())
        )

    def own_uploads(self) -> sa.ColumnElement[bool]:
        return sa.or_(
            *(
                sa.and_(col(Document.engagement_id) == eid, col(Document.uploaded_by) == f"taxpayer:{r.role}")
                for eid, r in self.returns.items()
            )
        )


def reach_of(db: Session, account: TaxpayerAccount) -> _Reach:
    return _Reach({r.engagement_id: r for r in linked_returns(db, account.id or 0)})


def hub(
    db: Session,
    account: TaxpayerAccount,
    current_engagement_id: int | None = None,
    returns: Sequence[LinkedReturn] | None = None,
    *,
    settings: Settings,
) -> HubOut:
    """The landing page's data; the firm contact is the current return's (else the newest's).
    `returns`: the account's linked returns when the caller has just read them (the page has)."""
    reach = _Reach({r.engagement_id: r for r in returns}) if returns is not None else reach_of(db, account)
    if not reach.returns:
        return HubOut(tasks=[], completed=[], activity=[], contact=FirmContact())
    chosen = reach.returns.get(current_engagement_id or 0) or next(iter(reach.returns.values()))
    key = (account.id or 0, chosen.engagement_id)
    stamp = _stamp(db, reach, chosen)
    cache = cache_of(db)
    cached = cache.get(key, stamp)
    if cached is not None:
        return cached
    tasks = _sign_tasks(db, reach, settings) + _upload_tasks(db, reach) + _message_tasks(db, reach)
    # Newest return first (no due dates yet: the tax year stands in), then the longest-waiting first.
    tasks.sort(key=lambda t: (-t.tax_year, t.since.timestamp() if t.since else 0.0))
    out = HubOut(
        tasks=tasks,
        completed=_completed(db, reach),
        activity=_activity(db, reach),
        contact=FirmContact(**dict(zip(_CONTACT_FIELDS, stamp[-len(_CONTACT_FIELDS) :], strict=True))),
    )
    cache.put(key, stamp, out)
    return out


# ---- the cache --------------------------------------------------------------------------------------

_CONTACT_FIELDS = tuple(FirmContact.model_fields)


class HubCache(Kept[tuple[int, int], HubOut]):
    """Landing pages by (account, return shown), each under the stamp it was read at. An entry also lapses
    after `seconds`: the stamp does not see a preparer correct a signer's name, so such an edit shows
    within that time."""

    def __init__(self, size: int = 1000, seconds: float = 60.0) -> None:
        super().__init__(size, seconds)


_CACHES: weakref.WeakKeyDictionary[Any, HubCache] = weakref.WeakKeyDictionary()


def cache_of(db: Session) -> HubCache:
    """The cache of the database `db` reads (one per engine: a test's fresh database starts empty)."""
    return per_engine(_CACHES, db.get_bind(), HubCache)


def _stamp_statement() -> sa.Select[Any]:
    """Built once: a statement object is reused with new parameters without being put together again
    (for SQLAlchemy, building and keying a statement of this size costs more than running it)."""
    doc, sig, chat = Document.__table__.c, Signature.__table__.c, ChatMessage.__table__.c  # type: ignore[attr-defined]
    status = EngagementStatus.__table__.c  # type: ignore[attr-defined]
    check, unlock = IdentityCheck.__table__.c, IdentityUnlock.__table__.c  # type: ignore[attr-defined]
    ids: Any = sa.bindparam("ids", expanding=True)
    of_docs = doc.engagement_id.in_(ids)
    signatures = sig.document_id.in_(sa.select(doc.id).where(of_docs))

    def scalar(column: Any, where: Any) -> Any:
        return sa.select(column).where(where).scalar_subquery()

    return sa.select(
        scalar(func.coalesce(func.sum(status.version), 0), status.engagement_id.in_(ids)),
        scalar(func.count(status.engagement_id), status.engagement_id.in_(ids)),
        scalar(func.count(doc.id), of_docs),
        scalar(func.max(doc.id), of_docs),
        scalar(func.count(sig.signed_at), signatures),
        scalar(func.count(sig.id), signatures),
        scalar(func.count(chat.id), chat.engagement_id.in_(ids)),
        scalar(func.max(chat.id), chat.engagement_id.in_(ids)),
        # Identity proofing changes a signing task ("verify first", "sign on paper"): sets asked, answered.
        scalar(func.count(check.id), check.engagement_id.in_(ids)),
        scalar(func.count(check.answered_at), check.engagement_id.in_(ids)),
        scalar(func.count(unlock.id), unlock.engagement_id.in_(ids)),
    )


def _contact_statement() -> sa.Select[Any]:
    """The return's preparer and the firm as they reach their clients, in `FirmContact`'s order."""
    firm, preparer = Firm.__table__.c, Preparer.__table__.c  # type: ignore[attr-defined]
    settings = FirmSettings.__table__.c  # type: ignore[attr-defined]
    columns: list[Any] = [
        firm.name,
        preparer.name,
        preparer.email,
        preparer.phone,
        settings.address,
        settings.phone,
        settings.email,
        settings.hours,
    ]
    return (
        sa.select(*columns)
        .select_from(Firm.__table__)  # type: ignore[attr-defined]
        .join(Preparer.__table__, preparer.id == sa.bindparam("preparer_id"), isouter=True)  # type: ignore[attr-defined]
        .join(FirmSettings.__table__, settings.firm_id == firm.id, isouter=True)  # type: ignore[attr-defined]
        .where(firm.id == sa.bindparam("firm_id"))
    )


_STAMP, _CONTACT = _stamp_statement(), _contact_statement()


def _stamp(db: Session, reach: _Reach, chosen: LinkedReturn) -> tuple[Any, ...]:
    """What the page shows changes only when this does: the links (read already), the projection's
    version of each return, the count and newest id of documents, signatures given and messages, and the
    firm's contact details (the last fields, in `FirmContact`'s order)."""
    connection = db.connection()
    counts = connection.execute(_STAMP, {"ids": reach.ids}).one()
    engagement = chosen.engagement
    contact = connection.execute(
        _CONTACT, {"firm_id": engagement.firm_id, "preparer_id": engagement.preparer_id}
    ).first()
    firm, name, email, phone, address, office_phone, office_email, hours = contact or (None,) * 8
    links = tuple(
        (eid, r.role, r.signer.signature_key is not None, r.engagement.tax_year, r.link.linked_at)
        for eid, r in reach.returns.items()
    )
    values = (firm or "", name or "", email or "", phone or None, address or None, office_phone or None)
    return (links, *counts, *values, office_email or None, hours or None)


def _sign_tasks(db: Session, reach: _Reach, settings: Settings) -> list[HubTask]:
    columns: list[Any] = [Document.id, Document.name, Document.engagement_id, Document.created_at]
    rows: Sequence[Any] = (
        db.connection()
        .execute(
            sa.select(*columns, col(Document.form))
            .join(Signature, col(Signature.document_id) == col(Document.id))
            .where(
                col(Document.engagement_id).in_(reach.ids),
                col(Signature.signed_at).is_(None),
                col(Signature.declined_at).is_(None),  # declined: the preparer acts next
                col(Document.replaced_by).is_(None),  # a corrected copy took its place: sign that one
                reach.mine(col(Document.engagement_id), col(Signature.role)),
            )
            .order_by(col(Document.id))
        )
        .all()
    )
    waiting = _waiting_for_taxpayer(db, reach, [doc_id or 0 for doc_id, *_ in rows])
    proofed = _proofing(db, reach, settings, [(eid, name, form) for _, name, eid, _, form in rows])
    tasks = []
    for doc_id, name, eid, created, form in rows:
        has_signature = reach.returns[eid].signer.signature_key is not None
        kind: TaskKind = "sign" if has_signature else "signature"
        title, detail = f"Sign {name}", "" if has_signature else "Save your signature first, then sign."
        link = go_link(eid, "/portal/documents" if has_signature else "/portal/signature")
        standing = proofed.get((eid, name, form))
        if standing is not None and standing.locked:  # every set of questions failed: paper
            kind, title = "paper", f"Sign {name} on paper"
            detail = "Print it, sign by hand, and upload a scan or photo on its page."
            link = go_link(eid, f"/portal/documents/{doc_id}/view")
        elif standing is not None and standing.passed is None and has_signature:
            kind = "identity"
            detail = "Verify your identity first (a few questions), then sign."
            link = go_link(eid, "/portal/identity")
        if doc_id in waiting:
            detail = f"Waiting for {waiting[doc_id]} to sign first: you'll get a message then."
        tasks.append(
            HubTask(
                kind=kind,
                title=title,
                detail=detail,
                engagement_id=eid,
                tax_year=reach.year(eid),
                since=created,
                document_id=doc_id,
                link=link,
            )
        )
    return tasks


def _proofing(
    db: Session, reach: _Reach, settings: Settings, docs: list[tuple[int, str, str | None]]
) -> dict[tuple[int, str, str | None], proofing.SignerProofing]:
    """For each (return, document name, form) that needs identity proofing before it is signed, where
    the person stands on that return; documents that need none are left out."""
    out: dict[tuple[int, str, str | None], proofing.SignerProofing] = {}
    standing: dict[int, proofing.SignerProofing] = {}
    for eid, name, form in docs:
        linked = reach.returns[eid]
        rules = proofing.firm_proofing(db, linked.engagement.firm_id, settings)
        if not proofing.needs_proofing_named(rules, name, form):
            continue
        if eid not in standing:
            standing[eid] = proofing.proofing_of(db, eid, Role(linked.role).value)
        out[(eid, name, form)] = standing[eid]
    return out


def _waiting_for_taxpayer(db: Session, reach: _Reach, doc_ids: list[int]) -> dict[int, str]:
    """Of these documents, those the person signs as the spouse on a return with a signing order and the
    taxpayer has not signed yet: the taxpayer's first name, by document."""
    ordered = [
        eid for eid, r in reach.returns.items() if r.engagement.taxpayer_signs_first and r.role == Role.SPOUSE
    ]
    if not ordered or not doc_ids:
        return {}
    rows = db.exec(
        select(Signature.document_id, Signer.first_name)
        .join(Document, col(Document.id) == col(Signature.document_id))
        .join(
            Signer,
            sa.and_(
                col(Signer.engagement_id) == col(Document.engagement_id), col(Signer.role) == Role.TAXPAYER
            ),
        )
        .where(
            col(Signature.document_id).in_(doc_ids),
            col(Document.engagement_id).in_(ordered),
            col(Signature.role) == Role.TAXPAYER,
            col(Signature.signed_at).is_(None),
        )
    ).all()
    return {doc_id: first_name for doc_id, first_name in rows}


def _upload_tasks(db: Session, reach: _Reach) -> list[HubTask]:
    stages = dict(
        db.exec(
            select(EngagementStatus.engagement_id, EngagementStatus.stage).where(
                col(EngagementStatus.engagement_id).in_(reach.ids)
            )
        ).all()
    )
    return [
        HubTask(
            kind="upload",
            title="Upload your tax documents",
            detail="W-2s, 1099s and anything else your preparer asked for.",
            engagement_id=eid,
            tax_year=reach.year(eid),
            since=r.link.linked_at,
            link=go_link(eid, "/portal/files"),
        )
        for eid, r in reach.returns.items()
        if stages.get(eid, "verified") in BEFORE_DOCUMENTS_SENT
    ]


def _message_tasks(db: Session, reach: _Reach) -> list[HubTask]:
    """Messages from the firm the client has not answered: no "last read" marker exists yet, so what
    came after the client's own last message on that return counts as unread."""
    own_last = dict(
        db.exec(
            select(ChatMessage.engagement_id, func.max(ChatMessage.id))
            .where(
                col(ChatMessage.engagement_id).in_(reach.ids),
                reach.mine(col(ChatMessage.engagement_id), col(ChatMessage.sender)),
            )
            .group_by(col(ChatMessage.engagement_id))
        ).all()
    )
    after = sa.or_(
        *(
            sa.and_(col(ChatMessage.engagement_id) == eid, col(ChatMessage.id) > (own_last.get(eid) or 0))
            for eid in reach.ids
        )
    )
    unread = db.exec(
        select(ChatMessage.engagement_id, func.count(), func.min(ChatMessage.created_at))
        .where(col(ChatMessage.engagement_id).in_(reach.ids), ChatMessage.sender == "preparer", after)
        .group_by(col(ChatMessage.engagement_id))
    ).all()
    return [
        HubTask(
            kind="message",
            title="Read a message from your firm" if count == 1 else f"Read {count} messages from your firm",
            engagement_id=eid,
            tax_year=reach.year(eid),
            since=first,
            link=go_link(eid, "/portal/messages"),
        )
        for eid, count, first in unread
    ]


def _completed(db: Session, reach: _Reach) -> list[DoneTask]:
    signed = db.exec(
        select(Document.id, Document.name, Document.engagement_id, Signature.signed_at)
        .join(Signature, col(Signature.document_id) == col(Document.id))
        .where(
            col(Document.engagement_id).in_(reach.ids),
            col(Signature.signed_at).is_not(None),
            reach.mine(col(Document.engagement_id), col(Signature.role)),
        )
        .order_by(col(Signature.signed_at).desc())
        .limit(COMPLETED_LIMIT)
    ).all()
    uploads = db.exec(
        select(Document.id, Document.name, Document.engagement_id, Document.created_at)
        .where(
            col(Document.engagement_id).in_(reach.ids),
            Document.direction == Direction.TO_PREPARER,
            reach.own_uploads(),
        )
        .order_by(col(Document.created_at).desc(), col(Document.id).desc())
        .limit(COMPLETED_LIMIT)
    ).all()
    done = [
        DoneTask(
            kind="signed",
            title=f"Signed {name}",
            engagement_id=eid,
            tax_year=reach.year(eid),
            done_at=at,
            document_id=i,
        )
        for i, name, eid, at in signed
        if at is not None
    ] + [
        DoneTask(
            kind="uploaded",
            title=f"Uploaded {name}",
            engagement_id=eid,
            tax_year=reach.year(eid),
            done_at=at,
            document_id=i,
        )
        for i, name, eid, at in uploads
    ]
    done.sort(key=lambda d: d.done_at, reverse=True)
    return done[:COMPLETED_LIMIT]


def _activity(db: Session, reach: _Reach) -> list[ActivityItem]:
    received = db.exec(
        select(Document.name, Document.engagement_id, Document.created_at)
        .where(col(Document.engagement_id).in_(reach.ids), Document.direction == Direction.TO_CLIENT)
        .order_by(col(Document.created_at).desc(), col(Document.id).desc())
        .limit(ACTIVITY_LIMIT)
    ).all()
    signatures = db.exec(
        select(Document.name, Document.engagement_id, Signature, Signer.first_name)
        .join(Signature, col(Signature.document_id) == col(Document.id))
        .join(
            Signer,
            sa.and_(
                col(Signer.engagement_id) == col(Document.engagement_id),
                col(Signer.role) == col(Signature.role),
            ),
        )
        .where(col(Document.engagement_id).in_(reach.ids), col(Signature.signed_at).is_not(None))
        .order_by(col(Signature.signed_at).desc())
        .limit(ACTIVITY_LIMIT)
    ).all()
    messages = db.exec(
        select(ChatMessage.sender, ChatMessage.sender_name, ChatMessage.engagement_id, ChatMessage.created_at)
        .where(col(ChatMessage.engagement_id).in_(reach.ids))
        .order_by(col(ChatMessage.created_at).desc(), col(ChatMessage.id).desc())
        .limit(ACTIVITY_LIMIT)
    ).all()
    items = [
        ActivityItem(
            kind="document_received",
            text=f"Received {name}",
            engagement_id=eid,
            tax_year=reach.year(eid),
            at=at,
        )
        for name, eid, at in received
    ]
    items += [
        ActivityItem(
            kind="signature_applied",
            text=f"{'You' if sig.role.value == reach.returns[eid].role else first} signed {name}",
            engagement_id=eid,
            tax_year=reach.year(eid),
            at=sig.signed_at,
        )
        for name, eid, sig, first in signatures
        if sig.signed_at is not None
    ]
    items += [
        ActivityItem(
            kind="message",
            text=f"Message from {name}"
            if sender == "preparer"
            else ("You sent a message" if sender == reach.returns[eid].role else f"Message from {name}"),
            engagement_id=eid,
            tax_year=reach.year(eid),
            at=at,
        )
        for sender, name, eid, at in messages
    ]
    items.sort(key=lambda a: a.at, reverse=True)
    return items[:ACTIVITY_LIMIT]
