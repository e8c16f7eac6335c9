"""Visible signatures: where a signer's stamp goes on the page, and how it is drawn.

The stamp is the signature's own appearance (a widget annotation of the signature field), so adding it is
part of signing: earlier signatures see a signature being added, which every validator allows, and never a
change to a page's content.
"""

from __future__ import annotations

import functools
import io
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.content import PdfResources, RawContent, ResourceType
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.images import pil_image
from pyhanko.pdf_utils.layout import BoxConstraints
from pyhanko.pdf_utils.rw_common import PdfHandler
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign import fields
from pyhanko.stamp import BaseStamp, BaseStampStyle
from reportlab.pdfbase.pdfmetrics import stringWidth

# Default boxes sit in the bottom margin of the last page, side by side, so a joint return's two stamps
# never overlap and never cover the form's own text higher up.
DEFAULT_MARGIN = 36.0
DEFAULT_GAP = 18.0
DEFAULT_WIDTH = 234.0
DEFAULT_HEIGHT = 66.0
MIN_BOX = (72.0, 18.0)  # anything smaller cannot show a signature and a name legibly
# The drawn signature is cropped to its ink and scaled down: a phone canvas can be 2000 px wide, and the
# image is embedded in every document the person signs.
MAX_IMAGE_PX = (600, 200)
INK = (0.1, 0.1, 0.1)


@dataclass(frozen=True)
class PageBox:
    """A rectangle on a page in PDF points, origin at the page's lower left (as the preparer placed it)."""

    page: int
    """1 = the first page."""
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Placement:
    """Where one signature goes: an existing empty field, or a new field on a page."""

    field_name: str
    existing: bool
    """Sign into a field already in the PDF (its own rectangle and page)."""
    page_index: int = 0
    """0-based page of a new field."""
    box: tuple[float, float, float, float] | None = None
    """(x1, y1, x2, y2) of a new field."""


@dataclass(frozen=True)
class StampText:
    """What is printed under the drawn signature."""

    printed_name: str
    caption: str
    """Second line, e.g. 'Taxpayer · signed electronically 2026-03-02 14:05 UTC'."""


# --- placement -----------------------------------------------------------------------------------------


def place_signature(
    handler: PdfHandler, field_name: str, preparer_box: PageBox | None, content_pages: int
) -> Placement:
    """Decide the box: a field named for the role, else the preparer's box, else the default on the last page.

    `content_pages` excludes Portico's reserved certificate page, so "last page" means the form's last page.
    """
    existing = role_field(handler, field_name)
    if existing is not None:
        name, filled = existing
        if filled:
            raise ValueError(f"Signature field {name!r} is already signed")
        return Placement(name, existing=True)
    if preparer_box is not None:
        check_box(handler, preparer_box, content_pages)
        box = preparer_box
        return Placement(
            field_name,
            existing=False,
            page_index=box.page - 1,
            box=(box.x, box.y, box.x + box.width, box.y + box.height),
        )
    return default_placement(handler, field_name, content_pages)


def default_placement(handler: PdfHandler, field_name: str, content_pages: int) -> Placement:
    """Bottom margin of the last page: the taxpayer on the left, the spouse on the right."""
    page_index = content_pages - 1
    left, bottom, right, _ = page_rect(handler, page_index)
    width = min(DEFAULT_WIDTH, (right - left - 2 * DEFAULT_MARGIN - DEFAULT_GAP) / 2)
    x = left + DEFAULT_MARGIN
    if field_name.lower() != "taxpayer":
        x += width + DEFAULT_GAP
    y = bottom + DEFAULT_MARGIN
    return Placement(
        field_name, existing=False, page_index=page_index, box=(x, y, x + width, y + DEFAULT_HEIGHT)
    )


def check_box(
    handler: PdfHandler, box: PageBox, content_pages: int, minimum: tuple[float, float] = MIN_BOX
) -> None:
    """Raise ValueError, in words a preparer understands, if the box cannot hold a stamp."""
    if not 1 <= box.page <= content_pages:
        raise ValueError(f"The signature box is on page {box.page}, but the document has {content_pages}.")
    # A box on a turned page is measured as the reader sees it.
    width, height = box.width, box.height
    if page_rotation(handler, box.page - 1) in (90, 270):
        width, height = height, width
    if width < minimum[0] or height < minimum[1]:
        raise ValueError(
            f"The signature box is {width:.0f} x {height:.0f} points; "
            f"make it at least {minimum[0]:.0f} x {minimum[1]:.0f}."
        )
    left, bottom, right, top = page_rect(handler, box.page - 1)
    if box.x < left or box.y < bottom or box.x + box.width > right or box.y + box.height > top:
        raise ValueError(f"The signature box on page {box.page} lies partly outside the page.")


