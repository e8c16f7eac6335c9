"""The PDF layer of e-signing: signing, pre-send checks and signature reports (keys: signing_keys).

Pure functions over bytes and files — no database, no Temporal — so the signing activity stays thin and
this module can be tested without a worker. pyHanko's sync entry points call `asyncio.run`, so call
`sign_pdf` and `read_signatures` from a worker thread (a sync activity), never inside a running event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from pyhanko.keys import load_certs_from_pemder
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from pyhanko.sign.validation import read_certification_data, validate_pdf_signature
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext
from pypdf import PdfReader

from core.dev_secrets import DevCertificates, ensure_dev_certificates
from esign import stamp
from esign.active_content import active_content_problem
from esign.signing_keys import SigningSetupError, load_signer

PDF_MAGIC = b"%PDF-"
# What people most often upload by mistake, so the rejection can say what the file really is.
KNOWN_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"MZ": "a Windows program",
    b"PK\x03\x04": "a ZIP archive or Office document",
    b"\xd0\xcf\x11\xe0": "an old-style Office document",
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
}
# Room in /Contents beyond the certificates and any time-stamp token: signature value, signed attributes,
# DER overhead. Generous on purpose: running out fails the signing.
CMS_OVERHEAD_BYTES = 8192

__all__ = [
    "DevCertificates",
    "PdfRejected",
    "SignatureReport",
    "SigningSetupError",
    "VisibleSignature",
    "check_pdf_for_sending",
    "ensure_dev_certificates",
    "load_signer",
    "read_signatures",
    "sign_pdf",
]


class PdfRejected(Exception):
    """A PDF the preparer tried to send cannot be signed; `reason` is shown to them as is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SignatureReport:
    """What a validator concluded about one embedded signature."""

    field_name: str
    """Name of the signature form field, e.g. 'Taxpayer'."""
    signer_name: str
    """The /Name the signer gave, else the certificate's subject."""
    signing_time: dt.datetime | None
    """Signing time as claimed by the signer (not a trusted timestamp)."""
    intact: bool
    """The signed bytes are unchanged."""
    valid: bool
    """The cryptographic signature checks out."""
    trusted: bool
    """The certificate chains to one of the given trust roots."""
    coverage: str
    """SignatureCoverageLevel name: ENTIRE_FILE, ENTIRE_REVISION, ..."""
    modification_level: str
    """ModificationLevel name of later changes (NONE, FORM_FILLING, ...), or UNKNOWN."""
    docmdp_ok: bool | None = None
    """Later changes are ones this signature (and any certification or lock) allows."""
    timestamp_time: dt.datetime | None = None
    """Time from the time-stamp authority's token (PAdES B-T), if there is one."""
    timestamp_ok: bool | None = None
    """The token is intact and valid (None: no token); its TSA need not be trusted."""
    locks_document: bool = False
    """Signing this field forbade every later change (DocMDP 'no changes'): Portico's seal."""
    certification: bool = False
    """A certification (author) signature rather than an approval signature."""
    long_term: bool = False
    """Validates from the certificates and revocation information embedded in the file (PAdES B-LT)."""
    archived: bool = False
    """A valid document time-stamp covers it and its validation data (PAdES B-LTA); see esign.long_term."""

    @property
    def level(self) -> str:
        if self.timestamp_time is None:
            return "PAdES B-B"
        if self.long_term:
            return "PAdES B-LTA" if self.archived else "PAdES B-LT"
        return "PAdES B-T"

    @property
    def holds(self) -> bool:
        """Everything a reader needs: intact, valid, trusted, and nothing disallowed changed since."""
        return self.intact and self.valid and self.trusted and self.docmdp_ok is not False


# --- signing -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VisibleSignature:
    """The stamp a signer sees on the page: their drawn signature, printed name and a dated caption."""

    image_png: bytes | None
    """The drawn signature (PNG); None stamps the text alone."""
    text: stamp.StampText
    preparer_box: stamp.PageBox | None = None
    """This signer's signature place (found on the form or placed by the preparer); used when the PDF has
    no field named for the role."""
    marks: tuple[stamp.Mark, ...] = ()
    """The signer's other places on that page (the date in its box, initials, printed name)."""


