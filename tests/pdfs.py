"""Sample PDFs (good and bad) for the PDF-layer tests, built in memory so nothing binary is committed."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageDraw
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    TextStringObject,
)
from reportlab.lib.pagesizes import LETTER
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen import canvas


def make_pdf(pages: int = 2, title: str = "Form 8879", sign_lines: bool = True) -> bytes:
    """A small text-only PDF; invariant=1 keeps the bytes identical between runs. With `sign_lines`, its
    last page prints the taxpayer's and the spouse's signature lines, where Portico finds their places."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=LETTER, invariant=1)
    pdf.setTitle(title)
    for number in range(1, pages + 1):
        pdf.drawString(72, 720, f"{title} - page {number} of {pages}")
        if sign_lines and number == pages:
            for label, y in (("Taxpayer's signature", 200), ("Spouse's signature", 140)):
                pdf.drawString(72, y, label)
                pdf.line(190, y - 2, 400, y - 2)
                pdf.drawString(420, y, "Date")
                pdf.line(450, y - 2, 540, y - 2)
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


def _written(writer: PdfWriter) -> bytes:
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def make_indirect_launch_pdf() -> bytes:
    """An /OpenAction that launches a program, its action name written indirectly (`/S 7 0 R`), which a
    check comparing `/S` to a name without resolving the reference misses."""
    writer = PdfWriter(clone_from=io.BytesIO(make_pdf(pages=1)))
    launch = writer._add_object(NameObject("/Launch"))
    writer._root_object[NameObject("/OpenAction")] = DictionaryObject(
        {NameObject("/S"): launch, NameObject("/F"): TextStringObject("C:\\Windows\\System32\\calc.exe")}
    )
    return _written(writer)


def make_xfa_pdf() -> bytes:
    """A PDF whose AcroForm carries an XFA form (the pages are drawn from the XML when it is opened)."""
    writer = PdfWriter(clone_from=io.BytesIO(make_pdf(pages=1)))
    xml = DecodedStreamObject()
    xml.set_data(b'<xdp:xdp xmlns:xdp="http://ns.adobe.com/xdp/"><template/></xdp:xdp>')
    writer._root_object[NameObject("/AcroForm")] = DictionaryObject(
        {NameObject("/Fields"): ArrayObject(), NameObject("/XFA"): writer._add_object(xml)}
    )
    return _written(writer)


def make_embedded_file_pdf() -> bytes:
    """A PDF with a file attached inside it (an /EmbeddedFiles name tree), here a renamed executable."""
    writer = PdfWriter(clone_from=io.BytesIO(make_pdf(pages=1)))
    writer.add_attachment("w2-viewer.exe", make_exe())
    return _written(writer)


def page_count(pdf: bytes) -> int:
    """Independent page count (pypdf) to cross-check the module under test."""
    return len(PdfReader(io.BytesIO(pdf)).pages)


# A Form 8879-like page: Part II has the taxpayer's and the spouse's signature lines at these heights.
TAXPAYER_LINE_Y = 330
SPOUSE_LINE_Y = 270
TAXPAYER_FIELD_BOX = (160, TAXPAYER_LINE_Y, 400, TAXPAYER_LINE_Y + 44)
SPOUSE_FIELD_BOX = (160, SPOUSE_LINE_Y, 400, SPOUSE_LINE_Y + 44)


