"""The certificate of completion, drawn with reportlab from an EngagementRecord.

Two renderings of the same content: letter pages for download and the record export, and one page of a
given width (as tall as the content needs) that the seal shrinks onto the page reserved in each document.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    Frame,
    Image,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from core import audit
from esign.records import DocumentRecord, EngagementRecord, SignatureEvent, SignerRecord, TimelineEntry, utc
from esign.stamp import printable

MARGIN = 40.0
# The one-page rendering is shrunk onto a normal page; past this many page heights the text would be too
# small to read, so the timeline is shortened there (the full one is in the downloadable certificate).
MAX_PAGE_HEIGHTS = 2.0
GRID = colors.HexColor("#c8c8c8")
MUTED = colors.HexColor("#555555")
# Changes a signer made to their account after registering, shown beside the authentication they qualify.
ACCOUNT_CHANGES = {
    audit.EMAIL_CHANGED: "email address",
    audit.PHONE_CHANGED: "phone number",
    audit.PASSWORD_CHANGED: "password",
}


def render_certificate(record: EngagementRecord) -> bytes:
    """Letter-size pages with page numbers: the certificate to download, print and keep."""
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=LETTER,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + 10,
        title=f"Certificate of completion - engagement {record.engagement_id}",
        author="Portico",
        invariant=1,
    )
    footer = _footer(record)
    doc.build(_story(record, LETTER[0] - 2 * MARGIN), onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


def render_certificate_page(record: EngagementRecord, width: float, height: float) -> bytes:
    """The whole certificate on one page `width` wide: the seal's appearance on a `width` x `height` page."""
    frame_width = width - 2 * MARGIN
    limit = None
    while True:
        story = _story(record, frame_width, timeline_limit=limit)
        needed = _height(story, frame_width) + 2 * MARGIN
        shown = len(record.timeline) if limit is None else limit
        if needed <= height * MAX_PAGE_HEIGHTS or shown <= 10:
            break
        limit = max(10, int(shown * 0.75))
    page_height = max(height, needed * 1.02)  # a little slack: Frame refuses content that exactly fits
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=(width, page_height), invariant=1)
    canvas.setTitle(f"Certificate of completion - engagement {record.engagement_id}")
    frame = Frame(MARGIN, MARGIN, frame_width, page_height - 2 * MARGIN, showBoundary=0)
    frame.addFromList(_story(record, frame_width, timeline_limit=limit), canvas)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _height(story: list[Flowable], width: float) -> float:
    scratch = Canvas(io.BytesIO())  # some flowables (KeepTogether) measure themselves on a canvas
    total = 0.0
    for flowable in story:
        height = flowable.wrapOn(scratch, width, 1e7)[1]
        total += height + flowable.getSpaceBefore() + flowable.getSpaceAfter()
    return total


