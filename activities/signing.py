"""Between the database and the PDF layer: what the signing and sealing activities hand to pyHanko.

The activities in activities/engagement.py stay thin; this module turns rows into stamps, boxes and
certificates, and seals an engagement's documents idempotently.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from datetime import datetime

from pyhanko.sign import signers
from pyhanko.sign.timestamps import TimeStamper
from sqlmodel import Session, col, select, update
from temporalio.exceptions import ApplicationError

from activities import pdfsign, seal, stamp
from activities.certificate import render_certificate, render_certificate_page
from activities.records import EngagementRecord, collect_record
from core.config import Settings
from core.context import Resources
from core.crypto import sha256_hex
from core.models import Document, Engagement, Firm, Signature, Signer
from workflows.types import SealDocuments, SealResult, SignatureBox, SignRequest, SignResult

log = logging.getLogger("portico.signing")


def timestamper(settings: Settings) -> TimeStamper | None:
    """The time-stamp authority client (PAdES B-T), or None for B-B."""
    if not settings.tsa_url:
        return None
    return pdfsign.timestamper_for(settings.tsa_url, settings.tsa_timeout_seconds)


def visible_signature(
    image_png: bytes | None, signer: Signer, doc: Document, at: datetime
) -> pdfsign.VisibleSignature:
    """The signer's stamp: drawn image, printed name, and the date the workflow accepted the signature."""
    role = signer.role.value
    caption = f"{role.capitalize()} - signed electronically {at:%Y-%m-%d %H:%M} UTC"
    return pdfsign.VisibleSignature(
        image_png=image_png,
        text=stamp.StampText(signer.full_name, caption),
        preparer_box=preparer_box(doc, role),
    )


def preparer_box(doc: Document, role: str) -> stamp.PageBox | None:
    for raw in json.loads(doc.signature_boxes or "[]"):
        box = SignatureBox(**raw)
        if box.role == role:
            return stamp.PageBox(box.page, box.x, box.y, box.width, box.height)
    return None


def boxes_json(boxes: list[SignatureBox]) -> str:
    return json.dumps([dataclasses.asdict(box) for box in boxes])


# --- recording a signature ---------------------------------------------------------------------------


def claim_signature(
    session: Session, signature: Signature, base_key: str, key: str, digest: str, req: SignRequest
) -> bool:
    """Make `key` the document's current version, only if it still is `base_key` and this signer's row
    is still unsigned; True when this attempt's signature is the one recorded.

    Compare-and-set in SQL: an attempt that outlived its timeout, while a retry and a later signature
    finished, must not replace the newer version and so drop that later signature.
    """
    moved = session.execute(
        update(Document)
        .where(col(Document.id) == signature.document_id, col(Document.current_key) == base_key)
        .values(current_key=key, current_sha256=digest)
    )
    claimed = session.execute(
        update(Signature)
        .where(col(Signature.id) == signature.id, col(Signature.signed_at).is_(None))
        .values(
            signed_at=req.at,
            sha256_after=digest,
            ip=req.actor.ip,
            user_agent=req.actor.user_agent,
            version_key=key,
        )
    )
    if _rows(moved) == 1 and _rows(claimed) == 1:
        session.commit()
        return True
    session.rollback()
    return False


def signed_meanwhile(session: Session, req: SignRequest) -> SignResult:
    """After losing the race: the result another attempt recorded, or a retry on the newer version."""
    session.expire_all()
    signature = session.exec(
        select(Signature).where(Signature.document_id == req.document_id, Signature.role == req.role)
    ).one()
    if signature.signed_at is not None:
        return SignResult(req.document_id, req.role, signature.signed_at, signature.sha256_after or "")
    # Another signature landed first: retrying signs on top of it (Temporal retries, with backoff).
    raise ApplicationError("The document changed while it was being signed", type="DocumentChanged")


def _rows(result: object) -> int:
    return int(getattr(result, "rowcount", 0))


# --- sealing ---------------------------------------------------------------------------------------------


