"""Sealing a signed document: the certificate of completion becomes the appearance of a locking signature.

Why not a certification (DocMDP) signature: ISO 32000 allows one only as the *first* signature of a
document, and pyHanko refuses it after the signers' approval signatures. ISO 32000-2 instead lets an
approval signature lock the document (/Lock with /P 1, Acrobat's "lock document after signing"), which
pyHanko and Acrobat enforce. The certificate itself is drawn on the page reserved with the first signature
(see stamp.reserve_certificate_page), so no earlier signature sees a page added after it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from pyhanko.pdf_utils.content import ResourceType
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import BoxConstraints
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.stamp import BaseStamp, BaseStampStyle
from pyhanko_certvalidator import ValidationContext
from reportlab.lib.pagesizes import LETTER

from esign import long_term as long_term_validation
from esign import pdfsign, stamp

SEAL_REASON = "Certificate of completion: every required signature is in; no further changes are allowed"


class AlreadySealed(Exception):
    """The document already carries Portico's seal."""


def seal_pdf(
    pdf: bytes,
    signer: signers.SimpleSigner,
    *,
    certificate_page: bytes | None,
    sealer_name: str,
    timestamper: TimeStamper | None = None,
    long_term: ValidationContext | None = None,
) -> bytes:
    """Sign the seal field with the certificate page (a one-page PDF) as its appearance, locking the file.

    With `long_term` (which needs a `timestamper`), the validation data of every signature and of the
    seal goes into the document, and a document time-stamp closes it: PAdES B-LTA. A PDF without a
    reserved seal field (e.g. the certificate of completion itself) is sealed invisibly.
    """
    _check_sealable(pdf)
    if long_term is not None:
        if timestamper is None:
            raise ValueError("Long-term validation needs a time-stamp authority")
        long_term_validation.check_signer(signer, long_term)
        pdf = long_term_validation.add_validation_info(pdf, long_term)
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=True)
    found = stamp.seal_field(writer)
    style: CertificateStampStyle | None = None
    spec = None
    if found is not None:
        if certificate_page is None:
            raise ValueError("The document reserves a certificate page, but no page was given to draw")
        style = CertificateStampStyle(page_pdf=certificate_page)
    else:
        # Signed before certificate pages were reserved: adding the page now would count against the
        # earlier signatures, so seal invisibly; the certificate travels beside it in the record.
        spec = fields.SigFieldSpec(
            stamp.SEAL_FIELD,
            field_mdp_spec=fields.FieldMDPSpec(fields.FieldMDPAction.ALL),
            doc_mdp_update_value=fields.MDPPerm.NO_CHANGES,
        )
    meta = pdfsign.pades_metadata(
        stamp.SEAL_FIELD, sealer_name, reason=SEAL_REASON, docmdp=fields.MDPPerm.NO_CHANGES
    )
    if long_term is not None:
        meta = long_term_validation.archival_metadata(meta, long_term)
    pdf_signer = signers.PdfSigner(
        meta, signer, timestamper=timestamper, stamp_style=style, new_field_spec=spec
    )
    reserved = pdfsign.contents_reservation(signer, timestamper)
    return pdfsign.write_signature(pdf_signer, writer, reserved)


def _check_sealable(pdf: bytes) -> None:
    reader = PdfFileReader(io.BytesIO(pdf), strict=True)
    found = stamp.seal_field(reader)
    if found is not None and found[1]:
        raise AlreadySealed("The document is already sealed")
    if stamp.locked_by(reader) is not None:
        raise ValueError("The document is locked against changes by another signature")


def certificate_page_size(pdf: bytes) -> tuple[float, float]:
    """Width and height of the reserved certificate page (its seal field covers it), else US Letter."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    for _, _, field_ref in fields.enumerate_sig_fields(reader, with_name=stamp.SEAL_FIELD):
        x1, y1, x2, y2 = (float(v) for v in field_ref.get_object()["/Rect"])
        if abs(x2 - x1) > 1 and abs(y2 - y1) > 1:
            return abs(x2 - x1), abs(y2 - y1)
    return LETTER


def is_sealed(pdf: bytes) -> bool:
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    found = stamp.seal_field(reader)
    return found is not None and found[1]


@dataclass(frozen=True)
class CertificateStampStyle(BaseStampStyle):
    """Draws page 1 of `page_pdf` over the whole reserved page, shrunk to fit when it is taller."""

    page_pdf: bytes = b""
    border_width: int = 0

    def create_stamp(
        self, writer: BasePdfFileWriter, box: BoxConstraints, text_params: dict[str, Any]
    ) -> CertificateStamp:
        return CertificateStamp(writer, self, box)


class CertificateStamp(BaseStamp):
    style: CertificateStampStyle

    def _render_inner_content(self) -> list[bytes]:
        assert self.writer is not None
        reader = PdfFileReader(io.BytesIO(self.style.page_pdf), strict=False)
        xobject = self.writer.import_page_as_xobject(reader, page_ix=0)
        x1, y1, x2, y2 = (float(v) for v in xobject.get_object()["/BBox"])
        page_w, page_h = abs(x2 - x1), abs(y2 - y1)
        box_w, box_h = float(self.box.width), float(self.box.height)
        scale = min(1.0, box_w / page_w, box_h / page_h)
        x = (box_w - page_w * scale) / 2 - min(x1, x2) * scale
        y = box_h - page_h * scale - min(y1, y2) * scale  # top-aligned, like a page
        self.set_resource(category=ResourceType.XOBJECT, name=pdf_name("/Certificate"), value=xobject)
        return [b"q %.4f 0 0 %.4f %.2f %.2f cm /Certificate Do Q" % (scale, scale, x, y)]
