"""Verifying a PDF: every signature it carries, and whether Portico has the very same file on record.

Used by `portico verify-pdf` and by the preparer's POST /api/verify. pyHanko validation runs `asyncio.run`
inside, so call `verify_pdf` from a thread (a sync route or the CLI), never from a running event loop.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path

from pyhanko.keys import load_certs_from_pemder
from pypdf import PdfReader
from sqlmodel import Session, select

from core import dev_secrets
from core.config import Settings
from core.crypto import sha256_hex
from core.models import Document, Engagement, Signature
from esign import long_term, pdfsign

CERTIFICATE_DOCUMENT_ID = 0
"""RecordMatch.document_id of an engagement's certificate of completion, which is no Document row."""
CERTIFICATE_NAME = "Certificate of completion"


@dataclass(frozen=True)
class RecordMatch:
    """The document in Portico's record whose bytes are exactly this file."""

    engagement_id: int
    document_id: int
    name: str
    version: str
    """Which version: 'sealed', 'as sent', "after the taxpayer's signature", ..."""


@dataclass(frozen=True)
class VerificationReport:
    sha256: str
    pages: int | None
    signatures: list[pdfsign.SignatureReport]
    record: RecordMatch | None
    problem: str | None = None
    """Why the signatures could not be read at all (not a PDF, damaged)."""

    @property
    def sealed(self) -> bool:
        return any(s.locks_document or s.certification for s in self.signatures)

    @property
    def all_signatures_hold(self) -> bool:
        return bool(self.signatures) and all(s.holds for s in self.signatures)


def trust_roots(settings: Settings) -> list[Path]:
    """Portico's CA: the development CA in development, the configured chain, and any extra roots."""
    roots = [*settings.signing_chain, *settings.trust_roots]
    dev_ca = settings.data_dir / dev_secrets.SIGNING_DIR_NAME / "dev-ca-cert.pem"
    if dev_ca.is_file():
        roots.append(dev_ca)
    return roots


def verify_pdf(
    pdf: bytes, roots: list[Path], session: Session | None = None, firm_id: int | None = None
) -> VerificationReport:
    """Validate the signatures and look the file up in the record (only `firm_id`'s, when given)."""
    digest = sha256_hex(pdf)
    record = find_in_record(session, digest, firm_id) if session is not None else None
    if not pdf.startswith(pdfsign.PDF_MAGIC):
        return VerificationReport(digest, None, [], record, problem="The file is not a PDF.")
    try:
        signatures = with_long_term_levels(pdf, roots, pdfsign.read_signatures(pdf, roots))
    except Exception as error:  # a damaged file gets a report saying so, not a crash
        return VerificationReport(digest, None, [], record, problem=f"The PDF cannot be read: {error}")
    return VerificationReport(digest, _pages(pdf), signatures, record)


def with_long_term_levels(
    pdf: bytes, roots: list[Path], signatures: list[pdfsign.SignatureReport]
) -> list[pdfsign.SignatureReport]:
    """Mark the time-stamped signatures that reach PAdES B-LT or B-LTA from the file's own material."""
    if not any(s.timestamp_time is not None for s in signatures) or b"/DSS" not in pdf:
        return signatures  # B-LT needs a time-stamp and embedded validation data: skip the slow check
    certificates = [cert for path in roots for cert in load_certs_from_pemder([str(path)])]
    statuses = long_term.assess(pdf, certificates)
    if len(statuses) != len(signatures):
        return signatures
    return [
        dataclasses.replace(
            report,
            long_term=status.validates and report.timestamp_time is not None,
            archived=status.validates and status.archived_at is not None,
        )
        for report, status in zip(signatures, statuses, strict=True)
    ]


def _pages(pdf: bytes) -> int | None:
    try:
        return len(PdfReader(io.BytesIO(pdf), strict=False).pages)
    except Exception:  # a report on a broken file still says what it can
        return None


