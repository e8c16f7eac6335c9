"""A signer's signature image made the three ways the portal offers: drawn on the pad (cleaned in
`services.portal.clean_signature_png`), a typed name written in a handwriting font, or an uploaded picture
of a signature on paper. Each becomes the same kind of PNG (ink on a transparent ground) that the PDF stamp
crops to its ink and embeds, so the stamp shows exactly what the signer saw on the page.
"""

from __future__ import annotations

import io
import unicodedata
from enum import StrEnum
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from services import Refusal, ServiceError
from services.documents import sniff_upload


class SignatureMethod(StrEnum):
    """How the signature on file was made; the stamp's caption and the e-signature record say it."""

    DRAWN = "drawn"
    TYPED = "typed"
    UPLOADED = "uploaded"


# The handwriting font the signature page shows (web/static/signature.css) and the server writes with:
# Dancing Script (SIL OFL 1.1) as @fontsource ships it, one file per Unicode subset (vendor/README.md).
FONT_DIR = Path(__file__).resolve().parents[1] / "web" / "static" / "vendor"
FONT_FILES = {
    "latin": "dancing-script-latin-600-normal.woff2",
    "latin-ext": "dancing-script-latin-ext-600-normal.woff2",
}
# Each file's unicode-range, copied from the package's CSS (the browser picks by these too).
FONT_RANGES = {
    "latin": "0020-00FF,0131,0152-0153,02BB-02BC,02C6,02DA,02DC,0304,0308,0329,2000-206F,20AC,2122,2191,"
    "2193,2212,2215,FEFF,FFFD",
    "latin-ext": "0100-02BA,02BD-02C5,02C7-02CC,02CE-02D7,02DD-02FF,0304,0308,0329,1D00-1DBF,1E00-1E9F,"
    "1EF2-1EFF,2020,20A0-20AB,20AD-20C0,2113,2C60-2C7F,A720-A7FF",
}
INK = (13, 27, 62, 255)  # the pad's pen colour (web/static/signature.js)
TYPED_SIZE = 96  # px: the stamp scales the image down, so write large and stay sharp
TYPED_MAX_CHARS = 60

UPLOAD_MAX_BYTES = 5 * 1024 * 1024  # a phone photo of a signature on paper
UPLOAD_MAX_PIXELS = 40_000_000
UPLOAD_KEEP_PX = 1600  # larger than any stamp needs; smaller is quicker to store and stamp
MARGIN = 8


def _ranges(spec: str) -> list[tuple[int, int]]:
    bounds = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        bounds.append((int(first, 16), int(last or first, 16)))
    return bounds


SUBSET_RANGES = {subset: _ranges(spec) for subset, spec in FONT_RANGES.items()}


def _subset_of(char: str) -> str | None:
    code = ord(char)
    for subset, bounds in SUBSET_RANGES.items():
        if any(first <= code <= last for first, last in bounds):
            return subset
    return None


@cache
def _font(subset: str) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_DIR / FONT_FILES[subset]), TYPED_SIZE)


def typed_name_problem(name: str) -> str | None:
    """Why this typed name cannot be written, in words for the signer; None when it can."""
    if not name:
        return "Type your name first."
    if len(name) > TYPED_MAX_CHARS:
        return f"Type at most {TYPED_MAX_CHARS} characters."
    if any(unicodedata.category(c).startswith("C") for c in name):
        return "Type your name with letters only."
    missing = sorted({c for c in name if _subset_of(c) is None})
    if missing:
        return (
            f"The handwriting font cannot write {' '.join(missing)}. "
            "Draw your signature or upload a picture of it instead."
        )
    if not any(c.isalpha() for c in name):
        return "Type your name with letters."
    return None