def role_field(handler: PdfHandler, field_name: str) -> tuple[str, bool] | None:
    """(full name, signed?) of a signature field named for the role, e.g. 'Taxpayer' or 'spouse_signature'."""
    wanted = _normalised(field_name)
    for name, value, _ in fields.enumerate_sig_fields(handler):
        last = _normalised(name.rsplit(".", 1)[-1])
        if last in (wanted, wanted + "signature"):
            return name, value is not None
    return None


def _normalised(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def page_rect(handler: PdfHandler, page_index: int) -> tuple[float, float, float, float]:
    """The visible area of a page (CropBox, else MediaBox; both may be inherited from the page tree)."""
    page = _page_object(handler, page_index)
    rect = _inherited(page, "/CropBox") or _inherited(page, "/MediaBox")
    if rect is None:
        raise ValueError(f"Page {page_index + 1} has no MediaBox")
    x1, y1, x2, y2 = (float(v) for v in rect)
    return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)


def _page_object(handler: PdfHandler, page_index: int) -> generic.DictionaryObject:
    page = handler.find_page_for_modification(page_index)[0].get_object()
    assert isinstance(page, generic.DictionaryObject)
    return page


def _inherited(page: generic.DictionaryObject, key: str) -> Any:
    node: Any = page
    while node is not None:
        node = node.get_object()
        if key in node:
            return node[key]
        node = node.get("/Parent")
    return None


def page_count(handler: PdfHandler) -> int:
    return int(handler.root["/Pages"]["/Count"])


# --- the drawn signature ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def prepare_signature_image(png: bytes) -> Image.Image | None:
    """The signature cropped to its ink and scaled down; None when nothing was drawn.

    Cached because a signer's one image is stamped onto every document they sign.
    """
    with Image.open(io.BytesIO(png)) as opened:
        image = opened.convert("RGBA")
    ink = _ink_bounds(image)
    if ink is None:
        return None
    cropped = image.crop(ink)
    cropped.thumbnail(MAX_IMAGE_PX, Image.Resampling.LANCZOS)
    return cropped


def _ink_bounds(image: Image.Image) -> tuple[int, int, int, int] | None:
    alpha = image.getchannel("A")
    lowest, _ = alpha.getextrema()
    if isinstance(lowest, (int, float)) and lowest < 255:  # transparent canvas: the ink is whatever is opaque
        return alpha.point(lambda a: 255 if a > 24 else 0).getbbox()
    # An opaque canvas (a photo or a white background): the ink is what is darker than paper.
    darkness = ImageOps.invert(image.convert("L"))
    return darkness.point(lambda d: 255 if d > 48 else 0).getbbox()


# --- the stamp's appearance ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureStampStyle(BaseStampStyle):
    """Drawn signature above the printed name and a caption. No border: it sits on the form's own line."""

    image: Image.Image | None = None
    text: StampText = StampText("", "")
    border_width: int = 0
    rotation: int = 0
    """The page's /Rotate: the stamp is drawn turned back, so it reads upright on a turned page."""
    signature_region: Region | None = None
    """Where the drawn signature goes inside a stamp that also holds marks; None: the whole stamp."""
    marks: tuple[tuple[Region, Mark], ...] = ()

    def create_stamp(
        self, writer: BasePdfFileWriter, box: BoxConstraints, text_params: dict[str, Any]
    ) -> SignatureStamp:
        if self.rotation in (90, 270):  # laid out as the reader sees the box: width and height swap
            box = BoxConstraints(width=box.height, height=box.width)
        return SignatureStamp(writer, self, box)


