"""Finding each signer's place on a form: the printed "Taxpayer's signature" line and its "Date" box.

Tax software prints Form 8879, Form 8878 and Form 1040 flattened: the signature lines are text and rules,
not form fields. When a document is sent, `find_places` reads the page's text with glyph positions and its
horizontal rules, finds each signer's label, and puts the signature on the line that label names and the
signing date in the "Date" box beside it.

pdfminer.six rather than pypdf's text visitor: pdfminer gives each glyph's box (its advance width from the
font's metrics), groups glyphs into lines, reports the page's drawn rules, and applies the page's /Rotate,
so a landscape form printed sideways reads upright here; pypdf's visitor gives only where each text run
starts. Places are found in that upright (displayed) space and mapped back to the page's own coordinates.

The three layouts forms use:
- the line to the right of the label, on its baseline ("Your signature ▶ ______  Date ▶ ____", Form 8879);
- the label printed under the line ("____________ / Taxpayer's signature   Date", engagement letters);
- the label at the top of a ruled cell, the signature written in the cell below it (Form 1040's "Sign Here").
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from pdfminer.high_level import extract_pages
from pdfminer.layout import LAParams, LTChar, LTCurve, LTPage, LTTextContainer, LTTextLine
from pyhanko.pdf_utils.reader import PdfFileReader
from pypdf import PdfReader

from esign import stamp
from esign.boxes import SignatureBox

# The labels of the forms preparers send most. A firm adds its own (e.g. "Client signature").
DEFAULT_LABELS: Mapping[str, tuple[str, ...]] = {
    "taxpayer": ("Taxpayer's signature", "Taxpayer signature", "Signature of taxpayer", "Your signature"),
    "spouse": ("Spouse's signature", "Spouse signature", "Signature of spouse"),
}
DATE_LABEL = re.compile(r"^\W*date\b", re.IGNORECASE)

SIGNATURE_HEIGHT = 30.0  # a signature rises above its line
MIN_HEIGHT = 18.0
DATE_HEIGHT = 16.0
PAGE_MARGIN = 36.0
# How far a rule may sit from the label's baseline and still be the line it names (points).
BASELINE_SLACK = 6.0
UNDER_LINE_GAP = 18.0
CELL_DEPTH = 40.0
# A label mentioned in a sentence is not a place to sign: what follows it on its line stays short.
MAX_TRAILING_CHARS = 48


@dataclass(frozen=True)
class Rect:
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def height(self) -> float:
        return self.y1 - self.y0


@dataclass(frozen=True)
class Label:
    """A run of text on one line, in upright page space, with each character's box."""

    text: str
    box: Rect
    chars: tuple[Rect, ...] = ()


@dataclass(frozen=True)
class PageText:
    number: int  # 1 = first page
    width: float
    height: float
    lines: tuple[Label, ...]
    rules: tuple[Rect, ...]  # horizontal rules and runs of underscores: the lines people sign on
    to_user: tuple[int, float, float, float, float]  # rotation and media box, to map back


def find_places(
    pdf: bytes, roles: Sequence[str], labels: Mapping[str, Sequence[str]] | None = None
) -> list[SignatureBox]:
    """Each signer's signature place (and date place, when the form prints one) found from the labels.

    A signer whose label is not on any page gets no place: the caller asks the preparer for one. Extra
    `labels` (role -> texts) come first, so a firm's own wording wins over the defaults.
    """
    texts = {role: [*(labels or {}).get(role, ()), *DEFAULT_LABELS.get(role, ())] for role in roles}
    wanted = {role: _patterns(role_texts) for role, role_texts in texts.items()}
    found: dict[str, list[SignatureBox]] = {}
    candidates = _pages_mentioning(pdf, [text for role_texts in texts.values() for text in role_texts])
    for page in read_pages(pdf, candidates):
        for role, patterns in wanted.items():
            if role in found:
                continue
            label = _first_label(page, patterns)
            if label is not None:
                found[role] = _places_for_label(page, role, label)
    return [box for role in roles for box in found.get(role, [])]


