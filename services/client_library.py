"""The client's one Documents page: every document of every return their account reaches, grouped by
tax year and then by kind, searched, filtered, sorted and paged in the database.

A page is two queries (its count and its rows) over `Document` narrowed by the `engagement_id` index to
the account's returns, plus one for the page's signatures and one for the signers' names. A spouse sees
the joint return's documents and never an upload the other spouse marked private.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, select

from core.client_accounts import LinkedReturn
from core.enums import SIGNATURE_STATUS_LABELS
from core.models import Direction, Document, Signature, Signer, TaxpayerAccount
from services import Refusal, ServiceError
from services.client_hub import _Reach, reach_of
from services.context import TaxpayerContext
from services.documents import status_of

Kind = Literal["return", "to_sign", "signed", "upload"]
KINDS: dict[str, str] = {  # in the order the groups show
    "return": "Tax return",
    "to_sign": "Documents to sign",
    "signed": "Signed documents",
    "upload": "My uploads",
}
STATUSES: dict[str, str] = {
    "awaiting": "Awaiting a signature",
    "complete": "Every signature in",
    "none": "No signature needed",
}
SORTS: dict[str, str] = {"date": "Newest first", "name": "Name (A to Z)"}
PER_PAGE = 25
MAX_PER_PAGE = 100


Mine = Literal["sign", "signature-first", "signed", "declined", "replaced", "waiting", "not-needed"]
"""What the person looking may do with a document: sign it (or save a signature first), nothing yet
(waiting for the taxpayer to sign first), nothing more (signed, declined and waiting for a corrected copy,
replaced by one), or nothing at all (not theirs)."""


class SignerState(BaseModel):
    role: str
    name: str
    you: bool
    signed_at: datetime | None
    on_paper: bool = False
    declined_at: datetime | None = None
    decline_reason: str | None = None


class LibraryDoc(BaseModel):
    id: int
    name: str
    engagement_id: int
    tax_year: int
    kind: Kind
    direction: Literal["to_client", "to_preparer"]
    content_type: str
    size: int
    created_at: datetime
    private: bool
    signers: list[SignerState]
    mine: Mine
    waiting_for: str = ""  # "waiting": the first name of the signer who signs first
    status: str | None = None  # the document's place in `core.enums.SignatureStatus`
    status_label: str = ""


class LibraryPage(BaseModel):
    items: list[LibraryDoc]
    total: int
    page: int
    pages: int
    per_page: int
    years: list[int]


def library(
    db: Session,
    account: TaxpayerAccount,
    *,
    q: str = "",
    year: int | None = None,
    kind: str = "",
    status: str = "",
    sort: str = "date",
    page: int = 1,
    per_page: int = PER_PAGE,
) -> LibraryPage:
    """One page of the account's documents; unknown filter values are refused."""
    if kind and kind not in KINDS:
        raise ServiceError(Refusal.INVALID, "Choose a kind from the list.", "kind")
    if status and status not in STATUSES:
        raise ServiceError(Refusal.INVALID, "Choose a signature status from the list.", "status")
    if sort not in SORTS:
        raise ServiceError(Refusal.INVALID, "Sort by date or by name.", "sort")
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    reach = reach_of(db, account)
    years = sorted({r.engagement.tax_year for r in reach.returns.values()}, reverse=True)
    if not reach.returns:
        return LibraryPage(items=[], total=0, page=1, pages=1, per_page=per_page, years=[])
    ids = [eid for eid in reach.ids if year is None or reach.year(eid) == year]
    query, kind_of = _visible(reach, ids)
    if q.strip():
        query = query.where(col(Document.name).ilike(f"%{_escape_like(q.strip()[:100])}%", escape="\\"))
    if kind:
        query = query.where(kind_of == kind)
    if status:
        query = query.where(_status_condition(status))
    total = db.exec(select(func.count()).select_from(query.subquery())).one()
    pages = max(1, -(-int(total) // per_page))
    page = max(1, min(page, pages))
    year_of = sa.case({eid: reach.year(eid) for eid in reach.ids}, value=col(Document.engagement_id))
    kind_rank = sa.case({k: i for i, k in enumerate(KINDS)}, value=kind_of)
    within = (
        [func.lower(col(Document.name)), col(Document.id)]
        if sort == "name"
        else [col(Document.created_at).desc(), col(Document.id).desc()]
    )
    rows = db.exec(
        query.order_by(year_of.desc(), kind_rank, *within).offset((page - 1) * per_page).limit(per_page)
    ).all()
    items = _items(db, reach, [(doc, str(k)) for doc, k in rows])
    return LibraryPage(items=items, total=int(total), page=page, pages=pages, per_page=per_page, years=years)


def _visible(reach: _Reach, ids: list[int]) -> tuple[Any, sa.ColumnElement[str]]:
    """The documents of these returns the person may see, each with its kind for them."""
    mine: Any = aliased(Signature)  # this person's own signature row on the document, if it needs one
    kind_of = sa.case(
        (col(Document.direction) == Direction.TO_PREPARER, "upload"),
        (mine.id.is_(None), "return"),
        (col(Document.replaced_by).is_not(None), "return"),  # a corrected copy took its place
        (mine.signed_at.is_(None), "to_sign"),
        else_="signed",
    )
    own_signature = sa.and_(
        mine.document_id == col(Document.id), reach.mine(col(Document.engagement_id), mine.role)
    )
    query = (
        select(Document, kind_of)
        .outerjoin(mine, own_signature)
        .where(
            col(Document.engagement_id).in_(ids),
            sa.or_(col(Document.private).is_(False), reach.own_uploads()),
        )
    )
    return query, kind_of


def one_document(db: Session, account: TaxpayerAccount, document_id: int) -> LibraryDoc:
    """One document as the Documents page lists it (a row redrawn after signing)."""
    doc, _ = reachable_document(db, account, document_id)
    reach = reach_of(db, account)
    query, _kind = _visible(reach, [doc.engagement_id])
    row = db.exec(query.where(col(Document.id) == document_id)).one()
    return _items(db, reach, [(row[0], str(row[1]))])[0]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _status_condition(status: str) -> sa.ColumnElement[bool]:
    unsigned = (
        select(Signature.id)
        .where(col(Signature.document_id) == col(Document.id), col(Signature.signed_at).is_(None))
        .exists()
    )
    any_signature = select(Signature.id).where(col(Signature.document_id) == col(Document.id)).exists()
    if status == "awaiting":
        return sa.and_(unsigned, col(Document.replaced_by).is_(None))
    if status == "complete":
        return sa.and_(any_signature, ~unsigned)
    return ~any_signature


def _items(db: Session, reach: _Reach, rows: list[tuple[Document, str]]) -> list[LibraryDoc]:
    doc_ids = [doc.id for doc, _ in rows]
    signatures: dict[int, list[Signature]] = {}
    for sig in db.exec(select(Signature).where(col(Signature.document_id).in_(doc_ids))).all():
        signatures.setdefault(sig.document_id, []).append(sig)
    engagement_ids = {doc.engagement_id for doc, _ in rows}
    names = {
        (s.engagement_id, s.role.value): s.first_name
        for s in db.exec(select(Signer).where(col(Signer.engagement_id).in_(engagement_ids))).all()
    }
    items = []
    for doc, kind in rows:
        linked = reach.returns[doc.engagement_id]
        states = [
            SignerState(
                role=sig.role.value,
                name=names.get((doc.engagement_id, sig.role.value), sig.role.value.capitalize()),
                you=sig.role.value == linked.role,
                signed_at=sig.signed_at,
                on_paper=sig.method == "paper",
                declined_at=sig.declined_at,
                decline_reason=sig.decline_reason,
            )
            for sig in sorted(signatures.get(doc.id or 0, []), key=lambda s: s.role.value != "taxpayer")
        ]
        mine_state = next((s for s in states if s.you), None)
        first = _signs_first(linked, mine_state, states)
        status = status_of(doc, signatures.get(doc.id or 0, []))
        items.append(
            LibraryDoc(
                id=doc.id or 0,
                name=doc.name,
                engagement_id=doc.engagement_id,
                tax_year=linked.engagement.tax_year,
                kind=kind,  # type: ignore[arg-type]
                direction=doc.direction.value,
                content_type=doc.content_type,
                size=doc.size,
                created_at=doc.created_at,
                private=doc.private,
                signers=states,
                mine=_mine(mine_state, linked, doc, first),
                waiting_for=first.name if first else "",
                status=status,
                status_label=SIGNATURE_STATUS_LABELS[status] if status else "",
            )
        )
    return items


def _signs_first(
    linked: LinkedReturn, mine: SignerState | None, states: list[SignerState]
) -> SignerState | None:
    """On a return with a signing order, the taxpayer the spouse waits for on this document (the
    workflow refuses the spouse's signature until then; this only says so beforehand)."""
    if not linked.engagement.taxpayer_signs_first or mine is None or mine.role != "spouse":
        return None
    taxpayer = next((s for s in states if s.role == "taxpayer"), None)
    return taxpayer if taxpayer is not None and taxpayer.signed_at is None else None


def _mine(state: SignerState | None, linked: LinkedReturn, doc: Document, first: SignerState | None) -> Mine:
    if state is None:
        return "not-needed"
    if state.signed_at is not None:
        return "signed"
    if doc.replaced_by is not None:
        return "replaced"
    if state.declined_at is not None:
        return "declined"
    if first is not None:
        return "waiting"
    return "sign" if linked.signer.signature_key else "signature-first"


# ---- one document, on whichever return it belongs to ------------------------------------------------


def reachable_document(
    db: Session, account: TaxpayerAccount, document_id: int
) -> tuple[Document, LinkedReturn]:
    """The document and the account's return it is on; 404 for a document of a return the account does
    not reach, or an upload the other spouse marked private (no hint that it exists)."""
    doc = db.get(Document, document_id)
    linked = reach_of(db, account).returns.get(doc.engagement_id) if doc else None
    if doc is None or linked is None or (doc.private and doc.uploaded_by != f"taxpayer:{linked.role}"):
        raise ServiceError(Refusal.NOT_FOUND, "No such document.")
    return doc, linked


def on_return_of(ctx: TaxpayerContext, document_id: int) -> tuple[Document, TaxpayerContext]:
    """The document, and the context as the signer the account is on that document's return: signing or
    viewing a 2025 document while the 2026 return shows acts (and is audited) as the 2025 signer."""
    doc, linked = reachable_document(ctx.db, ctx.account, document_id)
    if linked.signer.id == ctx.signer.id:
        return doc, ctx
    actor = replace(ctx.actor, id=linked.role)
    return doc, replace(ctx, signer=linked.signer, actor=actor)