def sign_pdf(
    pdf: bytes,
    signer: signers.SimpleSigner,
    *,
    field_name: str,
    signer_name: str,
    reason: str = "Signed with Portico",
    location: str | None = None,
    visible: VisibleSignature | None = None,
    timestamper: TimeStamper | None = None,
    reserve_certificate_page: bool = False,
) -> bytes:
    """Add one PAdES signature as an incremental update, keeping earlier signatures valid.

    B-B without a `timestamper`, B-T with one. With `visible`, the stamp is drawn in the role's box. With
    `reserve_certificate_page`, the first signature also adds the page the seal fills in later.
    """
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=True)
    _refuse_if_sealed(writer)
    style: stamp.SignatureStampStyle | None = None
    if visible is None:
        if any(fields.enumerate_sig_fields(writer, filled_status=True, with_name=field_name)):
            raise ValueError(f"Signature field {field_name!r} is already signed")
        placement = stamp.Placement(field_name, existing=False)
    else:
        style, placement = _stamp_and_place(writer, field_name, visible)
    if reserve_certificate_page:
        stamp.reserve_certificate_page(writer)
    meta = pades_metadata(placement.field_name, signer_name, reason=reason, location=location)
    spec = None
    if not placement.existing:
        spec = fields.SigFieldSpec(placement.field_name, on_page=placement.page_index, box=placement.box)  # type: ignore[arg-type]
    pdf_signer = signers.PdfSigner(
        meta, signer, timestamper=timestamper, stamp_style=style, new_field_spec=spec
    )
    return write_signature(pdf_signer, writer, contents_reservation(signer, timestamper))


def _stamp_and_place(
    writer: IncrementalPdfFileWriter, field_name: str, visible: VisibleSignature
) -> tuple[stamp.SignatureStampStyle, stamp.Placement]:
    """The stamp and its box: the signature place alone, or one box around it and its marks."""
    content_pages = stamp.content_page_count(writer)
    image = stamp.prepare_signature_image(visible.image_png) if visible.image_png else None
    signature = visible.preparer_box
    marks = visible.marks if signature is not None else ()
    box = stamp.combined_box(signature, marks) if signature is not None and marks else signature
    placement = stamp.place_signature(writer, field_name, box, content_pages)
    if placement.existing:  # the form's own field: its widget holds the signature alone
        return stamp.SignatureStampStyle(image=image, text=visible.text), placement
    rotation = stamp.page_rotation(writer, placement.page_index)
    style = stamp.SignatureStampStyle(image=image, text=visible.text, rotation=rotation)
    if box is not None and signature is not None and marks:
        style = dataclasses.replace(
            style,
            signature_region=stamp.upright_region(box, signature, rotation),
            marks=tuple((stamp.upright_region(box, mark.box, rotation), mark) for mark in marks),
        )
    return style, placement


def self_test(signer: signers.SimpleSigner) -> None:
    """Sign and check a blank page once at start-up: a key pyHanko cannot use fails here, not at a client."""
    writer = PdfFileWriter()
    writer.insert_page(
        generic.DictionaryObject(
            {
                generic.pdf_name("/Type"): generic.pdf_name("/Page"),
                generic.pdf_name("/MediaBox"): generic.ArrayObject(
                    [generic.NumberObject(v) for v in (0, 0, 612, 792)]
                ),
            }
        )
    )
    blank = io.BytesIO()
    writer.write(blank)
    try:
        signed = sign_pdf(
            blank.getvalue(), signer, field_name="SelfTest", signer_name="Portico start-up check"
        )
        own_chain = [cert for cert in (signer.signing_cert, *signer.cert_registry) if cert is not None]
        [report] = _read_signatures(signed, own_chain)
    except Exception as error:
        raise SigningSetupError(f"The signing key cannot sign a PDF: {error}") from error
    if not (report.intact and report.valid):
        raise SigningSetupError("The signing key produced a signature that does not verify.")


def pades_metadata(
    field_name: str,
    signer_name: str,
    *,
    reason: str,
    location: str | None = None,
    docmdp: fields.MDPPerm | None = None,
) -> signers.PdfSignatureMetadata:
    """PAdES baseline: ETSI.CAdES.detached, SHA-256; B-T follows from giving the signer a timestamper."""
    return signers.PdfSignatureMetadata(
        field_name=field_name,
        name=signer_name,
        reason=reason,
        location=location,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        # Only a locking field reads this; stating it keeps pyHanko from warning that the field overrides it.
        docmdp_permissions=docmdp or fields.MDPPerm.FILL_FORMS,
    )