def unplaced(pdf: bytes, roles: Sequence[str], boxes: Sequence[SignatureBox]) -> list[str]:
    """The signers with neither a signature place nor a signature field of their own in the PDF."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    placed = {box.role for box in boxes if box.kind == "signature"}
    return [
        role for role in roles if role not in placed and stamp.role_field(reader, role.capitalize()) is None
    ]


def check_layout(boxes: Sequence[SignatureBox]) -> None:
    """Raise ValueError unless each signer's date, initials and name sit on their signature's page."""
    signature_pages = {box.role: box.page for box in boxes if box.kind == "signature"}
    for box in boxes:
        if box.kind == "signature":
            continue
        if box.role not in signature_pages:
            raise ValueError(f"The {box.role}'s {box.kind} needs a signature place for the {box.role} too.")
        if box.page != signature_pages[box.role]:
            raise ValueError(
                f"Put the {box.role}'s {box.kind} on page {signature_pages[box.role]}, with their signature."
            )


def _patterns(texts: Sequence[str]) -> list[re.Pattern[str]]:
    """A label matches at the start of a line, any apostrophe, any case, any spacing."""
    patterns = []
    for text in texts:
        words = [re.escape(word).replace("'", "['\u2019`]?") for word in text.replace("\u2019", "'").split()]
        patterns.append(re.compile(r"^[^A-Za-z]*(" + r"\s*".join(words) + r")\b", re.IGNORECASE))
    return patterns


def _first_label(page: PageText, patterns: list[re.Pattern[str]]) -> Label | None:
    """The label's own words (not the rest of its line), the first in reading order."""
    for pattern in patterns:
        for line in page.lines:
            match = pattern.match(line.text)
            if match is None or len(line.text) - match.end() > MAX_TRAILING_CHARS:
                continue
            return _with_pointer(line, match.start(1), match.end(1))
    return None


def _with_pointer(line: Label, start: int, end: int) -> Label:
    """A label with the arrow or colon after it ("Your signature ▶", "Date:"): the line starts after it."""
    pointer = _POINTER.match(line.text, end)
    if pointer is not None and pointer.group().strip():
        end = pointer.start() + len(pointer.group().rstrip())
    return _sub_label(line, start, end)


_POINTER = re.compile("[\\s\u25b6\u25ba>:\u00bb]*")


def _sub_label(line: Label, start: int, end: int) -> Label:
    """The part of a line between two character offsets, with its own box."""
    if end > len(line.chars) or start >= end:
        return line
    part = line.chars[start:end]
    box = Rect(part[0].x0, min(b.y0 for b in part), part[-1].x1, max(b.y1 for b in part))
    return Label(line.text[start:end], box, part)


# ---- where the places go ---------------------------------------------------------------------------------


def _places_for_label(page: PageText, role: str, label: Label) -> list[SignatureBox]:
    date = _date_label_beside(page, label)
    right_limit = page.width - PAGE_MARGIN
    # A label between two rules heads a cell when the rule below is close and the cell is empty; else it is
    # printed under the line above it, whose space above is free to sign in.
    for layout in (_line_to_the_right, _cell_below, _line_above):
        placed = layout(page, label, date, right_limit)
        if placed is not None:
            signature, date_box = placed
            break
    else:
        signature = Rect(label.box.x1 + 4, label.box.y0 - 3, right_limit, label.box.y0 - 3 + SIGNATURE_HEIGHT)
        date_box = None
    boxes = [_to_box(page, role, "signature", _clamped(page, signature))]
    if date_box is not None and date_box.x1 - date_box.x0 >= 30:
        boxes.append(_to_box(page, role, "date", _clamped(page, date_box)))
    return boxes