def find_in_record(session: Session, sha256: str, firm_id: int | None = None) -> RecordMatch | None:
    """The document version with exactly these bytes: current (sealed), as sent, or after a signature."""
    for doc in _documents(session, firm_id, Document.current_sha256 == sha256):
        version = "sealed" if doc.sealed_at is not None else "latest"
        return RecordMatch(doc.engagement_id, doc.id or 0, doc.name, version)
    for doc in _documents(session, firm_id, Document.sha256 == sha256):
        return RecordMatch(doc.engagement_id, doc.id or 0, doc.name, "as sent")
    query = select(Signature, Document).join(Document).where(Signature.sha256_after == sha256)
    for signature, doc in session.exec(query):
        if _firm_ok(session, doc, firm_id):
            version = f"after the {signature.role.value}'s signature"
            return RecordMatch(doc.engagement_id, doc.id or 0, doc.name, version)
    for engagement in session.exec(select(Engagement).where(Engagement.certificate_sha256 == sha256)):
        if firm_id is None or engagement.firm_id == firm_id:
            return RecordMatch(engagement.id or 0, CERTIFICATE_DOCUMENT_ID, CERTIFICATE_NAME, "as issued")
    return None


def _documents(session: Session, firm_id: int | None, condition: object) -> list[Document]:
    rows = session.exec(select(Document).where(condition))  # type: ignore[arg-type]
    return [doc for doc in rows if _firm_ok(session, doc, firm_id)]


def _firm_ok(session: Session, doc: Document, firm_id: int | None) -> bool:
    # Another firm's documents are not ours to confirm: to that preparer they are simply unknown.
    if firm_id is None:
        return True
    engagement = session.get(Engagement, doc.engagement_id)
    return engagement is not None and engagement.firm_id == firm_id


# --- text for the command line -----------------------------------------------------------------------------


def describe(report: VerificationReport, file_name: str = "") -> str:
    lines = [f"File: {file_name}" if file_name else "File:", f"  SHA-256: {report.sha256}"]
    if report.pages is not None:
        lines.append(f"  Pages: {report.pages}")
    if report.problem:
        lines.append(f"Problem: {report.problem}")
    lines.append(f"Signatures: {len(report.signatures) or 'none'}")
    for number, sig in enumerate(report.signatures, start=1):
        lines.extend(_describe_signature(number, sig))
    lines.append("Portico record: " + _describe_record(report.record))
    verdict = "every signature holds" if report.all_signatures_hold else "NOT every signature holds"
    sealed = "; sealed against changes" if report.sealed else ""
    lines.append(f"Result: {verdict}{sealed}.")
    return "\n".join(lines)


def _describe_signature(number: int, sig: pdfsign.SignatureReport) -> list[str]:
    kind = "seal (locks the document)" if sig.locks_document else "approval"
    if sig.certification:
        kind = "certification"
    claimed = f"{sig.signing_time:%Y-%m-%d %H:%M:%S %Z}" if sig.signing_time else "not stated"
    stamped = f"{sig.timestamp_time:%Y-%m-%d %H:%M:%S %Z}" if sig.timestamp_time else "none"
    return [
        f"  {number}. {sig.field_name}: {sig.signer_name} ({kind}, {sig.level})",
        f"     signed at: {claimed} (signer's clock); time-stamp token: {stamped}",
        f"     covers: {_coverage(sig.coverage)}; later changes: {_changes(sig.modification_level)}"
        f" ({'allowed' if sig.docmdp_ok is not False else 'NOT allowed'})",
        f"     intact: {_yes(sig.intact)}  valid: {_yes(sig.valid)}"
        f"  trusted (Portico CA): {_yes(sig.trusted)}",
    ]


def _coverage(level: str) -> str:
    return {
        "ENTIRE_FILE": "the entire file",
        "ENTIRE_REVISION": "its revision of the file (later signatures were added after it)",
    }.get(level, level.lower())


def _changes(level: str) -> str:
    return {
        "NONE": "none",
        "LTA_UPDATES": "validation data only",
        "FORM_FILLING": "later signatures and form filling only",
        "ANNOTATIONS": "annotations",
        "OTHER": "other changes to the document",
    }.get(level, level.lower())


def _yes(value: bool) -> str:
    return "yes" if value else "NO"


def _describe_record(match: RecordMatch | None) -> str:
    if match is None:
        return "no match - this exact file is not one Portico issued (or it was changed since)."
    if match.document_id == CERTIFICATE_DOCUMENT_ID:
        return f"matches the certificate of completion ({match.version}) of engagement {match.engagement_id}."
    return (
        f"matches '{match.name}' ({match.version}), document {match.document_id} "
        f"of engagement {match.engagement_id}."
    )