def write_signature(
    pdf_signer: signers.PdfSigner, writer: IncrementalPdfFileWriter, bytes_reserved: int
) -> bytes:
    output = io.BytesIO()
    # Reserving the space up front skips pyHanko's dry-run signature, which otherwise doubles the work.
    pdf_signer.sign_pdf(writer, bytes_reserved=bytes_reserved, output=output)
    return output.getvalue()


def _refuse_if_sealed(writer: IncrementalPdfFileWriter) -> None:
    # pyHanko does not enforce a signature's lock when adding another one; a later signature would then
    # break the seal, so refuse here.
    if stamp.locked_by(writer) is not None:
        raise ValueError("The document is sealed against changes and cannot be signed again")


def contents_reservation(signer: signers.SimpleSigner, timestamper: TimeStamper | None = None) -> int:
    """Hex digits to reserve for /Contents: every embedded certificate, the time-stamp token, headroom."""
    certificates = [signer.signing_cert, *signer.cert_registry]
    der_bytes = sum(len(cert.dump()) for cert in certificates if cert is not None) + CMS_OVERHEAD_BYTES
    if timestamper is not None:
        der_bytes += _timestamp_token_size(timestamper)
    return 2 * der_bytes  # hex encoding doubles the size; the result is even as pyHanko requires


@functools.cache
def _timestamp_token_size(timestamper: TimeStamper) -> int:
    # One real request per time-stamp authority and worker; pyHanko caches the token itself too. The
    # token's size varies by a few bytes between requests, which the CMS headroom absorbs.
    token = asyncio.run(timestamper.async_dummy_response("sha256"))
    return len(token.dump())


@functools.lru_cache(maxsize=4)
def timestamper_for(url: str, timeout: float = 10) -> TimeStamper:
    """One client per time-stamp authority URL, so the token size is measured once per worker."""
    return HTTPTimeStamper(url, timeout=timeout)


# --- checks before sending ---------------------------------------------------------------------------


def check_pdf_for_sending(
    pdf: bytes,
    max_bytes: int,
    *,
    roles: Sequence[str] = (),
    boxes: Mapping[str, stamp.PageBox] | None = None,
) -> int:
    """Return the page count of a PDF that can be sent for signature, or raise PdfRejected saying why not.

    `roles` are the signers the preparer asked for and `boxes` where they placed them, so a PDF that the
    client could not sign is refused now rather than when the client clicks Sign.
    """
    if len(pdf) > max_bytes:
        size, limit = _megabytes(len(pdf)), _megabytes(max_bytes)
        raise PdfRejected(f"This file is {size}; the largest file Portico accepts is {limit}.")
    if not pdf.startswith(PDF_MAGIC):
        raise PdfRejected(_not_a_pdf_reason(pdf))
    reader = _open_for_checks(pdf)
    if reader.encrypted:
        raise PdfRejected(
            "This file is encrypted or password-protected. Save an unprotected copy and upload that."
        )
    _reject_if_locked_by_certification(reader)
    pages = _count_pages(pdf, reader)
    if pages == 0:
        raise PdfRejected("This PDF has no pages.")
    _reject_active_content(pdf)
    _check_signers(reader, roles, boxes or {}, pages)
    return pages


def _reject_active_content(pdf: bytes) -> None:
    """Scripts, XFA forms and embedded files: a signer must sign exactly what the pages show."""
    try:
        problem = active_content_problem(PdfReader(io.BytesIO(pdf), strict=False))
    except Exception as error:
        raise _damaged(error) from error
    if problem is not None:
        raise PdfRejected(problem)


def _check_signers(
    reader: PdfFileReader, roles: Sequence[str], boxes: Mapping[str, stamp.PageBox], pages: int
) -> None:
    for role, box in boxes.items():
        if role not in roles:
            raise PdfRejected(f"There is a signature box for the {role}, who does not sign this document.")
        try:
            stamp.check_box(reader, box, pages)
        except ValueError as error:
            raise PdfRejected(str(error)) from error
    for role in roles:
        try:
            stamp.place_signature(reader, role.capitalize(), None, pages)
        except ValueError as error:  # e.g. the PDF's own field for this role is signed already
            raise PdfRejected(f"{error}, so the {role} cannot sign it in Portico.") from error


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _not_a_pdf_reason(data: bytes) -> str:
    for magic, kind in KNOWN_MAGIC.items():
        if data.startswith(magic):
            return f"This file is {kind}, not a PDF. Export or print it to PDF and upload that."
    return "This file is not a PDF. Export or print it to PDF and upload that."