def _line_to_the_right(
    page: PageText, label: Label, date: Label | None, right_limit: float
) -> tuple[Rect, Rect | None] | None:
    """Form 8879: "Your signature ▶" then the line, on the label's baseline; "Date ▶" further along."""
    baseline = label.box.y0
    rules = [
        r
        for r in page.rules
        if abs(r.y0 - baseline) <= BASELINE_SLACK and r.x1 > label.box.x1 + 36 and r.x0 < right_limit
    ]
    if not rules:
        return None
    line_y = min(r.y0 for r in rules)
    line_end = max(r.x1 for r in rules)
    # The line may run under the label (Form 8879) or start after it: the place starts where both allow.
    starts = [r.x0 for r in rules if label.box.x1 <= r.x0 < (date.box.x0 if date is not None else line_end)]
    x0 = max(label.box.x1 + 4, min(starts, default=label.box.x1 + 4))
    segment_end = max((r.x1 for r in rules if r.x0 <= x0 + 1 and r.x1 > x0), default=line_end)
    x1 = min(segment_end, date.box.x0 - 6) if date is not None else segment_end
    top = _room_above(page, label, line_y)
    signature = Rect(x0, line_y - 2, x1, top)
    date_box = None
    if date is not None:
        date_box = Rect(date.box.x1 + 4, line_y + 1, min(line_end, right_limit), line_y + 1 + DATE_HEIGHT)
    return signature, date_box


def _line_above(
    page: PageText, label: Label, date: Label | None, right_limit: float
) -> tuple[Rect, Rect | None] | None:
    """An engagement letter: the line first, "Taxpayer's signature" printed under it, "Date" beside."""
    rules = [
        r
        for r in page.rules
        if 0 <= r.y0 - label.box.y1 <= UNDER_LINE_GAP and r.x0 <= label.box.x1 and r.x1 >= label.box.x0
    ]
    if not rules:
        return None
    line = min(rules, key=lambda r: r.y0 - label.box.y1)
    if not _free(page, Rect(label.box.x0, line.y0 + 2, label.box.x1, line.y0 + 16)):
        return None  # text right above the line: a ruled cell's top border, not a line to sign on
    date_rule = None
    if date is not None:
        beside = [
            r for r in page.rules if abs(r.y0 - line.y0) <= 3 and r.x0 <= date.box.x1 and r.x1 >= date.box.x0
        ]
        date_rule = beside[0] if beside else None
    x1 = line.x1
    if date_rule is not None and date_rule.x0 > line.x0 + 36:
        x1 = min(x1, date_rule.x0 - 4)
    elif date is not None:
        x1 = min(x1, date.box.x0 - 6)
    signature = Rect(line.x0, line.y0 - 2, x1, line.y0 - 2 + SIGNATURE_HEIGHT)
    date_box = None
    if date is not None:
        start = max(date.box.x0, x1 + 4)
        end = date_rule.x1 if date_rule is not None else min(start + 120, right_limit)
        date_box = Rect(start, line.y0 + 1, end, line.y0 + 1 + DATE_HEIGHT)
    return signature, date_box


def _cell_below(
    page: PageText, label: Label, date: Label | None, right_limit: float
) -> tuple[Rect, Rect | None] | None:
    """Form 1040's "Sign Here": each label heads a ruled cell, signed in the space beneath it."""
    rules = [
        r
        for r in page.rules
        if 2 <= label.box.y0 - r.y0 <= CELL_DEPTH and r.x0 <= label.box.x0 + 4 and r.x1 >= label.box.x1
    ]
    if not rules:
        return None
    floor = max(r.y0 for r in rules)
    top = label.box.y0 - 1
    if not _free(page, Rect(label.box.x0, floor + 1, label.box.x1, top)):
        return None
    x1 = (date.box.x0 - 6) if date is not None else min(max(r.x1 for r in rules), right_limit)
    signature = Rect(label.box.x0, floor + 1, x1, max(top, floor + MIN_HEIGHT))
    date_box = None
    if date is not None:
        end = min(_next_label_x(page, date, right_limit) - 4, date.box.x0 + 160)
        date_box = Rect(date.box.x0, floor + 1, end, min(top, floor + 1 + DATE_HEIGHT))
    return signature, date_box


def _next_label_x(page: PageText, label: Label, right_limit: float) -> float:
    """Where the next text on a label's baseline starts (the next cell's heading), else the margin."""
    starts = [
        line.box.x0
        for line in page.lines
        if abs(line.box.y0 - label.box.y0) <= 3 and line.box.x0 > label.box.x1 + 2
    ]
    return min(starts, default=right_limit)


