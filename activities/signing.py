"""Between the database and the PDF layer: what the signing and sealing activities hand to pyHanko.

The activities in activities/engagement.py stay thin; this module turns rows into stamps, boxes and
certificates, and seals an engagement's documents idempotently.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pyhanko.keys import load_certs_from_pemder
from pyhanko.sign import signers
from pyhanko.sign.timestamps import TimeStamper
from pyhanko_certvalidator import ValidationContext
from sqlmodel import Session, col, select, update
from temporalio.exceptions import ApplicationError

from activities.types import SealDocuments, SealResult, SignRequest, SignResult
from core import audit_chain
from core.config import Settings
from core.context import Resources
from core.crypto import sha256_hex
from core.models import Document, Engagement, Firm, Signature, Signer
from esign import boxes, long_term, pdfsign, seal, stamp
from esign.certificate import render_certificate, render_certificate_page
from esign.records import EngagementRecord, collect_record

log = logging.getLogger("portico.signing")


def timestamper(settings: Settings) -> TimeStamper | None:
    """The time-stamp authority client (PAdES B-T), or None for B-B."""
    if not settings.tsa_url:
        return None
    return pdfsign.timestamper_for(settings.tsa_url, settings.tsa_timeout_seconds)


def long_term_context(settings: Settings, pdf_signer: signers.SimpleSigner) -> ValidationContext | None:
    """With a time-stamp authority, what fetches the CA's OCSP/CRLs so the seal reaches PAdES B-LTA.

    Anchored in the signing chain, the time-stamp authority's own chain and any extra trust roots. The
    same bounded timeout as the time-stamp authority: a CA that does not answer fails the seal, which
    Temporal retries, instead of holding it. A signing certificate that names no OCSP responder or CRL
    (the development CA's) has no revocation information to embed: its seals stay B-T.
    """
    stamper, cert = timestamper(settings), pdf_signer.signing_cert
    if stamper is None or cert is None or not long_term.declares_revocation(cert):
        return None
    chain = [issuer for issuer in pdf_signer.cert_registry if issuer is not None]
    extra = [root for path in settings.trust_roots for root in load_certs_from_pemder([str(path)])]
    anchors = [*chain, *long_term.timestamp_chain(stamper), *extra]
    return long_term.validation_context(anchors, settings.tsa_timeout_seconds)


def with_validation_info(settings: Settings, pdf_signer: signers.SimpleSigner, signed: bytes) -> bytes:
    """Right after a time-stamped signature: its revocation information in the DSS (PAdES B-LT).

    A CA that does not answer within the timeout does not fail the client's signature: it stays B-T,
    logged as an error, and the seal, which insists (and is retried), embeds it for every signature.
    """
    context = long_term_context(settings, pdf_signer)
    if context is None:
        return signed
    try:
        return long_term.add_validation_info(signed, context, newest_only=True)
    except long_term.RevocationUnavailable as error:
        log.error("signature kept at PAdES B-T, without revocation information: %s", error)
        return signed


def visible_signature(
    image_png: bytes | None, signer: Signer, doc: Document, at: datetime
) -> pdfsign.VisibleSignature:
    """The signer's stamp (drawn image, printed name, the time the workflow accepted the signature) on
    their signature place, and the signing date, initials or printed name in their other places."""
    role = signer.role.value
    how = f" ({signer.signature_method})" if signer.signature_method else ""  # drawn, typed or uploaded
    caption = f"{role.capitalize()} - signed electronically{how} {at:%Y-%m-%d %H:%M} UTC"
    places = [place for place in boxes.loads(doc.signature_boxes) if place.role == role]
    signature = next((_page_box(p) for p in places if p.kind == "signature"), None)
    return pdfsign.VisibleSignature(
        image_png=image_png,
        text=stamp.StampText(signer.full_name, caption),
        preparer_box=signature,
        marks=tuple(
            stamp.Mark(p.kind, _page_box(p), mark_text(p.kind, signer, at))
            for p in places
            if p.kind != "signature"
        ),
    )


def mark_text(kind: str, signer: Signer, at: datetime) -> str:
    """What a date, initials or name place shows: the signing date as the signer's forms write it."""
    if kind == "date":
        return f"{at.astimezone(local_zone(signer.time_zone)):%m/%d/%Y}"
    if kind == "initials":
        return "".join(part[0].upper() for part in (signer.first_name, signer.last_name) if part)
    return signer.full_name


def local_zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _page_box(place: boxes.SignatureBox) -> stamp.PageBox:
    return stamp.PageBox(place.page, place.x, place.y, place.width, place.height)


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
        anchor = audit_chain.anchor(resources.engine, audit_chain.chain_key(resources.cipher), req.at)
        record = dataclasses.replace(record, completed_at=req.at, audit_anchor=anchor)
        alive()
        firm = session.get(Firm, engagement.firm_id)
        seal_with = _Sealer(
            pdf_signer,
            f"{firm.name if firm else 'Portico'} (Portico e-signature seal)",
            timestamper(resources.settings),
            long_term_context(resources.settings, pdf_signer),
        )
        _ensure_certificate(session, resources, engagement, record, req.at, seal_with)
        sealed_ids = []
        for doc in _documents_to_seal(session, req.engagement_id):
            if doc.sealed_at is None:
                alive()
                _seal_document(session, resources, seal_with, doc, record, req.at)
            sealed_ids.append(doc.id or 0)
        return SealResult(sealed_ids, engagement.certificate_sha256 or "")


@dataclass(frozen=True)
class _Sealer:
    """How this run seals: the key, the name on the seal, and the long-term material (None: B-B)."""

    signer: signers.SimpleSigner
    name: str
    timestamper: TimeStamper | None
    long_term: ValidationContext | None

    def seal(self, pdf: bytes, certificate_page: bytes | None) -> bytes:
        return seal.seal_pdf(
            pdf,
            self.signer,
            certificate_page=certificate_page,
            sealer_name=self.name,
            timestamper=self.timestamper,
            long_term=self.long_term,
        )


def _ensure_certificate(
    session: Session,
    resources: Resources,
    engagement: Engagement,
    record: EngagementRecord,
    at: datetime,
    seal_with: _Sealer,
) -> None:
    """Render the certificate of completion and seal it like the documents, once: a copy sent on its own
    is tamper-evident. A retry after the commit finds it done; one before renders and seals again."""
    if engagement.certificate_key is not None:
        return
    pdf = seal_with.seal(render_certificate(record), certificate_page=None)
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
            .where(
                Document.engagement_id == engagement_id,
                col(Document.id).in_(signed),
                col(Document.replaced_by).is_(None),  # a corrected copy took its place: never signed in full
            )
            .order_by(col(Document.id))
        )
    )


def _seal_document(
    session: Session,
    resources: Resources,
    seal_with: _Sealer,
    doc: Document,
    record: EngagementRecord,
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
        sealed = seal_with.seal(pdf, render_certificate_page(record, width, height))
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