def _damaged(error: Exception) -> PdfRejected:
    return PdfRejected(f"This PDF is damaged and cannot be signed ({error}). Re-export it and upload again.")


def _open_for_checks(pdf: bytes) -> PdfFileReader:
    # pyHanko is what will sign the file, so its strict reader is the gate: what it cannot read, we cannot
    # sign. Damaged files fail in many ways (PdfReadError, KeyError, ...), hence the broad except.
    # The reader is lazy: this only reads the trailer and cross-references; the body is checked later.
    try:
        return PdfFileReader(io.BytesIO(pdf), strict=True)
    except Exception as error:
        raise _damaged(error) from error


def _reject_if_locked_by_certification(reader: PdfFileReader) -> None:
    try:
        certification = read_certification_data(reader)
    except Exception as error:
        raise _damaged(error) from error
    if certification is not None and certification.permission == fields.MDPPerm.NO_CHANGES:
        raise PdfRejected(
            "This PDF is certified by its author with 'no changes allowed', so adding signatures would "
            "break that certification. Upload a copy without the certification signature."
        )
    locked = stamp.locked_by(reader)
    if locked is not None:
        raise PdfRejected(
            f"This PDF is already signed and sealed against changes (signature '{locked}'), for example a "
            "completed Portico document. Upload the unsigned original instead."
        )


def _count_pages(pdf: bytes, reader: PdfFileReader) -> int:
    # pypdf walks the page tree and decodes each page's content: a second, independent parser that finds
    # damage inside streams which pyHanko's lazy reader never touches. Lenient mode, because pyHanko's
    # strict reader has already vouched for the file structure; this pass looks for broken content only.
    try:
        pages = PdfReader(io.BytesIO(pdf), strict=False).pages
        for page in pages:
            contents = page.get_contents()
            if contents is not None:
                contents.get_data()
        declared = int(reader.root["/Pages"]["/Count"])
    except Exception as error:
        raise _damaged(error) from error
    if declared != len(pages):
        raise _damaged(ValueError(f"page tree says {declared} pages, found {len(pages)}"))
    return len(pages)


# --- reading signatures ------------------------------------------------------------------------------


def read_signatures(pdf: bytes, trust_roots: Sequence[Path] = ()) -> list[SignatureReport]:
    """Validate every signature in the PDF, in signing order, trusting only `trust_roots` (no network)."""
    roots = [cert for path in trust_roots for cert in load_certs_from_pemder([str(path)])]
    return _read_signatures(pdf, roots)


def _read_signatures(pdf: bytes, roots: Sequence[asn1_x509.Certificate]) -> list[SignatureReport]:
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)  # report on imperfect files rather than refuse
    # No fetching: the server has no business calling out to OCSP/CRL URLs named inside uploaded files.
    context = ValidationContext(trust_roots=list(roots), allow_fetching=False)
    certification = read_certification_data(reader)
    author_contents = certification.author_sig.get("/Contents") if certification is not None else None
    reports = []
    for embedded in reader.embedded_regular_signatures:
        status = validate_pdf_signature(
            embedded, signer_validation_context=context, ts_validation_context=context
        )
        is_certification = (
            author_contents is not None and embedded.sig_object.get("/Contents") == author_contents
        )
        reports.append(_report(embedded, status, certification=is_certification))
    return reports


def _report(
    embedded: EmbeddedPdfSignature, status: PdfSignatureStatus, *, certification: bool
) -> SignatureReport:
    timestamp = status.timestamp_validity
    return SignatureReport(
        field_name=embedded.field_name,
        signer_name=_signer_name(embedded.sig_object, status.signing_cert),
        signing_time=embedded.self_reported_timestamp,
        intact=status.intact,
        valid=status.valid,
        trusted=status.trusted,
        coverage=status.coverage.name if status.coverage is not None else "UNKNOWN",
        modification_level=(
            status.modification_level.name if status.modification_level is not None else "UNKNOWN"
        ),
        docmdp_ok=status.docmdp_ok,
        timestamp_time=timestamp.timestamp if timestamp is not None else None,
        timestamp_ok=(timestamp.intact and timestamp.valid) if timestamp is not None else None,
        locks_document=embedded.docmdp_level == fields.MDPPerm.NO_CHANGES,
        certification=certification,
    )


def _signer_name(sig_object: dict[str, object], cert: asn1_x509.Certificate) -> str:
    name = sig_object.get("/Name")
    return str(name) if name else str(cert.subject.human_friendly)
