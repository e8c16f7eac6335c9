"""Forms for the placement tests: the same form printed for different clients (their names, SSNs and
amounts differ; the form's own words do not), and another form, drawn with reportlab."""

from __future__ import annotations

import io

from reportlab.lib.pagesizes import LETTER
from reportlab.pdfgen import canvas

DECLARATION = (
    "Under penalties of perjury, I declare that I have examined a copy of the income tax return and "
    "accompanying schedules and statements for the tax year shown above, and to the best of my knowledge "
    "and belief it is true, correct, and complete. I consent to allow my intermediate service provider, "
    "transmitter, or electronic return originator to send my return to the IRS and to receive an "
    "acknowledgement of receipt or reason for rejection of the transmission and the reason for any delay "
    "in processing the return or refund."
)
PART_ONE = (
    "Adjusted gross income",
    "Total tax",
    "Federal income tax withheld from Forms W-2 and 1099",
    "Amount you want refunded to you",
    "Amount you owe",
)


def _wrapped(text: str, width: int = 100) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line]


def signature_form(
    *,
    client: str = "Shelby O'Neil and Jordan O'Neil",
    ssn: str = "123-45-6789",
    year: int = 2025,
    amounts: tuple[int, ...] = (84210, 9877, 11002, 1125, 0),
    form: str = "8879",
    title: str = "IRS e-file Signature Authorization",
    pages: int = 2,
    part_one: tuple[str, ...] = PART_ONE,
    declaration: str = DECLARATION,
    taxpayer_label: str = "Your signature",
) -> bytes:
    """An 8879-like form: a title, the client's name and SSN, Part I's amounts, the declaration, and
    Part II's "Your signature" / "Spouse's signature" lines each with a "Date" box. `part_one`,
    `declaration` and `form` make another form; `taxpayer_label` a firm's own wording of the line."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=LETTER, invariant=1)
    pdf.setTitle(f"Form {form}")
    pdf.setFont("Helvetica-Bold", 14)
    pdf.drawString(54, 740, f"Form {form}  {title}  {year}")
    pdf.setFont("Helvetica", 9)
    pdf.drawString(54, 716, f"Taxpayer's name  {client}")
    pdf.drawString(400, 716, f"Social security number  {ssn}")
    pdf.drawString(54, 694, f"Part I  Tax Return Information - Tax Year Ending December 31, {year}")
    for number, (label, amount) in enumerate(zip(part_one, amounts, strict=False), start=1):
        pdf.drawString(54, 694 - 14 * number, f"{number}  {label}")
        pdf.drawRightString(558, 694 - 14 * number, f"{amount:,}")
    pdf.drawString(54, 600, "Part II  Taxpayer Declaration and Signature Authorization")
    for number, line in enumerate(_wrapped(declaration)):
        pdf.drawString(54, 586 - 12 * number, line)
    for label, y in ((taxpayer_label, 330), ("Spouse's signature", 270)):
        pdf.drawString(54, y + 4, label)
        pdf.line(150, y, 400, y)
        pdf.drawString(420, y + 4, "Date")
        pdf.line(450, y, 558, y)
    for number in range(2, pages + 1):
        pdf.showPage()
        pdf.setFont("Helvetica", 9)
        pdf.drawString(54, 720, f"Form {form} ({year}) page {number}: instructions for the ERO")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


# Form 8878 beside 8879: the same kind of form, other lines and another declaration.
FORM_8878 = {
    "form": "8878",
    "title": "IRS e-file Signature Authorization for Form 4868 or Form 2350",
    "part_one": (
        "Total tax liability for the year",
        "Total payments",
        "Balance due",
        "Amount you are paying from your account",
        "Amount of extension requested",
    ),
    "declaration": (
        "Under penalties of perjury, I declare that the information I provided to my electronic return "
        "originator for the application for an automatic extension of time to file, including any "
        "accompanying statements, is true and correct. I authorize the financial institution to debit "
        "the entry to my account, and the originator to enter my personal identification number as my "
        "signature on the extension application. The extension only extends the time to file, not to pay."
    ),
}