def seal_engagement(
    resources: Resources,
    pdf_signer: signers.SimpleSigner,
    req: SealDocuments,
    alive: Callable[[], None] = lambda: None,
) -> SealResult:
    """Render the certificate once, then seal each signed document that is not sealed yet.

    Every step commits on its own and is skipped when already done, so a retry after a crash continues
    where the last attempt stopped and never seals a document twice. `alive` is called before each step
    (the activity's heartbeat: a worker that died mid-seal is noticed in seconds, not at the timeout).
    """
    store = resources.store
    with Session(resources.engine, expire_on_commit=False) as session:
        engagement = session.get(Engagement, req.engagement_id)
        if engagement is None:
            raise LookupError(f"engagement {req.engagement_id} does not exist")
        # Audit entries up to the seal request only: a retry renders exactly the same certificate.
        record = collect_record(session, store, req.engagement_id, until=req.at)
        record = dataclasses.replace(record, completed_at=req.at)
        alive()
        _ensure_certificate(session, resources, engagement, record, req.at)
        firm = session.get(Firm, engagement.firm_id)
        sealer = f"{firm.name if firm else 'Portico'} (Portico e-signature seal)"
        sealed_ids = []
        for doc in _documents_to_seal(session, req.engagement_id):
            if doc.sealed_at is None:
                alive()
                _seal_document(session, resources, pdf_signer, doc, record, sealer, req.at)
            sealed_ids.append(doc.id or 0)
        return SealResult(sealed_ids, engagement.certificate_sha256 or "")


def _ensure_certificate(
    session: Session, resources: Resources, engagement: Engagement, record: EngagementRecord, at: datetime
) -> None:
    if engagement.certificate_key is not None:
        return
    pdf = render_certificate(record)
    key = resources.store.new_key("certificates")
    resources.store.put(key, pdf)
    engagement.certificate_key, engagement.certificate_sha256 = key, sha256_hex(pdf)
    engagement.sealed_at = at
    session.add(engagement)
    session.commit()


def _documents_to_seal(session: Session, engagement_id: int) -> list[Document]:
    signed = select(Signature.document_id).distinct()
    return list(
        session.exec(
            select(Document)
            .where(Document.engagement_id == engagement_id, col(Document.id).in_(signed))
            .order_by(col(Document.id))
        )
    )


def _seal_document(
    session: Session,
    resources: Resources,
    pdf_signer: signers.SimpleSigner,
    doc: Document,
    record: EngagementRecord,
    sealer: str,
    at: datetime,
) -> None:
    base_key = doc.current_key
    pdf = resources.store.get(base_key)
    key = base_key
    if seal.is_sealed(pdf):  # belt and braces: the row says unsealed, the file says otherwise
        log.warning("document %s is already sealed in storage; recording it as sealed", doc.id)
        sealed = pdf
    else:
        width, height = seal.certificate_page_size(pdf)
        sealed = seal.seal_pdf(
            pdf,
            pdf_signer,
            certificate_page=render_certificate_page(record, width, height),
            sealer_name=sealer,
            timestamper=timestamper(resources.settings),
        )
        key = resources.store.new_key("sealed")
        resources.store.put(key, sealed)
    # Conditional, like a signature: of two overlapping attempts only one seal is recorded. The signed
    # version stays in storage under the last Signature's version_key.
    done = session.execute(
        update(Document)
        .where(
            col(Document.id) == doc.id,
            col(Document.current_key) == base_key,
            col(Document.sealed_at).is_(None),
        )
        .values(current_key=key, current_sha256=sha256_hex(sealed), sealed_at=at)
    )
    session.commit()
    if _rows(done) != 1 and key != base_key:
        resources.store.delete(key)


# --- boxes the preparer places when sending ------------------------------------------------------------

BOX_KEYS = ("role", "page", "x", "y", "width", "height")


def parse_signature_boxes(raw: str | None) -> list[SignatureBox]:
    """Boxes from the send form: a JSON list of {role, page, x, y, width, height}, PDF points; '' = none."""
    if not raw or not raw.strip():
        return []
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError("The signature boxes are not valid JSON.") from exc
    if not isinstance(items, list):
        raise ValueError("The signature boxes must be a list.")
    boxes = [_box(item) for item in items]
    roles = [box.role for box in boxes]
    if len(set(roles)) != len(roles):
        raise ValueError("Place one signature box per signer.")
    return boxes


def _box(item: object) -> SignatureBox:
    if not isinstance(item, dict) or set(item) != set(BOX_KEYS):
        raise ValueError(f"Each signature box needs exactly: {', '.join(BOX_KEYS)}.")
    if item["role"] not in ("taxpayer", "spouse"):
        raise ValueError("A signature box is for the taxpayer or the spouse.")
    numbers = [item[key] for key in BOX_KEYS[1:]]
    if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
        raise ValueError("A signature box's page and coordinates must be numbers.")
    return SignatureBox(item["role"], int(item["page"]), *(float(n) for n in numbers[1:]))


def page_boxes(boxes: list[SignatureBox]) -> dict[str, stamp.PageBox]:
    return {box.role: stamp.PageBox(box.page, box.x, box.y, box.width, box.height) for box in boxes}
