"""Sample PDFs (good and bad) for the PDF-layer tests, built in memory so nothing binary is committed."""

from __future__ import annotations

import io
import os
import struct
import zlib

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pypdf import PdfReader, PdfWriter
from reportlab.lib.pagesizes import LETTER
from reportlab.pdfgen import canvas


def make_pdf(pages: int = 2, title: str = "Form 8879") -> bytes:
    """A small text-only PDF; invariant=1 keeps the bytes identical between runs."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=LETTER, invariant=1)
    pdf.setTitle(title)
    for number in range(1, pages + 1):
        pdf.drawString(72, 720, f"{title} - page {number} of {pages}")
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def make_padded_pdf(min_bytes: int) -> bytes:
    """A valid one-page PDF of at least `min_bytes`, padded with incompressible noise in the Info dict."""
    writer = PdfWriter(clone_from=io.BytesIO(make_pdf(pages=1)))
    writer.add_metadata({"/Padding": os.urandom(min_bytes).hex()})
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def make_pageless_pdf() -> bytes:
    """Structurally valid, but its page tree is empty — nothing to show a signer."""
    buffer = io.BytesIO()
    PdfWriter().write(buffer)
    return buffer.getvalue()


def make_encrypted_pdf(user_password: str = "secret") -> bytes:
    writer = PdfWriter(clone_from=io.BytesIO(make_pdf()))
    writer.encrypt(user_password=user_password, owner_password=None, algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def make_truncated_pdf() -> bytes:
    """The first half of a real PDF: right magic bytes, but no cross-reference table or trailer."""
    good = make_pdf()
    return good[: len(good) // 2]


def make_png() -> bytes:
    """A genuine 1x1 PNG, e.g. a photo renamed to `return.pdf`."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\xff\xff")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def make_exe() -> bytes:
    """The start of a Windows executable (MZ header), as in an attachment renamed to `.pdf`."""
    return b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(240)


def make_certified_pdf(signer: signers.Signer) -> bytes:
    """A PDF whose author certified it with DocMDP 'no changes allowed', so nobody may sign it after."""
    writer = IncrementalPdfFileWriter(io.BytesIO(make_pdf()))
    meta = signers.PdfSignatureMetadata(
        field_name="Preparer",
        certify=True,
        docmdp_permissions=fields.MDPPerm.NO_CHANGES,
        subfilter=fields.SigSeedSubFilter.PADES,
    )
    output = signers.sign_pdf(writer, meta, signer=signer, bytes_reserved=16384)
    return bytes(output.getvalue())


def page_count(pdf: bytes) -> int:
    """Independent page count (pypdf) to cross-check the module under test."""
    return len(PdfReader(io.BytesIO(pdf)).pages)