def make_form_8879(pages: int = 2, with_fields: bool = False) -> bytes:
    """A look-alike of IRS Form 8879 (not the real form): Part II's signature lines on page 1.

    With `with_fields`, the PDF carries empty signature fields named Taxpayer and Spouse on those lines,
    as a preparer's software may produce.
    """
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=LETTER, invariant=1)
    pdf.setTitle("Form 8879")
    _draw_8879_page_one(pdf)
    for number in range(2, pages + 1):
        pdf.setFont("Helvetica", 9)
        pdf.drawString(72, 720, f"Form 8879 (2025) - page {number}: instructions for the ERO")
        pdf.drawString(72, 700, "Keep this form for 3 years. Do not send it to the IRS.")
        pdf.showPage()
    pdf.save()
    if not with_fields:
        return buffer.getvalue()
    writer = IncrementalPdfFileWriter(io.BytesIO(buffer.getvalue()))
    for name, box in (("Taxpayer", TAXPAYER_FIELD_BOX), ("Spouse", SPOUSE_FIELD_BOX)):
        fields.append_signature_field(writer, fields.SigFieldSpec(name, box=box, on_page=0))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _draw_8879_page_one(pdf: canvas.Canvas) -> None:
    pdf.setFont("Helvetica-Bold", 14)
    pdf.drawString(72, 740, "Form 8879  IRS e-file Signature Authorization  (2025)")
    pdf.setFont("Helvetica", 9)
    lines = [
        "Part I  Tax Return Information - Tax Year Ending December 31, 2025 (Whole dollars only)",
        "1  Adjusted gross income ................................................  1   84,210",
        "2  Total tax ............................................................  2    9,877",
        "3  Federal income tax withheld from Form(s) W-2 and Form(s) 1099 .......  3   11,002",
        "4  Amount you want refunded to you .....................................  4    1,125",
        "",
        "Part II  Taxpayer Declaration and Signature Authorization",
        "Under penalties of perjury, we declare that we have examined a copy of our electronic individual",
        "income tax return and accompanying schedules and statements, and to the best of our knowledge and",
        "belief, they are true, correct, and complete. We authorize the ERO to enter our PIN as signature.",
    ]
    for number, line in enumerate(lines):
        pdf.drawString(72, 700 - 14 * number, line)
    for label, y in (("Your signature", TAXPAYER_LINE_Y), ("Spouse's signature", SPOUSE_LINE_Y)):
        pdf.drawString(72, y + 4, label)
        pdf.line(160, y, 400, y)
        pdf.drawString(420, y + 4, "Date")
        pdf.line(450, y, 540, y)
    pdf.drawString(72, 200, "Part III  Certification and Authentication - ERO's EFIN/PIN")
    pdf.drawString(72, 186, "ERO's signature ___________________________   Date ____________")
    pdf.showPage()


# --- looking at rendered pages (poppler) ---------------------------------------------------------------


def poppler_tool(name: str) -> str:
    """Path of a poppler-utils program; missing on CI fails the test run, elsewhere it skips the test."""
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if found is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{name} is missing on CI: install poppler-utils")
        pytest.skip(f"{name} (poppler-utils) is not installed")
    return found


