"""The e-signature record of an engagement: what the certificate of completion and the JSON export hold.

It covers the IRS "Electronic Signature Guidance for Forms 8878 and 8879" record: the signed form, date and
time of each signature, IP address, login ID, identity-verification result and signing method, and the
engagement's whole timeline from the audit log. Read-only over the database and document store.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core import audit
from core.audit_chain import ChainAnchor
from core.client_accounts import account_of_signer
from core.identity import mask_email, mask_phone
from core.models import (
    AccountLink,
    AuditEntry,
    Direction,
    Document,
    Engagement,
    EsignConsent,
    Firm,
    IdentityCheck,
    IdentityUnlock,
    OutboxMessage,
    Preparer,
    Signature,
    Signer,
    TaxpayerAccount,
)
from core.storage import DocumentStore
from esign import boxes

RECORD_VERSION = 1
SIGNING_METHOD = (
    "{how} adopted once in the Portico client portal, applied by the signer clicking Sign on "
    "each document; Portico then adds a PAdES digital signature naming the signer."
)
# How the adopted signature was made (Signer.signature_method); None: saved before Portico recorded it.
ADOPTED = {
    "drawn": "Drawn signature",
    "typed": "Typed name, written in a handwriting font,",
    "uploaded": "Uploaded picture of a handwritten signature",
}
CHANNEL_WORDS = {"email": "email", "sms": "text message"}
# Audit actions that show how a signer proved who they are, shown beside each signer; "account." are the
# signer's own later changes (password, email, phone, their codes and notices: core/audit.py).
AUTH_ACTIONS = ("registration.", "code.", "verification.", "login", "account.")
# The workflow's idempotency key of a verification code: "<workflow id>:code:<role>:<number>".
CODE_KEY = ":code:{role}:"


class RecordNotReady(Exception):
    """The engagement has no sealed certificate yet."""


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    actor: str
    action: str
    ip: str | None
    user_agent: str | None
    detail: dict[str, Any]

    @property
    def role(self) -> str | None:
        """The signer this entry is about: the acting taxpayer, else the role named in the detail."""
        if self.actor.startswith("taxpayer:"):
            return self.actor.partition(":")[2]
        role = self.detail.get("role")
        return str(role) if role else None


def describe_places(places: list[boxes.SignatureBox], role: str) -> str:
    """ "page 2: signature, date" for one signer's places."""
    pages: dict[int, list[str]] = {}
    for place in places:
        if place.role == role:
            pages.setdefault(place.page, []).append(place.kind)
    return "; ".join(f"page {page}: {', '.join(kinds)}" for page, kinds in sorted(pages.items()))


@dataclass(frozen=True)
class SignatureEvent:
    document_id: int
    document: str
    role: str
    signed_at: datetime
    ip: str | None
    user_agent: str | None
    sha256_after: str | None
    places: str = ""
    """Where this signature was put, e.g. "page 2: signature, date"; empty: the form's own field."""
    method: str = "electronic"  # or "paper": signed by hand, shown by a scan
    attested_by: str = ""  # for a paper signature: who vouched for it ("preparer:7", "taxpayer:spouse")
    scan_sha256: str = ""  # for a paper signature: the uploaded scan's digest


@dataclass(frozen=True)
class SignerRecord:
    role: str
    full_name: str
    username: str | None
    masked_email: str | None
    masked_phone: str | None
    identity_verification: str
    authentication: str
    signing_method: str
    registered_at: datetime | None
    verified_at: datetime | None
    verified_channel: str | None
    signature_saved_at: datetime | None
    signature_sha256: str | None
    signature_png: bytes | None = field(repr=False)
    signatures: list[SignatureEvent]
    authentication_events: list[TimelineEntry]
    esign_consent: str = ""
    """The consent to sign electronically in force when the signer signed (ESIGN Act §101(c))."""
    identity_proofing: str = ""
    """Knowledge-based authentication before a remote 8879 signature (IRS Pub 1345): each set's outcome,
    the provider and its reference; empty when none was asked."""


@dataclass(frozen=True)
class DocumentRecord:
    document_id: int
    name: str
    pages: int | None
    size: int
    sha256_sent: str
    sha256_signed: str | None
    """After the last signature, before the seal: what the certificate vouches for."""
    sha256_current: str
    """The sealed version once sealed (the certificate cannot contain this: it is inside that file)."""
    sealed_at: datetime | None
    required_roles: list[str]
    signatures: list[SignatureEvent]
    replaced_by: int | None = None
    """A corrected copy took this document's place: its signatures (if any) no longer count."""