class SignatureStamp(BaseStamp):
    style: SignatureStampStyle

    def as_form_xobject(self) -> generic.StreamObject:
        xobject = super().as_form_xobject()
        if self.style.rotation:
            xobject[pdf_name("/Matrix")] = upright_matrix(self.style.rotation)
        return xobject

    def _render_inner_content(self) -> list[bytes]:
        width, height = float(self.box.width), float(self.box.height)
        region = self.style.signature_region or Region(0, 0, width, height)
        commands = [b"q 1 0 0 1 %.2f %.2f cm" % (region.x, region.y)]
        commands.extend(self._signature_commands(region.width, region.height))
        commands.append(b"Q")
        for mark_region, mark in self.style.marks:
            commands.extend(self._mark_commands(mark_region, mark))
        return commands

    def _signature_commands(self, width: float, height: float) -> list[bytes]:
        layout = StampLayout.fit(width, height, self.style.text, self.style.image)
        commands: list[bytes] = []
        if self.style.image is not None and layout.image_rect is not None:
            assert self.writer is not None  # pyHanko always renders appearances with a writer
            self.set_resource(
                category=ResourceType.XOBJECT,
                name=pdf_name("/SigImage"),
                value=pil_image(self.style.image, self.writer),
            )
            x, y, w, h = layout.image_rect
            commands.append(b"q %.2f 0 0 %.2f %.2f %.2f cm /SigImage Do Q" % (w, h, x, y))
        commands.extend(self._text_commands(layout))
        return commands

    def _mark_commands(self, region: Region, mark: Mark) -> Iterator[bytes]:
        """A date, initials or name, one line, as large as fits its box (at most 11 points)."""
        self._set_fonts()
        text = printable(mark.text)
        font = BOLD if mark.kind == "initials" else REGULAR
        size = min(11.0, region.height * 0.7, (region.width - 4) / max(stringWidth(text, font, 1), 1))
        y = region.y + max(1.0, (region.height - size) / 2 + size * 0.2)
        yield b"%.2f %.2f %.2f rg" % INK
        yield b"BT %s %.2f Tf %.2f %.2f Td <%s> Tj ET" % (
            b"/HelvB" if font == BOLD else b"/Helv",
            size,
            region.x + 2,
            y,
            text.encode("cp1252").hex().encode(),
        )

    def _set_fonts(self) -> None:
        for font, resource in ((REGULAR, "/Helv"), (BOLD, "/HelvB")):
            self.set_resource(category=ResourceType.FONT, name=pdf_name(resource), value=_font_dict(font))

    def _text_commands(self, layout: StampLayout) -> Iterator[bytes]:
        self._set_fonts()
        yield b"%.2f %.2f %.2f rg" % INK
        for line in layout.lines:
            font_name = b"/HelvB" if line.font == BOLD else b"/Helv"
            yield b"BT %s %.2f Tf %.2f %.2f Td <%s> Tj ET" % (
                font_name,
                line.size,
                line.x,
                line.y,
                line.text.encode("cp1252").hex().encode(),
            )


REGULAR, BOLD = "Helvetica", "Helvetica-Bold"


def _font_dict(base_font: str) -> generic.DictionaryObject:
    # A standard 14 font: nothing to embed, so a stamp costs no font subsetting time.
    return generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Font"),
            pdf_name("/Subtype"): pdf_name("/Type1"),
            pdf_name("/BaseFont"): pdf_name("/" + base_font),
            pdf_name("/Encoding"): pdf_name("/WinAnsiEncoding"),
        }
    )


def printable(text: str) -> str:
    """Text the WinAnsi-encoded standard fonts can show: accents kept where cp1252 has them, else dropped."""
    out = []
    for char in text:
        try:
            char.encode("cp1252")
            out.append(char)
        except UnicodeEncodeError:
            base = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            out.append(base or "?")
    return "".join(out)


@dataclass(frozen=True)
class TextLine:
    text: str
    font: str
    size: float
    x: float
    y: float