def render_page(pdf: bytes, page: int, dpi: int = 144) -> Image.Image:
    """Page `page` (1 = first) as an RGB image, drawn by poppler's pdftoppm, annotations included."""
    tool = poppler_tool("pdftoppm")
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "in.pdf"
        source.write_bytes(pdf)
        subprocess.run(
            [tool, "-f", str(page), "-l", str(page), "-r", str(dpi), "-png", "-singlefile", str(source),
             str(Path(folder) / "out")],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        with Image.open(Path(folder) / "out.png") as image:
            return image.convert("RGB")


def changed_area(before: Image.Image, after: Image.Image) -> tuple[tuple[int, int, int, int] | None, int]:
    """Bounding box (pixels) of everything drawn between two renderings, and how many pixels changed."""
    difference = ImageChops.difference(before.convert("L"), after.convert("L"))
    changed = difference.point(lambda value: 255 if value > 40 else 0)
    return changed.getbbox(), changed.histogram()[255]


def ink_in(before: Image.Image, after: Image.Image, box: tuple[float, float, float, float]) -> int:
    """Pixels drawn between two 72-dpi renderings inside (x0, y0, x1, y1), points from the lower left."""
    x0, y0, x1, y1 = box
    crop = (int(x0), int(before.height - y1), int(x1) + 1, int(before.height - y0) + 1)
    difference = ImageChops.difference(before.convert("L").crop(crop), after.convert("L").crop(crop))
    return difference.point(lambda v: 255 if v > 40 else 0).histogram()[255]


def box_in_pixels(
    box: tuple[float, float, float, float], page_height: float, dpi: int = 144
) -> tuple[float, float, float, float]:
    """(x1, y1, x2, y2) in PDF points from the lower left -> (left, top, right, bottom) image pixels."""
    scale = dpi / 72
    x1, y1, x2, y2 = box
    return x1 * scale, (page_height - y2) * scale, x2 * scale, (page_height - y1) * scale


def page_text(pdf: bytes, page: int) -> str:
    """Text poppler extracts from one page, annotation appearances (stamps, the certificate) included."""
    tool = poppler_tool("pdftotext")
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "in.pdf"
        source.write_bytes(pdf)
        done = subprocess.run(
            [tool, "-f", str(page), "-l", str(page), "-layout", str(source), "-"],
            check=True, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return done.stdout


# ---- forms with printed signature lines (no form fields), as tax software prints them ----------------------


@dataclass(frozen=True)
class SignLine:
    """Where a form prints one signer's line, in upright (displayed) page space: x0..x1 at height y."""

    role: str
    kind: str  # "signature" or "date"
    page: int
    x0: float
    x1: float
    y: float


@dataclass(frozen=True)
class PrintedForm:
    pdf: bytes
    lines: tuple[SignLine, ...]
    rotate: int = 0
    size: tuple[float, float] = (612.0, 792.0)  # the page's own (unrotated) width and height

    def line(self, role: str, kind: str = "signature") -> SignLine:
        return next(line for line in self.lines if line.role == role and line.kind == kind)


_FONTS = ("Helvetica", "Times-Roman", "Courier")


def _upright(pdf: canvas.Canvas, rotate: int, size: tuple[float, float]) -> None:
    """Draw in upright displayed space on a page whose /Rotate is `rotate` (as landscape forms do)."""
    width, height = size
    if rotate == 90:
        pdf.translate(width, 0)
        pdf.rotate(90)
    elif rotate == 180:
        pdf.translate(width, height)
        pdf.rotate(180)
    elif rotate == 270:
        pdf.translate(0, height)
        pdf.rotate(270)


def print_form_8879(
    *,
    joint: bool = True,
    font: str = "Helvetica",
    rotate: int = 0,
    page: int = 1,
    top: float = 300.0,
    left: float = 54.0,
    taxpayer_label: str = "Your signature",
    client_text: str = "Jordan A. Rivera  XXX-XX-1234",
) -> PrintedForm:
    """Form 8879's Part II as tax software prints it: "Your signature >" and "Date >" on one ruled line.

    `page` puts Part II on that page (earlier pages are the return); `top` moves it up and down."""
    size = (612.0, 792.0)
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=size, invariant=1)
    lines: list[SignLine] = []
    for number in range(1, page + 1):
        pdf.saveState()
        _upright(pdf, rotate, size)
        display_width = size[1] if rotate in (90, 270) else size[0]
        right = display_width - 54
        pdf.setFont("Helvetica-Bold", 14)
        pdf.drawString(
            left,
            top + 380,
            "Form 8879  IRS e-file Signature Authorization" if number == page else "Form 1040",
        )
        pdf.setFont(font, 9)
        pdf.drawString(left, top + 350, f"Taxpayer's name: {client_text}")
        if number == page:
            pdf.drawString(left, top + 120, "Part II  Taxpayer Declaration and Signature Authorization")
            rows = [("taxpayer", taxpayer_label, top)]
            if joint:
                rows.append(("spouse", "Spouse's signature", top - 90))
            for role, text, y in rows:
                pdf.drawString(
                    left, y + 40, "I authorize ERO firm name to enter or generate my PIN as my signature."
                )
                pdf.drawString(left, y, f"{text} >")
                date_x = right - 150
                pdf.drawString(date_x, y, "Date >")
                pdf.setLineWidth(0.5)
                pdf.line(left, y - 3, right, y - 3)
                label_end = left + stringWidth(f"{text} >", font, 9)
                lines.append(SignLine(role, "signature", number, label_end, date_x, y - 3))
                lines.append(
                    SignLine(role, "date", number, date_x + stringWidth("Date >", font, 9), right, y - 3)
                )
        pdf.restoreState()
        pdf.showPage()
    pdf.save()
    return PrintedForm(_rotated(buffer.getvalue(), rotate), tuple(lines), rotate, size)


def _rotated(pdf: bytes, rotate: int) -> bytes:
    """Set every page's /Rotate (reportlab's own setting also swaps the media box, which forms do not)."""
    if not rotate:
        return pdf
    writer = PdfWriter(clone_from=io.BytesIO(pdf))
    for page in writer.pages:
        page.rotation = rotate
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_engagement_letter(*, joint: bool = True, font: str = "Times-Roman") -> PrintedForm:
    """An engagement letter's close: a line, "Taxpayer's signature" printed under it, "Date" beside."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=LETTER, invariant=1)
    pdf.setFont(font, 11)
    pdf.drawString(72, 700, "Engagement letter: 2026 individual income tax return")
    pdf.drawString(72, 680, "Please sign below to confirm the terms of this engagement.")
    lines: list[SignLine] = []
    rows = [("taxpayer", "Taxpayer's signature", 300.0)]
    if joint:
        rows.append(("spouse", "Spouse's signature", 220.0))
    for role, text, y in rows:
        pdf.setLineWidth(0.7)
        pdf.line(72, y, 330, y)
        pdf.line(380, y, 540, y)
        pdf.drawString(72, y - 13, text)
        pdf.drawString(380, y - 13, "Date")
        lines.append(SignLine(role, "signature", 1, 72, 330, y))
        lines.append(SignLine(role, "date", 1, 380, 540, y))
    pdf.showPage()
    pdf.save()
    return PrintedForm(buffer.getvalue(), tuple(lines))


def make_form_1040_sign_here(*, joint: bool = True) -> PrintedForm:
    """Form 1040's "Sign Here": each label heads a ruled cell; the signature goes in the cell beneath it."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=LETTER, invariant=1)
    pdf.setFont("Helvetica-Bold", 12)
    pdf.drawString(36, 740, "Form 1040  U.S. Individual Income Tax Return 2026")
    pdf.setFont("Helvetica", 7)
    lines: list[SignLine] = []
    rows = [("taxpayer", "Your signature", 200.0)]
    if joint:
        rows.append(("spouse", "Spouse's signature. If a joint return, both must sign.", 168.0))
    pdf.drawString(
        92, 232, "Under penalties of perjury, I declare that I have examined this return and accompanying"
    )
    pdf.setLineWidth(0.5)
    pdf.line(90, 228, 576, 228)
    for role, text, y in rows:
        pdf.drawString(92, y + 18, text)
        pdf.drawString(330, y + 18, "Date")
        pdf.drawString(390, y + 18, "Occupation")
        pdf.line(90, y - 4, 576, y - 4)
        lines.append(SignLine(role, "signature", 1, 92, 326, y - 4))
        lines.append(SignLine(role, "date", 1, 330, 386, y - 4))
    pdf.showPage()
    pdf.save()
    return PrintedForm(buffer.getvalue(), tuple(lines))


def photo_of_signed_page() -> bytes:
    """A JPEG of a printed page with a pen signature, as a phone takes it."""
    image = Image.new("RGB", (1240, 1754), (240, 238, 232))
    draw = ImageDraw.Draw(image)
    for y in range(200, 1500, 60):
        draw.line([(120, y), (1120, y)], (60, 60, 60), 2)
    draw.line([(300, 1600), (500, 1540), (700, 1620), (900, 1550)], (20, 30, 90), 6)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()