@dataclass(frozen=True)
class EngagementRecord:
    record_version: int
    engagement_id: int
    tax_year: int
    firm: str
    preparer: str
    completed_at: datetime | None
    certificate_sha256: str | None
    documents: list[DocumentRecord]
    signers: list[SignerRecord]
    timeline: list[TimelineEntry]
    audit_anchor: ChainAnchor | None = None
    """The audit chain's head when the certificate was sealed (set by the seal, printed in the certificate):
    the certificate then proves the log it saw (`portico audit verify --anchor`)."""


# --- collecting ---------------------------------------------------------------------------------------


def collect_record(
    session: Session, store: DocumentStore, engagement_id: int, *, until: datetime | None = None
) -> EngagementRecord:
    """The record as the database holds it; `until` leaves out audit entries after that instant."""
    engagement = session.get(Engagement, engagement_id)
    if engagement is None:
        raise LookupError(f"engagement {engagement_id} does not exist")
    firm, preparer = session.get(Firm, engagement.firm_id), session.get(Preparer, engagement.preparer_id)
    timeline = _timeline(session, engagement_id, until)
    documents = _documents(session, engagement_id)
    events = [event for doc in documents for event in doc.signatures]
    signers = [
        _signer_record(session, store, signer, timeline, events)
        for signer in session.exec(
            select(Signer).where(Signer.engagement_id == engagement_id).order_by(col(Signer.role).desc())
        )
    ]
    return EngagementRecord(
        record_version=RECORD_VERSION,
        engagement_id=engagement_id,
        tax_year=engagement.tax_year,
        firm=firm.name if firm else "",
        preparer=preparer.name if preparer else "",
        completed_at=engagement.sealed_at,
        certificate_sha256=engagement.certificate_sha256,
        documents=documents,
        signers=signers,
        timeline=timeline,
    )


