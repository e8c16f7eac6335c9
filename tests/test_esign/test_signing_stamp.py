"""Visible signatures: the stamp's ink lands in the right box (checked on poppler's rendering of the page)."""

from __future__ import annotations

import io

import pdfs
import pytest
from journey import signature_png
from PIL import Image, ImageDraw
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from reportlab.pdfbase.pdfmetrics import stringWidth

from esign import pdfsign, stamp
from esign.pdfsign import VisibleSignature
from esign.stamp import PageBox, StampText

PAGE_HEIGHT = 792.0
TOLERANCE_PX = 3  # anti-aliasing spills a pixel or two past the box edge


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> signers.SimpleSigner:
    paths, _ = pdfsign.ensure_dev_certificates(tmp_path_factory.mktemp("keys"))
    return pdfsign.load_signer(paths.signing_key, paths.signing_cert, [paths.ca_cert])


def sign(pdf: bytes, signer: signers.SimpleSigner, role: str, box: PageBox | None = None) -> bytes:
    name = {"taxpayer": "Shelby O'Neil", "spouse": "Jordan O'Neil"}[role]
    visible = VisibleSignature(
        signature_png(),
        StampText(name, f"{role.capitalize()} - signed electronically 2026-03-02 14:05 UTC"),
        box,
    )
    return pdfsign.sign_pdf(
        pdf,
        signer,
        field_name=role.capitalize(),
        signer_name=name,
        visible=visible,
        reserve_certificate_page=True,
    )


def assert_ink_inside(before: bytes, after: bytes, page: int, box: tuple[float, float, float, float]) -> None:
    area, count = pdfs.changed_area(pdfs.render_page(before, page), pdfs.render_page(after, page))
    assert area is not None and count > 200, "nothing was drawn"
    left, top, right, bottom = pdfs.box_in_pixels(box, PAGE_HEIGHT)
    assert area[0] >= left - TOLERANCE_PX and area[1] >= top - TOLERANCE_PX, (
        area,
        (left, top, right, bottom),
    )
    assert area[2] <= right + TOLERANCE_PX and area[3] <= bottom + TOLERANCE_PX, (
        area,
        (left, top, right, bottom),
    )


def test_stamp_goes_into_the_pdfs_own_field_for_the_role(signer: signers.SimpleSigner) -> None:
    original = pdfs.make_form_8879(with_fields=True)
    signed = sign(original, signer, "taxpayer")
    assert_ink_inside(original, signed, 1, pdfs.TAXPAYER_FIELD_BOX)


def test_joint_form_8879_gets_both_stamps_in_their_own_fields(signer: signers.SimpleSigner) -> None:
    original = pdfs.make_form_8879(with_fields=True)
    by_taxpayer = sign(original, signer, "taxpayer")
    by_both = sign(by_taxpayer, signer, "spouse")

    assert_ink_inside(by_taxpayer, by_both, 1, pdfs.SPOUSE_FIELD_BOX)
    text = pdfs.page_text(by_both, 1)
    assert "Shelby O'Neil" in text and "Jordan O'Neil" in text
    assert "Spouse - signed electronically 2026-03-02 14:05 UTC" in text
    reports = pdfsign.read_signatures(by_both)
    assert [r.field_name for r in reports] == ["Taxpayer", "Spouse"]


def test_stamp_goes_into_the_box_the_preparer_placed(signer: signers.SimpleSigner) -> None:
    original = pdfs.make_form_8879(pages=2)
    box = PageBox(page=2, x=300, y=500, width=200, height=60)
    signed = sign(original, signer, "spouse", box)
    assert_ink_inside(original, signed, 2, (300, 500, 500, 560))
    area, _ = pdfs.changed_area(pdfs.render_page(original, 1), pdfs.render_page(signed, 1))
    assert area is None  # nothing on page 1


def test_without_field_or_box_the_stamps_sit_side_by_side_on_the_last_page(
    signer: signers.SimpleSigner,
) -> None:
    original = pdfs.make_form_8879(pages=2)
    by_taxpayer = sign(original, signer, "taxpayer")
    by_both = sign(by_taxpayer, signer, "spouse")

    reader = PdfFileReader(io.BytesIO(original))
    left = stamp.default_placement(reader, "Taxpayer", 2).box
    right = stamp.default_placement(reader, "Spouse", 2).box
    assert left is not None and right is not None
    assert left[2] < right[0], "the two default boxes overlap"
    assert_ink_inside(original, by_taxpayer, 2, left)
    assert_ink_inside(by_taxpayer, by_both, 2, right)
    # The last page means the form's last page, not the certificate page the first signature reserved.
    assert pdfs.page_count(by_both) == 3
    assert "Certificate of completion" in pdfs.page_text(by_both, 3)