def render_typed(name: str) -> bytes:
    """The typed name in the handwriting font, as ink on a transparent PNG."""
    name = " ".join(unicodedata.normalize("NFC", name).split())
    problem = typed_name_problem(name)
    if problem:
        raise ServiceError(Refusal.INVALID, problem, "typed_name")
    runs: list[tuple[str, str]] = []  # (subset, text): each subset's glyphs are in its own file
    for char in name:
        subset = _subset_of(char) or "latin"
        if runs and runs[-1][0] == subset:
            runs[-1] = (subset, runs[-1][1] + char)
        else:
            runs.append((subset, char))
    width = sum(_font(subset).getlength(text) for subset, text in runs)
    ascent, descent = _font("latin").getmetrics()
    pad = TYPED_SIZE // 2  # the script's swashes reach beyond its advance widths
    image = Image.new("RGBA", (int(width) + 2 * pad, ascent + descent + pad), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    x, baseline = float(pad), ascent + pad // 2
    for subset, text in runs:
        draw.text((x, baseline), text, font=_font(subset), fill=INK, anchor="ls")
        x += _font(subset).getlength(text)
    return _crop_to_ink(image)


def clean_uploaded(data: bytes) -> bytes:
    """A photo or scan of a signature on light paper: the paper becomes transparent and the ink stays,
    turned upright (EXIF), scaled down and cropped to the ink. Nothing else the file carried survives."""
    if len(data) > UPLOAD_MAX_BYTES:
        raise ServiceError(
            Refusal.TOO_LARGE, f"The picture is larger than {UPLOAD_MAX_BYTES // (1024 * 1024)} MB.", "image"
        )
    if not data:
        raise ServiceError(Refusal.INVALID, "Choose a picture of your signature.", "image")
    if sniff_upload(data) not in ("image/png", "image/jpeg"):  # by content, like every upload
        raise ServiceError(Refusal.UNSUPPORTED, "Upload your signature as a PNG or JPEG picture.", "image")
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > UPLOAD_MAX_PIXELS:
                raise ServiceError(Refusal.INVALID, "The picture has too many pixels.", "image")
            image = ImageOps.exif_transpose(opened).convert("RGBA")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ServiceError(Refusal.INVALID, "The picture is damaged.", "image") from exc
    image.thumbnail((UPLOAD_KEEP_PX, UPLOAD_KEEP_PX), Image.Resampling.LANCZOS)
    lowest, _ = image.getchannel("A").getextrema()
    if not (isinstance(lowest, int) and lowest < 255):  # opaque: take the paper away
        image.putalpha(_ink_alpha(image.convert("L")))
    alpha_histogram = image.getchannel("A").histogram()
    inked = sum(alpha_histogram[129:]) / (image.width * image.height)
    if inked == 0:
        raise ServiceError(
            Refusal.INVALID, "No signature found in the picture: sign in dark ink on light paper.", "image"
        )
    if inked > 0.5:
        raise ServiceError(
            Refusal.INVALID,
            "This does not look like a signature on light paper. Crop the picture to your signature.",
            "image",
        )
    return _crop_to_ink(image)


def _ink_alpha(gray: Image.Image) -> Image.Image:
    """Opacity by darkness against the paper: the paper's brightness is the picture's usual one (most
    of a signature's picture is paper), and a pixel counts as ink once clearly darker than it."""
    histogram = gray.histogram()
    total, seen, paper = sum(histogram), 0, 255
    for level, count in enumerate(histogram):
        seen += count
        if seen >= total / 2:
            paper = level
            break
    return gray.point(lambda v: max(0, min(255, (paper - v - 32) * 4)))


def _crop_to_ink(image: Image.Image) -> bytes:
    box = image.getchannel("A").point(lambda a: 255 if a > 24 else 0).getbbox()
    if box is None:
        raise ServiceError(Refusal.INVALID, "The signature came out empty.")
    left, top, right, bottom = box
    cropped = image.crop(
        (
            max(0, left - MARGIN),
            max(0, top - MARGIN),
            min(image.width, right + MARGIN),
            min(image.height, bottom + MARGIN),
        )
    )
    out = io.BytesIO()
    cropped.save(out, format="PNG")
    return out.getvalue()
