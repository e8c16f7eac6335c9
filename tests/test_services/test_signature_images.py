"""The signature images the portal makes from a typed name and an uploaded picture
(services.signature_images), what the stamp does with them, and the caption that names the method."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from PIL import Image, ImageDraw

from activities.signing import visible_signature
from core.models import Document, Role, Signer
from esign.stamp import prepare_signature_image
from services import ServiceError
from services.signature_images import UPLOAD_MAX_BYTES, clean_uploaded, render_typed


def _opened(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(png)) as image:
        return image.convert("RGBA")


def photo(ink: bool = True, fmt: str = "JPEG", size: tuple[int, int] = (900, 320)) -> bytes:
    image = Image.new("RGB", size, (236, 232, 224))  # off-white paper, as a phone sees it
    if ink:
        ImageDraw.Draw(image).line([(60, 220), (260, 90), (420, 240), (640, 80), (840, 200)], (25, 30, 70), 7)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def test_a_typed_name_is_ink_on_a_transparent_ground_wider_for_a_longer_name() -> None:
    short, long = _opened(render_typed("Jo Li")), _opened(render_typed("Shelby Łukasz O'Neil"))
    for image in (short, long):
        alpha = image.getchannel("A")
        assert alpha.getextrema() == (0, 255)  # transparent paper, opaque ink
        assert alpha.getbbox() is not None
    assert long.width > 2 * short.width
    assert prepare_signature_image(render_typed("Jo Li")) is not None  # the stamp finds its ink


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "Type your name first."),
        ("   ", "Type your name first."),
        ("x" * 61, "at most 60"),
        ("王小明", "cannot write"),
        ("Jo\x07Li", "letters only"),
        ("12345", "with letters"),
    ],
)
def test_a_typed_name_the_font_cannot_write_is_refused_with_the_reason(name: str, says: str) -> None:
    with pytest.raises(ServiceError) as refused:
        render_typed(name)
    assert says in refused.value.message and refused.value.status_code == 422


def test_an_uploaded_photo_loses_its_paper_and_is_cropped_to_the_ink() -> None:
    cleaned = _opened(clean_uploaded(photo()))
    alpha = cleaned.getchannel("A")
    assert cleaned.getpixel((0, 0))[3] == 0  # the paper is gone
    assert cleaned.width < 900 and cleaned.height < 320  # cropped to the ink, with a small margin
    assert alpha.getextrema()[1] == 255  # the ink stays
    assert _opened(clean_uploaded(photo(fmt="PNG"))).getchannel("A").getextrema() == (0, 255)


def test_an_upload_that_is_not_a_signature_picture_is_refused_clearly() -> None:
    cases = [
        (b"%PDF-1.7\n...", 415, "PNG or JPEG"),
        (b"MZ\x90\x00" + b"\x00" * 100, 415, "PNG or JPEG"),
        (b"", 422, "Choose a picture"),
        (b"\xff\xd8\xff" + b"\x00" * UPLOAD_MAX_BYTES, 413, "larger than 5 MB"),
        (b"\xff\xd8\xff\xe0broken", 422, "damaged"),
        (photo(ink=False), 422, "No signature found"),
    ]
    for data, status, says in cases:
        with pytest.raises(ServiceError) as refused:
            clean_uploaded(data)
        assert refused.value.status_code == status and says in refused.value.message, refused.value


def test_a_dark_photo_is_not_taken_for_a_signature() -> None:
    dark = Image.new("RGB", (400, 300), (40, 40, 40))
    ImageDraw.Draw(dark).rectangle([0, 0, 399, 120], fill=(230, 230, 230))
    out = io.BytesIO()
    dark.save(out, format="JPEG")
    with pytest.raises(ServiceError) as refused:  # mostly dark: no paper to tell ink from
        clean_uploaded(out.getvalue())
    assert refused.value.status_code == 422 and "light paper" in refused.value.message


def _signer(method: str | None) -> Signer:
    return Signer(
        engagement_id=1,
        role=Role.TAXPAYER,
        first_name="Shelby",
        last_name="O'Neil",
        ssn_encrypted=b"x",
        ssn_last4_digest="d",
        signature_method=method,
    )


@pytest.mark.parametrize(
    ("method", "caption"),
    [
        ("typed", "Taxpayer - signed electronically (typed) 2026-03-02 14:05 UTC"),
        ("uploaded", "Taxpayer - signed electronically (uploaded) 2026-03-02 14:05 UTC"),
        ("drawn", "Taxpayer - signed electronically (drawn) 2026-03-02 14:05 UTC"),
        (None, "Taxpayer - signed electronically 2026-03-02 14:05 UTC"),
    ],
)
def test_the_stamp_caption_says_how_the_signature_was_made(method: str | None, caption: str) -> None:
    doc = Document(
        engagement_id=1,
        direction="to_client",
        upload_ref="r",
        name="Form 8879.pdf",
        content_type="application/pdf",
        size=1,
        storage_key="k",
        sha256="s",
        current_key="k",
        current_sha256="s",
        uploaded_by="preparer:1",
    )
    at = datetime(2026, 3, 2, 14, 5, tzinfo=UTC)
    visible = visible_signature(None, _signer(method), doc, at)
    assert visible.text.caption == caption