def _scan_digests(session: Session, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.exec(select(Document.id, Document.sha256).where(col(Document.id).in_(ids))).all()
    return {doc_id or 0: digest for doc_id, digest in rows}


def _timeline(session: Session, engagement_id: int, until: datetime | None) -> list[TimelineEntry]:
    query = select(AuditEntry).where(AuditEntry.engagement_id == engagement_id)
    if until is not None:
        query = query.where(AuditEntry.at <= until)
    rows = session.exec(query.order_by(col(AuditEntry.at), col(AuditEntry.id))).all()
    return [
        TimelineEntry(row.at, row.actor, row.action, row.ip, row.user_agent, json.loads(row.detail or "{}"))
        for row in rows
    ]


def _documents(session: Session, engagement_id: int) -> list[DocumentRecord]:
    docs = session.exec(
        select(Document)
        .where(Document.engagement_id == engagement_id, Document.direction == Direction.TO_CLIENT)
        .order_by(col(Document.id))
    ).all()
    records = []
    for doc in docs:
        signatures = session.exec(
            select(Signature).where(Signature.document_id == doc.id).order_by(col(Signature.signed_at))
        ).all()
        scans = _scan_digests(session, [s.scan_document_id for s in signatures if s.scan_document_id])
        events = [
            SignatureEvent(
                doc.id or 0,
                doc.name,
                s.role.value,
                s.signed_at,
                s.ip,
                s.user_agent,
                s.sha256_after,
                describe_places(boxes.loads(doc.signature_boxes), s.role.value)
                if s.method != "paper"
                else "",
                method=s.method,
                attested_by=s.attested_by or "",
                scan_sha256=scans.get(s.scan_document_id or 0, ""),
            )
            for s in signatures
            if s.signed_at is not None
        ]
        all_signed = bool(signatures) and len(events) == len(signatures)
        # The PDF as its last electronic signature left it; signed only on paper, the PDF as sent.
        electronic = [e.sha256_after for e in events if e.method != "paper" and e.sha256_after]
        records.append(
            DocumentRecord(
                document_id=doc.id or 0,
                name=doc.name,
                pages=doc.pages,
                size=doc.size,
                sha256_sent=doc.sha256,
                sha256_signed=(electronic[-1] if electronic else doc.sha256) if all_signed else None,
                sha256_current=doc.current_sha256,
                sealed_at=doc.sealed_at,
                required_roles=[s.role.value for s in signatures],
                signatures=events,
                replaced_by=doc.replaced_by,
            )
        )
    return records


def _signer_record(
    session: Session,
    store: DocumentStore,
    signer: Signer,
    timeline: list[TimelineEntry],
    events: list[SignatureEvent],
) -> SignerRecord:
    role = signer.role.value
    account = account_of_signer(session, signer.id or 0)
    mine = [entry for entry in timeline if entry.role == role]
    image = store.get(signer.signature_key) if signer.signature_key else None
    email = account.email if account else signer.email
    phone = account.phone if account else signer.phone
    return SignerRecord(
        role=role,
        full_name=signer.full_name,
        username=account.username if account else None,
        masked_email=mask_email(email) if email else None,
        masked_phone=mask_phone(phone) if phone else None,
        identity_verification=_identity_result(mine),
        authentication=_authentication(session, signer, account, mine),
        signing_method=SIGNING_METHOD.format(
            how=ADOPTED.get(signer.signature_method or "", "Drawn signature")
        ),
        registered_at=account.created_at if account else None,
        verified_at=account.verified_at if account else None,
        verified_channel=account.verified_channel if account else None,
        signature_saved_at=signer.signature_saved_at,
        signature_sha256=hashlib.sha256(image).hexdigest() if image else None,
        signature_png=image,
        signatures=[event for event in events if event.role == role],
        authentication_events=[e for e in mine if any(a in e.action for a in AUTH_ACTIONS)],
        esign_consent=_consent(session, account, signer, [e for e in events if e.role == role]),
        identity_proofing=_proofing(session, signer),
    )


def _proofing(session: Session, signer: Signer) -> str:
    """Each set of identity questions the signer was asked, its outcome and the provider's reference
    (never the questions or answers, which Portico does not keep)."""
    checks = session.exec(
        select(IdentityCheck)
        .where(IdentityCheck.engagement_id == signer.engagement_id, IdentityCheck.role == signer.role)
        .order_by(col(IdentityCheck.set_number))
    ).all()
    if not checks:
        return ""
    unlocks = session.exec(
        select(IdentityUnlock).where(
            IdentityUnlock.engagement_id == signer.engagement_id, IdentityUnlock.role == signer.role
        )
    ).all()
    provider = checks[-1].provider
    dev = " (the development provider: not a real identity check)" if provider == "dev" else ""
    sets = "; ".join(
        f"set {c.set_number} {c.outcome or 'not answered'}"
        + (f" at {utc(c.answered_at)}" if c.answered_at else "")
        + (f", reference {c.reference_id}" if c.reference_id else "")
        for c in checks
    )
    passed = any(c.outcome == "passed" for c in checks)
    verdict = "Passed" if passed else "Not passed (signed on paper where it was required)"
    more = (
        f"; the firm allowed {len(unlocks)} more set(s): {'; '.join(u.reason for u in unlocks)}"
        if unlocks
        else ""
    )
    return f"{verdict}: knowledge-based authentication by provider {provider}{dev}: {sets}{more}."


def _consent(
    session: Session, account: TaxpayerAccount | None, signer: Signer, events: list[SignatureEvent]
) -> str:
    """The account's consent to the firm's disclosure that its first signature here relied on."""
    engagement = session.get(Engagement, signer.engagement_id)
    if account is None or engagement is None:
        return "None recorded."
    first = min((e.signed_at for e in events), default=None)
    query = select(EsignConsent).where(
        EsignConsent.account_id == account.id, EsignConsent.firm_id == engagement.firm_id
    )
    if first is not None:
        query = query.where(EsignConsent.agreed_at <= first)
    row = session.exec(query.order_by(col(EsignConsent.agreed_at).desc())).first()
    if row is None:
        return "None recorded."
    withdrawn = f"; withdrawn {utc(row.withdrawn_at)}" if row.withdrawn_at else ""
    return (
        f"Agreed to disclosure version {row.version} (SHA-256 {row.text_sha256[:16]}…) at "
        f"{utc(row.agreed_at)} from IP {row.ip or 'unknown'}, user agent {row.user_agent or 'unknown'}"
        f"{withdrawn}."
    )


def _identity_result(entries: list[TimelineEntry]) -> str:
    mismatches = sum(1 for e in entries if e.action == "registration.mismatch")
    passed = next((e for e in entries if e.action == "registration.completed"), None)
    linked = next((e for e in entries if e.action == "account.linked"), None)
    tries = f"{mismatches} failed attempt{'s' if mismatches != 1 else ''} before"
    if passed is None and linked is not None:
        return (
            f"Passed at {utc(linked.at)}, when the signer's existing portal account added this return: last "
            f"name and last four digits of the SSN matched the return, and so did the account's verified "
            f"email address or phone number ({tries})."
        )
    if passed is None:
        return f"Not verified ({tries})."
    return (
        f"Passed at {utc(passed.at)}: last name, last four digits of the SSN and the email address or phone "
        f"number matched the return ({tries})."
    )


def _authentication(
    session: Session, signer: Signer, account: TaxpayerAccount | None, entries: list[TimelineEntry]
) -> str:
    if account is None:
        return "No portal account."
    if account.verified_at is None or account.verified_channel is None:
        return "Password; the one-time code was never confirmed."
    channel = account.verified_channel
    link = session.get(AccountLink, signer.id)
    if link is not None and link.via == "invitation":
        how = CHANNEL_WORDS.get(channel, channel)
        return (
            f"Password + one-time code: the account was verified at {utc(account.verified_at)} by a code "
            f"sent by {how} for an earlier return, signed in with its password (and a fresh code on a new "
            f"browser), and added this return at {utc(link.linked_at)}."
        )
    destination = _code_destination(session, signer, account, channel, entries)
    return (
        f"Password + one-time code sent by {CHANNEL_WORDS.get(channel, channel)} to {destination}, "
        f"confirmed at {utc(account.verified_at)}; later logins from a new browser need a fresh code."
    )


def _code_destination(
    session: Session, signer: Signer, account: TaxpayerAccount, channel: str, entries: list[TimelineEntry]
) -> str:
    """Where the code that verified the account went, masked, as recorded when it was sent: the outbox
    row of the workflow's last code to this signer (each new code replaces the one before, and none is
    sent once verified). The account row is no witness: the signer may have changed the address since."""
    row = session.exec(
        select(OutboxMessage)
        .where(
            OutboxMessage.engagement_id == signer.engagement_id,
            OutboxMessage.purpose == "code",
            OutboxMessage.channel == channel,
            col(OutboxMessage.idempotency_key).contains(CODE_KEY.format(role=signer.role.value)),
        )
        .order_by(col(OutboxMessage.id).desc())
    ).first()
    if row is not None:
        return _masked(channel, row.destination)
    # No outbox row: every change is audited with the address it replaced, so the first change after
    # verification names the address the code went to; with none, it is the address in use now.
    changed = audit.EMAIL_CHANGED if channel == "email" else audit.PHONE_CHANGED
    verified_at = account.verified_at
    first_change = next(
        (e for e in entries if e.action == changed and verified_at is not None and e.at >= verified_at), None
    )
    if first_change is not None and first_change.detail.get("from"):
        return str(first_change.detail["from"])
    if channel == "email":
        return _masked(channel, signer.email or account.email)
    return _masked(channel, signer.phone or account.phone)


def _masked(channel: str, destination: str) -> str:
    return mask_email(destination) if channel == "email" else mask_phone(destination)


def utc(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "-"


# --- exporting ----------------------------------------------------------------------------------------


def record_json(record: EngagementRecord) -> bytes:
    """The record as JSON: UTC ISO 8601 times, the signature images as base64 PNG."""
    return json.dumps(dataclasses.asdict(record), default=_json_value, indent=2, sort_keys=True).encode()


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot encode {type(value).__name__}")


def export_record(session: Session, store: DocumentStore, engagement_id: int) -> bytes:
    """A zip of the sealed PDFs, the originals as sent, the certificate of completion and the JSON record."""
    engagement = session.get(Engagement, engagement_id)
    if engagement is None:
        raise LookupError(f"engagement {engagement_id} does not exist")
    if engagement.certificate_key is None:
        raise RecordNotReady("The record is ready once every required signature is in and sealed.")
    record = collect_record(session, store, engagement_id)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        _add(archive, "certificate-of-completion.pdf", store.get(engagement.certificate_key))
        _add(archive, "e-signature-record.json", record_json(record))
        for doc in session.exec(
            select(Document).where(
                Document.engagement_id == engagement_id, Document.direction == Direction.TO_CLIENT
            )
        ):
            name = f"{doc.id}-{_zip_name(doc.name)}"
            _add(archive, f"signed/{name}", store.get(doc.current_key))
            _add(archive, f"as-sent/{name}", store.get(doc.storage_key))
    return buffer.getvalue()


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    # A fixed date keeps two exports of the same record byte-identical.
    info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def _zip_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in " .-_()" else "_" for c in name).strip(" .")
    return cleaned or "document.pdf"


__all__ = [
    "DocumentRecord",
    "EngagementRecord",
    "RecordNotReady",
    "SignerRecord",
    "TimelineEntry",
    "collect_record",
    "export_record",
    "record_json",
]