def _footer(record: EngagementRecord) -> Callable[[Canvas, Any], None]:
    def draw(canvas: Canvas, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.setFillColor(MUTED)
        text = f"Portico certificate of completion - engagement {record.engagement_id} - page {doc.page}"
        canvas.drawString(MARGIN, MARGIN / 2, text)
        canvas.restoreState()

    return draw


# --- content ----------------------------------------------------------------------------------------------


class _Styles:
    def __init__(self) -> None:
        base = getSampleStyleSheet()
        self.title = ParagraphStyle("title", parent=base["Title"], fontSize=18, leading=22, alignment=0)
        self.heading = ParagraphStyle(
            "heading", parent=base["Heading2"], fontSize=11, leading=14, spaceBefore=10, spaceAfter=4
        )
        self.body = ParagraphStyle("body", parent=base["BodyText"], fontSize=8, leading=10)
        self.small = ParagraphStyle("small", parent=self.body, fontSize=6.5, leading=8)
        self.mono = ParagraphStyle("mono", parent=self.small, fontName="Courier", fontSize=6.5, leading=8)
        self.label = ParagraphStyle("label", parent=self.body, textColor=MUTED)


def _text(value: object) -> str:
    """Markup-safe text in what the standard fonts can show."""
    return escape(printable(str(value)))


def _story(record: EngagementRecord, width: float, timeline_limit: int | None = None) -> list[Flowable]:
    styles = _Styles()
    story: list[Flowable] = [
        Paragraph("Certificate of Completion", styles.title),
        Paragraph(
            f"Electronic signature record - tax year {record.tax_year} - {_text(record.firm)} "
            f"(preparer: {_text(record.preparer)}) - Portico engagement {record.engagement_id}",
            styles.body,
        ),
        Paragraph(f"Completed: every required signature was in at {utc(record.completed_at)}.", styles.body),
        Paragraph("Documents", styles.heading),
    ]
    story.extend(_document(doc, styles) for doc in record.documents)
    story.append(Paragraph("Signers", styles.heading))
    for signer in record.signers:
        story.extend([_signer(signer, styles, width), Spacer(1, 6)])
    story.append(Paragraph("Timeline (UTC)", styles.heading))
    story.append(_timeline(record.timeline, styles, width, timeline_limit))
    story.append(Spacer(1, 8))
    if record.audit_anchor is not None:
        story.append(
            Paragraph(
                f"Audit log head when sealed: entry {record.audit_anchor.seq}, link "
                f"{record.audit_anchor.entry_hash}. <i>portico audit verify --anchor "
                f"{record.audit_anchor}</i> proves the audit log still holds what it held then.",
                styles.small,
            )
        )
    story.append(
        Paragraph(
            "Portico seals this certificate into each signed document with a digital signature that locks "
            "the document against changes. Check a copy with <i>portico verify-pdf</i> or any PAdES "
            "validator; the document as sent is the file's first revision.",
            styles.small,
        )
    )
    return story


def _document(doc: DocumentRecord, styles: _Styles) -> Flowable:
    who = ", ".join(role.capitalize() for role in doc.required_roles) or "no signature needed"
    rows = [
        [Paragraph(f"<b>{_text(doc.name)}</b> - {doc.pages or '?'} page(s) - signed by: {who}", styles.body)],
        [Paragraph(f"SHA-256 as sent: {doc.sha256_sent}", styles.mono)],
        [Paragraph(f"SHA-256 as signed: {_signed_hash(doc)}", styles.mono)],
    ]
    table = Table(rows, hAlign="LEFT")
    table.setStyle(
        TableStyle([("LINEBELOW", (0, -1), (-1, -1), 0.4, GRID), ("LEFTPADDING", (0, 0), (-1, -1), 0)])
    )
    return table


def _signed_hash(doc: DocumentRecord) -> str:
    if doc.replaced_by is not None:
        return f"- (replaced by a corrected copy, document {doc.replaced_by})"
    if not doc.required_roles:
        return "- (no signature needed)"
    return doc.sha256_signed or "not fully signed"


def _signer(signer: SignerRecord, styles: _Styles, width: float) -> Flowable:
    facts = [
        ("Name", signer.full_name),
        ("Role", signer.role.capitalize()),
        ("User name (login ID)", signer.username or "-"),
        ("Email", signer.masked_email or "-"),
        ("Phone", signer.masked_phone or "-"),
        ("Identity verification", signer.identity_verification),
        ("Authentication", signer.authentication),
        *(("Account change", change) for change in _account_changes(signer)),
        ("Signing method", signer.signing_method),
        ("Consent to sign electronically", signer.esign_consent or "None recorded."),
        *((("Identity proofing (KBA)", signer.identity_proofing),) if signer.identity_proofing else ()),
        ("Signature adopted", utc(signer.signature_saved_at)),
    ]
    for event in signer.signatures:
        facts.append((f"Signed {event.document}", _how_signed(event)))
    label_width, image_width, padding = 105.0, 150.0, 6.0
    details_width = width - image_width - 2 * padding  # the outer cells' width, padding included
    detail = Table(
        [[Paragraph(_text(k), styles.label), Paragraph(_text(v), styles.body)] for k, v in facts],
        colWidths=[label_width, details_width - 2 * padding - label_width],
        hAlign="LEFT",
    )
    detail.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    table = Table(
        [[detail, _signature_image(signer, image_width, styles)]],
        colWidths=[details_width, image_width + 2 * padding],
    )
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BOX", (0, 0), (-1, -1), 0.4, GRID),
                ("LINEBEFORE", (1, 0), (1, 0), 0.4, GRID),
                ("LEFTPADDING", (0, 0), (-1, -1), padding),
                ("RIGHTPADDING", (0, 0), (-1, -1), padding),
            ]
        )
    )
    return table  # one row: platypus never splits it across pages


