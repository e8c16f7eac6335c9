"""The signature page Portico appends when a document has no place for a signer and the preparer asks for
one: "Taxpayer's signature ____ Date ____" for each signer who has no place elsewhere."""

from __future__ import annotations

import io
from collections.abc import Sequence

from pypdf import PdfReader, PdfWriter
from reportlab.pdfgen import canvas

from esign.boxes import SignatureBox

LABELS = {"taxpayer": "Taxpayer's signature", "spouse": "Spouse's signature"}
MARGIN = 72.0
ROW = 110.0  # from one signer's line to the next
LINE_HEIGHT = 36.0  # the signature place above each line


def append_signature_page(pdf: bytes, roles: Sequence[str], title: str) -> tuple[bytes, list[SignatureBox]]:
    """The document with one more page (the size of its last page) and each signer's places on it."""
    reader = PdfReader(io.BytesIO(pdf), strict=False)
    if _has_signatures(reader):
        raise ValueError(
            "This PDF already carries a signature, and adding a page would break it. "
            "Place each signer on the document's own pages instead."
        )
    last = reader.pages[-1]
    width, height = float(last.mediabox.width), float(last.mediabox.height)
    page, places = _page(width, height, roles, title, page_number=len(reader.pages) + 1)
    writer = PdfWriter(clone_from=reader)
    writer.add_page(PdfReader(io.BytesIO(page)).pages[0])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue(), places


def _page(
    width: float, height: float, roles: Sequence[str], title: str, page_number: int
) -> tuple[bytes, list[SignatureBox]]:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=(width, height), invariant=1)
    pdf.setFont("Helvetica-Bold", 14)
    pdf.drawString(MARGIN, height - MARGIN, "Signatures")
    pdf.setFont("Helvetica", 10)
    pdf.drawString(MARGIN, height - MARGIN - 20, f"For: {title}"[:100])
    date_x = width - MARGIN - 150
    places: list[SignatureBox] = []
    for index, role in enumerate(roles):
        y = height - MARGIN - 120 - index * ROW
        pdf.setLineWidth(0.7)
        pdf.line(MARGIN, y, date_x - 24, y)
        pdf.line(date_x, y, width - MARGIN, y)
        pdf.drawString(MARGIN, y - 13, LABELS.get(role, role.capitalize()))
        pdf.drawString(date_x, y - 13, "Date")
        places.append(SignatureBox(role, page_number, MARGIN, y - 2, date_x - 24 - MARGIN, LINE_HEIGHT))
        places.append(SignatureBox(role, page_number, date_x, y + 1, width - MARGIN - date_x, 16, "date"))
    pdf.showPage()
    pdf.save()
    return buffer.getvalue(), places


def _has_signatures(reader: PdfReader) -> bool:
    fields = reader.get_fields() or {}
    return any(field.get("/FT") == "/Sig" and field.get("/V") is not None for field in fields.values())