@dataclass(frozen=True)
class StampLayout:
    """Positions inside the stamp box: the image on top, two text lines at the bottom, left-aligned."""

    image_rect: tuple[float, float, float, float] | None
    lines: tuple[TextLine, ...]

    @classmethod
    def fit(cls, width: float, height: float, text: StampText, image: Image.Image | None) -> StampLayout:
        if image is not None and width >= WIDE * height:
            return cls._side_by_side(width, height, text, image)
        pad = max(1.5, min(width, height) * 0.04)
        name, caption = printable(text.printed_name), printable(text.caption)
        # Text takes at most ~40% of the height, and shrinks further until the longer line fits the width.
        name_size = min(10.0, max(4.0, height * 0.15))
        name_size = min(name_size, (width - 2 * pad) / max(stringWidth(name, BOLD, 1), 1))
        caption_size = min(name_size * 0.8, (width - 2 * pad) / max(stringWidth(caption, REGULAR, 1), 1))
        caption_y = pad + caption_size * 0.25  # room for descenders
        name_y = caption_y + caption_size * 1.2
        lines = (
            TextLine(name, BOLD, name_size, pad, name_y),
            TextLine(caption, REGULAR, caption_size, pad, caption_y),
        )
        image_bottom = name_y + name_size * 1.05
        image_rect = None
        if image is not None and height - pad - image_bottom > 4:
            avail_w, avail_h = width - 2 * pad, height - pad - image_bottom
            scale = min(avail_w / image.width, avail_h / image.height)
            image_rect = (pad, image_bottom, image.width * scale, image.height * scale)
        return cls(image_rect, lines)

    @classmethod
    def _side_by_side(cls, width: float, height: float, text: StampText, image: Image.Image) -> StampLayout:
        """A long, low place (a form's signature line): the signature at the line's full height on the left,
        the name and caption beside it, large enough to read, rather than squeezed underneath."""
        pad = max(1.5, height * 0.05)
        scale = min((height - 2 * pad) / image.height, width * 0.45 / image.width)
        image_rect = (pad, pad, image.width * scale, image.height * scale)
        left = pad + image.width * scale + 2 * pad
        room = width - left - pad
        name, caption = printable(text.printed_name), printable(text.caption)
        name_size = min(10.0, height * 0.3, room / max(stringWidth(name, BOLD, 1), 1))
        caption_size = min(name_size * 0.8, room / max(stringWidth(caption, REGULAR, 1), 1))
        caption_y = pad + caption_size * 0.25
        lines = (
            TextLine(name, BOLD, name_size, left, caption_y + caption_size * 1.25),
            TextLine(caption, REGULAR, caption_size, left, caption_y),
        )
        return cls(image_rect, lines)


WIDE = 4.0  # a place this many times wider than tall gets the side-by-side layout


# --- marks: the date, initials and printed name beside a signature --------------------------------------


@dataclass(frozen=True)
class Mark:
    """Text a signature puts in one of the signer's other places (the signing date in its "Date" box)."""

    kind: str
    box: PageBox
    text: str


@dataclass(frozen=True)
class Region:
    """A part of a stamp, in its own upright layout (origin at its lower left as the reader sees it)."""

    x: float
    y: float
    width: float
    height: float


def combined_box(signature: PageBox, marks: Sequence[Mark]) -> PageBox:
    """One widget holds a signature and its marks (a widget per place would make a signature field with
    several widgets, which poppler does not read as signed): the smallest box around them all. Its
    appearance is transparent between the places, so the form's own "Date" label stays visible."""
    if any(mark.box.page != signature.page for mark in marks):
        raise ValueError("A signer's date, initials and name go on the same page as their signature.")
    boxes = [signature, *(mark.box for mark in marks)]
    x0, y0 = min(b.x for b in boxes), min(b.y for b in boxes)
    x1, y1 = max(b.x + b.width for b in boxes), max(b.y + b.height for b in boxes)
    return PageBox(signature.page, x0, y0, x1 - x0, y1 - y0)


def upright_region(outer: PageBox, inner: PageBox, rotation: int) -> Region:
    """Where `inner` lies inside `outer` as the reader of a page turned by `rotation` sees them."""
    u0, v0 = inner.x - outer.x, inner.y - outer.y
    u1, v1 = u0 + inner.width, v0 + inner.height
    w, h = outer.width, outer.height
    if rotation == 90:
        x0, y0, x1, y1 = v0, w - u1, v1, w - u0
    elif rotation == 180:
        x0, y0, x1, y1 = w - u1, h - v1, w - u0, h - v0
    elif rotation == 270:
        x0, y0, x1, y1 = h - v1, u0, h - v0, u1
    else:
        x0, y0, x1, y1 = u0, v0, u1, v1
    return Region(x0, y0, x1 - x0, y1 - y0)


def upright_matrix(rotation: int) -> generic.ArrayObject:
    """An appearance's /Matrix that turns its content back against the page's /Rotate: the viewer fits the
    turned box into the annotation's rectangle, so it reads upright on the displayed page."""
    a, b, c, d = {90: (0, 1, -1, 0), 180: (-1, 0, 0, -1), 270: (0, -1, 1, 0)}[rotation]
    return generic.ArrayObject([generic.NumberObject(v) for v in (a, b, c, d, 0, 0)])


