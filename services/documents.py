"""Document reads and downloads shared by the preparer and taxpayer routes."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from fastapi import Response
from sqlmodel import Session, col, or_, select
from starlette.concurrency import run_in_threadpool

from core import audit
from core.actor import Actor
from core.crypto import sha256_hex
from core.enums import SIGNATURE_STATUS_LABELS, SignatureStatus, signature_status
from core.models import ChatMessage, Direction, Document, Signature
from core.storage import DocumentStore
from services import Refusal, ServiceError
from services.schemas import ChatOut, DocumentOut, SignatureOut


def documents_of(
    db: Session, engagement_id: int, direction: Direction | None = None, *, viewer_role: str | None = None
) -> list[DocumentOut]:
    """`viewer_role`: a client signer looking; uploads the other spouse marked private are left out."""
    query = select(Document).where(Document.engagement_id == engagement_id)
    if viewer_role is not None:
        query = query.where(
            or_(col(Document.private).is_(False), col(Document.uploaded_by) == f"taxpayer:{viewer_role}")
        )
    if direction is not None:
        query = query.where(Document.direction == direction)
    docs = db.exec(query.order_by(col(Document.id))).all()
    ids = [d.id for d in docs]
    sigs = db.exec(select(Signature).where(col(Signature.document_id).in_(ids))).all() if ids else []
    by_doc: dict[int, list[Signature]] = {}
    for sig in sigs:
        by_doc.setdefault(sig.document_id, []).append(sig)
    return [_document_out(d, by_doc.get(d.id or 0, [])) for d in docs]


def _document_out(doc: Document, signatures: list[Signature]) -> DocumentOut:
    status = status_of(doc, signatures)
    return DocumentOut(
        id=doc.id or 0,
        name=doc.name,
        direction=doc.direction.value,
        size=doc.size,
        pages=doc.pages,
        sha256=doc.current_sha256,
        created_at=doc.created_at,
        signatures=[
            SignatureOut(
                role=s.role.value,
                signed_at=s.signed_at,
                method="paper" if s.method == "paper" else "electronic",
                declined_at=s.declined_at,
                decline_reason=s.decline_reason,
            )
            for s in signatures
        ],
        signed=bool(signatures) and all(s.signed_at for s in signatures),
        signature_status=status,
        signature_status_label=SIGNATURE_STATUS_LABELS[status] if status else "",
        replaced_by=doc.replaced_by,
    )


def status_of(doc: Document, signatures: list[Signature]) -> SignatureStatus | None:
    """The document's place in the one list of signature statuses (`core.enums.SignatureStatus`)."""
    return signature_status(
        len(signatures),
        sum(s.signed_at is not None for s in signatures),
        declined=any(s.declined_at is not None and s.signed_at is None for s in signatures),
        on_paper=any(s.method == "paper" for s in signatures),
        replaced=doc.replaced_by is not None,
        downloaded=doc.downloaded_at is not None,
    )


async def store_upload(
    store: DocumentStore,
    engagement_id: int,
    name: str,
    data: bytes,
    kind: str,
    *,
    uploaded_by: str,
    private: bool = False,
) -> Document:
    """Writes checked bytes to storage and returns their row for the firm's side (not yet added)."""
    key = store.new_key("uploads")
    await run_in_threadpool(store.put, key, data)  # disk I/O with fsync: off the loop
    digest = sha256_hex(data)
    return Document(
        engagement_id=engagement_id,
        direction=Direction.TO_PREPARER,
        upload_ref=key,
        name=name,
        content_type=kind,
        size=len(data),
        storage_key=key,
        sha256=digest,
        current_key=key,
        current_sha256=digest,
        uploaded_by=uploaded_by,
        private=private,
    )


def owned_document(db: Session, engagement_id: int, document_id: int) -> Document:
    """The document, only if it belongs to this engagement; 404 otherwise (no hint that it exists)."""
    doc = db.exec(
        select(Document).where(Document.id == document_id, Document.engagement_id == engagement_id)
    ).first()
    if doc is None:
        raise ServiceError(Refusal.NOT_FOUND, "No such document.")
    return doc


def download(store: DocumentStore, doc: Document, original: bool = False) -> Response:
    data = store.get(doc.storage_key if original else doc.current_key)
    return Response(
        content=data,
        media_type=doc.content_type,
        headers={
            "Content-Disposition": content_disposition(doc.name),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )


def safe_filename(name: str) -> str:
    """No paths, no control or bidi characters, nothing that breaks a header."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = re.sub(r'["<>:|?*]', "_", name).strip(" .")
    return name[:150] or "document"


def content_disposition(name: str, disposition: str = "inline") -> str:
    """The header for a download named `name`. Headers are Latin-1 at best, so a name outside ASCII
    ("W-2 \u2013 2025.pdf") goes as an ASCII `filename` for old clients plus the real name as RFC 5987
    `filename*` (RFC 6266 §4.3), instead of failing to encode."""
    name = safe_filename(name)
    if name.isascii():
        return f'{disposition}; filename="{name}"'
    decomposed = unicodedata.normalize("NFKD", name)
    fallback = "".join(
        c if c.isascii() else "_" for c in decomposed if unicodedata.category(c) != "Mn"
    ).replace("%", "_")  # some clients percent-decode `filename`
    encoded = quote(name, safe="!#$&+^`|")
    return f"{disposition}; filename=\"{fallback.strip(' .') or 'document'}\"; filename*=UTF-8''{encoded}"


MAX_CHAT_LENGTH = 5000


def chat_of(db: Session, engagement_id: int, *, after_id: int = 0, last: int | None = None) -> list[ChatOut]:
    """The engagement's chat, oldest first: only messages after `after_id` (polling), or only the `last`
    few, when given."""
    query = select(ChatMessage).where(ChatMessage.engagement_id == engagement_id)
    if after_id > 0:
        query = query.where(col(ChatMessage.id) > after_id)
    if last is None:
        rows = list(db.exec(query.order_by(col(ChatMessage.id))).all())
    else:
        rows = list(reversed(db.exec(query.order_by(col(ChatMessage.id).desc()).limit(last)).all()))
    return [chat_out(m) for m in rows]


def chat_out(m: ChatMessage) -> ChatOut:
    return ChatOut(
        id=m.id or 0, sender=m.sender, sender_name=m.sender_name, body=m.body, created_at=m.created_at
    )


def add_chat(
    db: Session,
    engagement_id: int,
    sender: str,
    sender_name: str,
    body: str,
    actor: Actor,
    firm_id: int | None = None,
) -> ChatOut:
    """One chat message, checked, stored and audited (`sender`: "preparer" or a signer role)."""
    text = body.strip()
    if not text:
        raise ServiceError(Refusal.INVALID, "Write a message first.", "body")
    if len(text) > MAX_CHAT_LENGTH:
        raise ServiceError(Refusal.INVALID, "Keep a message under 5,000 characters.", "body")
    message = ChatMessage(engagement_id=engagement_id, sender=sender, sender_name=sender_name, body=text)
    db.add(message)
    audit.record(db, action="chat.sent", actor=actor, firm_id=firm_id, engagement_id=engagement_id)
    db.commit()
    return chat_out(message)


PDF_MAGIC = b"%PDF-"
IMAGE_MAGIC = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


def sniff_upload(data: bytes) -> str | None:
    """Content type from the bytes themselves, never from the name."""
    if data.startswith(PDF_MAGIC):
        return "application/pdf"
    for magic, kind in IMAGE_MAGIC.items():
        if data.startswith(magic):
            return kind
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc"):
        return "image/heic"
    return None