def test_an_already_signed_role_field_is_refused(signer: signers.SimpleSigner) -> None:
    signed = sign(pdfs.make_form_8879(with_fields=True), signer, "taxpayer")
    with pytest.raises(ValueError, match="already signed"):
        sign(signed, signer, "taxpayer")


def test_role_fields_match_loosely() -> None:
    pdf = pdfs.make_form_8879(with_fields=True)
    reader = PdfFileReader(io.BytesIO(pdf))
    placement = stamp.place_signature(reader, "taxpayer", None, 2)
    assert placement.existing and placement.field_name == "Taxpayer"


@pytest.mark.parametrize(
    ("box", "message"),
    [
        (PageBox(3, 72, 72, 200, 60), "page 3, but the document has 2"),
        (PageBox(1, 500, 72, 200, 60), "outside the page"),
        (PageBox(1, 72, 72, 20, 10), "at least 72 x 18"),
    ],
)
def test_unusable_preparer_boxes_are_refused(box: PageBox, message: str) -> None:
    reader = PdfFileReader(io.BytesIO(pdfs.make_form_8879(pages=2)))
    with pytest.raises(ValueError, match=message):
        stamp.check_box(reader, box, 2)


def _canvas(background: tuple[int, int, int, int]) -> Image.Image:
    image = Image.new("RGBA", (1200, 400), background)
    ImageDraw.Draw(image).line([(500, 200), (600, 150), (700, 220)], fill=(20, 20, 120, 255), width=6)
    return image


@pytest.mark.parametrize(
    "background", [(255, 255, 255, 0), (255, 255, 255, 255)], ids=["transparent", "white"]
)
def test_signature_image_is_cropped_to_its_ink(background: tuple[int, int, int, int]) -> None:
    buffer = io.BytesIO()
    _canvas(background).save(buffer, format="PNG")
    image = stamp.prepare_signature_image(buffer.getvalue())
    assert image is not None
    assert 190 < image.width < 220 and 60 < image.height < 90  # the stroke, not the 1200 x 400 canvas


def test_a_blank_signature_stamps_the_text_alone(signer: signers.SimpleSigner) -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (300, 100), (255, 255, 255, 0)).save(buffer, format="PNG")
    assert stamp.prepare_signature_image(buffer.getvalue()) is None
    visible = VisibleSignature(buffer.getvalue(), StampText("Shelby O'Neil", "Taxpayer"))
    signed = pdfsign.sign_pdf(
        pdfs.make_form_8879(with_fields=True), signer, field_name="Taxpayer", signer_name="S", visible=visible
    )
    assert "Shelby O'Neil" in pdfs.page_text(signed, 1)


def test_names_beyond_the_standard_fonts_are_printed_legibly() -> None:
    assert stamp.printable("Zoë Łukasz Nguyễn") == "Zoë ?ukasz Nguyen"
    layout = stamp.StampLayout.fit(240, 44, StampText("Zoë Łukasz Nguyễn", "Taxpayer"), None)
    for line in layout.lines:
        line.text.encode("cp1252")  # what the stamp writes; must not raise


def test_long_names_shrink_to_fit_the_box() -> None:
    text = StampText(
        "Maximiliana Alexandrina Featherstonehaugh-Cholmondeley", "Spouse - signed 2026-03-02 14:05 UTC"
    )
    layout = stamp.StampLayout.fit(120, 40, text, None)
    for line in layout.lines:
        assert line.x + stringWidth(line.text, line.font, line.size) <= 120


def test_a_long_low_place_puts_the_name_beside_the_signature_large_enough_to_read() -> None:
    """A form's signature line is long and low (285 x 30 points on Form 8879): the name beside the drawn
    signature at a readable size, not squeezed under it."""
    image = stamp.prepare_signature_image(signature_png())
    assert image is not None
    layout = stamp.StampLayout.fit(
        285, 30, StampText("Shelby O'Neil", "Taxpayer - signed 2026-03-02 14:05 UTC"), image
    )
    assert layout.image_rect is not None
    x, _, w, h = layout.image_rect
    name, caption = layout.lines
    assert name.size >= 8 and caption.size >= 4.5
    assert name.x >= x + w and h >= 24  # beside the signature, which keeps the line's height
    for line in layout.lines:
        assert line.x + stringWidth(line.text, line.font, line.size) <= 285