MIN_MARK = (24.0, 8.0)


def page_rotation(handler: PdfHandler, page_index: int) -> int:
    rotate = _inherited(_page_object(handler, page_index), "/Rotate")
    return int(rotate or 0) % 360


# --- the reserved certificate page --------------------------------------------------------------------

SEAL_FIELD = "PorticoSeal"
PLACEHOLDER_LINES = (
    "Portico completes this page when every required signature is in: the certificate of completion",
    "(who signed, when, from where, how each signer was identified, and the document fingerprints).",
    "The document is then sealed against further changes.",
)


def reserve_certificate_page(writer: BasePdfFileWriter) -> None:
    """Append the page the certificate of completion will fill, covered by the empty seal field.

    Called in the revision of the first signature. A page added after a signature is a change that strict
    validators (pyHanko, Acrobat) hold against that signature; filling a signature field is not, so the
    page must exist before anyone signs and the certificate arrives as the seal's appearance.
    """
    if seal_field(writer) is not None:
        return
    last = page_count(writer) - 1
    left, bottom, right, top = page_rect(writer, last)
    width, height = right - left, top - bottom
    blank = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Page"),
            pdf_name("/MediaBox"): generic.ArrayObject(
                [generic.FloatObject(v) for v in (0, 0, width, height)]
            ),
            pdf_name("/Resources"): generic.DictionaryObject(),
            pdf_name("/Contents"): writer.add_object(generic.StreamObject(stream_data=b"")),
        }
    )
    writer.insert_page(blank)
    # Signing this field later locks the whole document (ISO 32000-2 /Lock with /P 1: no changes).
    fields.append_signature_field(
        writer,
        fields.SigFieldSpec(
            SEAL_FIELD,
            on_page=last + 1,
            box=(0, 0, width, height),  # type: ignore[arg-type]
            field_mdp_spec=fields.FieldMDPSpec(fields.FieldMDPAction.ALL),
            doc_mdp_update_value=fields.MDPPerm.NO_CHANGES,
        ),
    )
    _show_placeholder(writer, width, height)


def _show_placeholder(writer: BasePdfFileWriter, width: float, height: float) -> None:
    # The notice is the empty field's appearance rather than page content: the seal's appearance then
    # replaces it outright, so the sealed page neither shows nor extracts as the notice.
    resources = PdfResources()
    resources.font[pdf_name("/Helv")] = _font_dict(REGULAR)
    resources.font[pdf_name("/HelvB")] = _font_dict(BOLD)
    appearance = RawContent(
        _placeholder_content(height), resources=resources, box=BoxConstraints(width=width, height=height)
    )
    for _, _, field_ref in fields.enumerate_sig_fields(writer, with_name=SEAL_FIELD):
        widget = field_ref.get_object()
        widget[pdf_name("/AP")] = generic.DictionaryObject(
            {pdf_name("/N"): writer.add_object(appearance.as_form_xobject())}
        )
        writer.update_container(widget)


def _placeholder_content(height: float) -> bytes:
    top = height - 72
    parts = [b"BT /HelvB 16 Tf 72 %.2f Td (Certificate of completion) Tj ET" % top]
    for number, line in enumerate(PLACEHOLDER_LINES):
        y = top - 24 - 12 * number
        parts.append(b"BT /Helv 9 Tf 72 %.2f Td <%s> Tj ET" % (y, line.encode().hex().encode()))
    return b"\n".join(parts)


def seal_field(handler: PdfHandler) -> tuple[str, bool] | None:
    """(name, filled?) of Portico's seal field, if the document has one."""
    for name, value, _ in fields.enumerate_sig_fields(handler, with_name=SEAL_FIELD):
        return name, value is not None
    return None


def content_page_count(handler: PdfHandler) -> int:
    """Pages of the form itself, without the reserved certificate page."""
    return page_count(handler) - (1 if seal_field(handler) is not None else 0)


def locked_by(handler: PdfHandler) -> str | None:
    """Name of a signed field whose lock forbids all further changes (ISO 32000-2 /Lock /P 1), if any."""
    for name, value, field_ref in fields.enumerate_sig_fields(handler, filled_status=True):
        lock = field_ref.get_object().get("/Lock")
        if value is not None and lock is not None and int(lock.get_object().get("/P", 0)) == 1:
            return str(name)
    return None