def _free(page: PageText, rect: Rect) -> bool:
    """No text in the rectangle."""
    return not any(
        line.box.x0 < rect.x1 and line.box.x1 > rect.x0 and line.box.y0 < rect.y1 and line.box.y1 > rect.y0
        for line in page.lines
    )


def _date_label_beside(page: PageText, label: Label) -> Label | None:
    """The nearest "Date" to the right of a signature label, on its baseline."""
    candidates = [
        line
        for line in page.lines
        if DATE_LABEL.match(line.text) and abs(line.box.y0 - label.box.y0) <= 3 and line.box.x0 > label.box.x1
    ]
    for line in page.lines:  # "Your signature ▶  Date ▶" may be one text line
        if line.box.y0 == label.box.y0 or abs(line.box.y0 - label.box.y0) <= 3:
            for match in re.finditer(r"\bdate\b", line.text, re.IGNORECASE):
                part = _with_pointer(line, match.start(), match.end())
                if part.box.x0 > label.box.x1:
                    candidates.append(part)
    if not candidates:
        return None
    nearest = min(candidates, key=lambda c: c.box.x0)
    word = DATE_LABEL.match(nearest.text)
    return _with_pointer(nearest, 0, word.end()) if word is not None else nearest


def _room_above(page: PageText, label: Label, line_y: float) -> float:
    """A signature rises from its line up to the text line above it, at most SIGNATURE_HEIGHT."""
    above = [
        line.box.y0
        for line in page.lines
        if line.box.y0 > label.box.y1
        and line.box.x1 > label.box.x1
        and line.box.x0 < page.width - PAGE_MARGIN
    ]
    ceiling = min(above, default=line_y + SIGNATURE_HEIGHT + 2) - 1
    return max(line_y - 2 + MIN_HEIGHT, min(line_y - 2 + SIGNATURE_HEIGHT, ceiling))


def _clamped(page: PageText, rect: Rect) -> Rect:
    return Rect(max(0.0, rect.x0), max(0.0, rect.y0), min(page.width, rect.x1), min(page.height, rect.y1))


def _to_box(page: PageText, role: str, kind: str, rect: Rect) -> SignatureBox:
    """From upright page space back to the page's own coordinates (what a widget's /Rect uses)."""
    rotation, mx0, my0, mx1, my1 = page.to_user
    corners = [
        _unrotate(rotation, mx0, my0, mx1, my1, x, y) for x, y in ((rect.x0, rect.y0), (rect.x1, rect.y1))
    ]
    (ax, ay), (bx, by) = corners
    x0, y0, x1, y1 = min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)
    return SignatureBox(
        role, page.number, round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2), kind=kind
    )


def _unrotate(
    rotation: int, x0: float, y0: float, x1: float, y1: float, dx: float, dy: float
) -> tuple[float, float]:
    """The inverse of the transform pdfminer applies for /Rotate (pdfminer.pdfinterp, PDFPageInterpreter)."""
    if rotation == 90:
        return x1 - dy, dx + y0
    if rotation == 180:
        return x1 - dx, y1 - dy
    if rotation == 270:
        return dy + x0, y1 - dx
    return dx + x0, dy + y0


# ---- reading a page --------------------------------------------------------------------------------------


def _pages_mentioning(pdf: bytes, labels: Sequence[str]) -> list[int]:
    """The 0-based pages whose text mentions any label, letters only. pdfminer's layout analysis takes
    about half a second a page, so a 60-page return is read in full by pypdf's faster extraction first and
    laid out only where a label is printed."""
    keys = {_letters(label) for label in labels}
    reader = PdfReader(io.BytesIO(pdf), strict=False)
    return [
        index
        for index, page in enumerate(reader.pages)
        if any(key in _letters(page.extract_text()) for key in keys)
    ]


IRS_FORMS = ("8879", "8878")
_FORM_IN_TEXT = re.compile(r"\bForm\s*(8879|8878)\b", re.IGNORECASE)
_FORM_IN_NAME = re.compile(r"(?<!\d)(8879|8878)(?!\d)")