def _how_signed(event: SignatureEvent) -> str:
    if event.method == "paper":
        return (
            f"{utc(event.signed_at)} on paper (a manual signature): scan SHA-256 {event.scan_sha256 or '-'}, "
            f"attested by {event.attested_by or 'unknown'}"
        )
    where = f"IP {event.ip or 'unknown'}, user agent {event.user_agent or 'unknown'}"
    placed = f"; on {event.places}" if event.places else ""
    return f"{utc(event.signed_at)} from {where}{placed}"


def _account_changes(signer: SignerRecord) -> list[str]:
    """`2026-03-03 14:15:00 UTC: email address changed from she*****com to she*****org`, oldest first."""
    changes = []
    for event in signer.authentication_events:
        what = ACCOUNT_CHANGES.get(event.action)
        if what is None:
            continue
        before, after = event.detail.get("from"), event.detail.get("to")
        moved = f" from {before or '-'} to {after or '-'}" if before or after else ""
        changes.append(f"{utc(event.at)}: {what} changed{moved}")
    return changes


def _signature_image(signer: SignerRecord, max_width: float, styles: _Styles) -> Flowable:
    if signer.signature_png is None:
        return Paragraph("No signature image on file.", styles.small)
    reader = ImageReader(io.BytesIO(signer.signature_png))
    pixel_w, pixel_h = reader.getSize()
    scale = min(max_width / pixel_w, 60 / pixel_h)
    image = Image(
        io.BytesIO(signer.signature_png), width=pixel_w * scale, height=pixel_h * scale, mask="auto"
    )
    digest = signer.signature_sha256 or ""
    caption = Paragraph(f"Signature image SHA-256:<br/>{digest[:32]}<br/>{digest[32:]}", styles.mono)
    box = Table([[image], [caption]], colWidths=[max_width])
    box.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return box


def _timeline(entries: list[TimelineEntry], styles: _Styles, width: float, limit: int | None) -> Flowable:
    shown = entries if limit is None else entries[-limit:]
    rows = [[Paragraph(f"<b>{h}</b>", styles.small) for h in ("Time (UTC)", "Who", "What", "From")]]
    if len(shown) < len(entries):
        omitted = len(entries) - len(shown)
        rows.append(
            ["", "", Paragraph(f"{omitted} earlier events: see the full certificate.", styles.small), ""]
        )
    for entry in shown:
        detail = ", ".join(f"{k}={v}" for k, v in sorted(entry.detail.items()))
        what = f"{entry.action}" + (f" ({detail})" if detail else "")
        rows.append(
            [
                Paragraph(utc(entry.at).removesuffix(" UTC"), styles.small),
                Paragraph(_text(entry.actor), styles.small),
                Paragraph(_text(what), styles.small),
                Paragraph(_text(entry.ip or ""), styles.small),
            ]
        )
    table = Table(rows, colWidths=[78, 70, width - 78 - 70 - 70, 70], repeatRows=1, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.black),
                ("LINEBELOW", (0, 1), (-1, -1), 0.25, GRID),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 2),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    return table