def irs_form(pdf: bytes, name: str) -> str:
    """ "8879" or "8878" when the document is that IRS e-file signature authorization (its first pages
    print "Form 8879", or else its file name says so), "" for anything else. Identity proofing before a
    remote signature is asked by form (`services.proofing`)."""
    try:
        reader = PdfReader(io.BytesIO(pdf), strict=False)
        text = " ".join(page.extract_text() for page in list(reader.pages)[:2])
    except Exception:  # an unreadable PDF is refused by the send's own checks, in its words
        text = ""
    found = _FORM_IN_TEXT.search(text) or _FORM_IN_NAME.search(name)
    return found.group(1) if found else ""


def _letters(text: str) -> str:
    return "".join(char for char in text.lower() if char.isalpha())


def read_pages(pdf: bytes, page_indexes: Sequence[int] | None = None) -> Iterator[PageText]:
    """Every page's text lines and rules, upright; a line keeps each character's box, so a label inside a
    longer line ("Your signature ▶ ... Date ▶") gets its own."""
    params = LAParams(char_margin=1.0, word_margin=0.2, line_margin=0.3, detect_vertical=False)
    reader = PdfReader(io.BytesIO(pdf), strict=False)
    indexes = list(range(len(reader.pages)) if page_indexes is None else page_indexes)
    if not indexes:
        return
    for index, layout in zip(
        indexes, extract_pages(io.BytesIO(pdf), page_numbers=indexes, laparams=params), strict=True
    ):
        number = index + 1
        lines, rules = _lines_and_rules(layout)
        yield PageText(
            number, layout.width, layout.height, tuple(lines), tuple(rules), _media(reader, number)
        )


def _media(reader: PdfReader, number: int) -> tuple[int, float, float, float, float]:
    """The page's rotation and media box: pdfminer lays the page out upright but does not say how."""
    page = reader.pages[number - 1]
    box = page.mediabox
    return page.rotation % 360, float(box.left), float(box.bottom), float(box.right), float(box.top)


def _lines_and_rules(layout: LTPage) -> tuple[list[Label], list[Rect]]:
    lines: list[Label] = []
    rules: list[Rect] = []
    for item in _walk(layout):
        if isinstance(item, LTTextLine):
            label = _line(item)
            if label is not None:
                lines.append(label)
                rules.extend(_underscore_runs(item))
        elif isinstance(item, LTCurve) and item.height <= 2.5 and item.width >= 20:
            rules.append(Rect(item.x0, item.y0, item.x1, item.y1))
    lines.sort(key=lambda line: (-line.box.y0, line.box.x0))
    return lines, rules


def _walk(item: object) -> Iterator[object]:
    yield item
    if isinstance(item, LTPage | LTTextContainer) and not isinstance(item, LTTextLine):
        for child in item:
            yield from _walk(child)


def _line(item: LTTextLine) -> Label | None:
    chars: list[str] = []
    boxes: list[Rect] = []
    last: Rect | None = None
    for glyph in item:
        text = glyph.get_text()
        if isinstance(glyph, LTChar):
            box = Rect(glyph.x0, glyph.y0, glyph.x1, glyph.y1)
            last = box
        else:  # pdfminer's inferred spaces carry no box: give them the previous glyph's right edge
            edge = last.x1 if last is not None else item.x0
            box = Rect(edge, item.y0, edge, item.y1)
        for char in text:
            if char == "\n":
                continue
            chars.append(char)
            boxes.append(box)
    text = "".join(chars)
    if not text.strip():
        return None
    return Label(text, Rect(item.x0, item.y0, item.x1, item.y1), tuple(boxes))


def _underscore_runs(item: LTTextLine) -> Iterator[Rect]:
    """ "Taxpayer's signature ________": a run of underscores is a line to sign on."""
    glyphs = [g for g in item if isinstance(g, LTChar)]
    run: list[LTChar] = []
    for glyph in [*glyphs, None]:
        if glyph is not None and glyph.get_text() == "_":
            run.append(glyph)
            continue
        if len(run) >= 5:
            yield Rect(run[0].x0, run[0].y0, run[-1].x1, run[0].y0 + 0.5)
        run = []
