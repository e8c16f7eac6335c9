"""A signature fills every place of its signer: the stamp on the line, the date, initials and printed name
in their boxes, on pages turned by /Rotate too, and every signature still validates."""

from __future__ import annotations

from pathlib import Path

import pdfs
import pytest
from journey import signature_png
from pyhanko.sign import signers
from signing_fixtures import dev_signer

from esign import pdfsign, stamp
from esign.boxes import SignatureBox
from esign.places import find_places

NAMES = {"taxpayer": "Shelby O'Neil", "spouse": "Jordan O'Neil"}


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> tuple[signers.SimpleSigner, Path]:
    return dev_signer(tmp_path_factory.mktemp("keys"))


def sign_in_places(pdf: bytes, signer: signers.SimpleSigner, places: list[SignatureBox], role: str) -> bytes:
    def page_box(place: SignatureBox) -> stamp.PageBox:
        return stamp.PageBox(place.page, place.x, place.y, place.width, place.height)

    texts = {"date": "03/02/2026", "initials": "SO", "name": NAMES[role]}
    mine = [p for p in places if p.role == role]
    visible = pdfsign.VisibleSignature(
        signature_png(),
        stamp.StampText(NAMES[role], f"{role.capitalize()} - signed electronically 2026-03-02 14:05 UTC"),
        next(page_box(p) for p in mine if p.kind == "signature"),
        tuple(stamp.Mark(p.kind, page_box(p), texts[p.kind]) for p in mine if p.kind != "signature"),
    )
    return pdfsign.sign_pdf(
        pdf,
        signer,
        field_name=role.capitalize(),
        signer_name=NAMES[role],
        visible=visible,
        reserve_certificate_page=True,
    )


@pytest.mark.parametrize("rotate", [0, 90, 180, 270])
def test_both_signers_land_on_their_lines_on_a_turned_page(
    rotate: int, signer: tuple[signers.SimpleSigner, Path]
) -> None:
    key, ca = signer
    form = pdfs.print_form_8879(rotate=rotate)
    places = find_places(form.pdf, ["taxpayer", "spouse"])
    signed = sign_in_places(sign_in_places(form.pdf, key, places, "taxpayer"), key, places, "spouse")

    before, after = pdfs.render_page(form.pdf, 1, dpi=72), pdfs.render_page(signed, 1, dpi=72)
    assert before.size == after.size
    drawn = 0
    for role in ("taxpayer", "spouse"):
        line, date = form.line(role), form.line(role, "date")
        on_line = pdfs.ink_in(before, after, (line.x0, line.y - 3, line.x1, line.y + 32))
        in_date_box = pdfs.ink_in(before, after, (date.x0, line.y - 2, date.x1, line.y + 18))
        assert on_line > 150 and in_date_box > 20, (role, on_line, in_date_box)
        drawn += on_line + in_date_box
    assert pdfs.ink_in(before, after, (0, 0, before.width, before.height)) == drawn
    # Upright: the date reads left to right on the turned page, as the form's own text does.
    assert "03/02/2026" in pdfs.page_text(signed, 1)
    reports = pdfsign.read_signatures(signed, [ca])
    assert [(r.field_name, r.holds) for r in reports] == [("Taxpayer", True), ("Spouse", True)]


def test_initials_and_a_printed_name_are_filled_by_the_same_signature(
    signer: tuple[signers.SimpleSigner, Path],
) -> None:
    key, ca = signer
    form = pdfs.print_form_8879(joint=False)
    found = find_places(form.pdf, ["taxpayer"])
    extra = [
        SignatureBox("taxpayer", 1, 54, 560, 40, 16, "initials"),
        SignatureBox("taxpayer", 1, 300, 560, 160, 16, "name"),
    ]
    signed = sign_in_places(form.pdf, key, [*found, *extra], "taxpayer")
    text = pdfs.page_text(signed, 1)
    assert "SO" in text and text.count("Shelby O'Neil") >= 2  # the stamp's printed name, and the name place
    [report] = pdfsign.read_signatures(signed, [ca])
    assert report.holds
    before, after = pdfs.render_page(form.pdf, 1, dpi=72), pdfs.render_page(signed, 1, dpi=72)
    assert (
        pdfs.ink_in(before, after, (54, 560, 94, 576)) > 10
        and pdfs.ink_in(before, after, (300, 560, 460, 576)) > 30
    )


def test_a_mark_on_another_page_than_its_signature_is_refused(
    signer: tuple[signers.SimpleSigner, Path],
) -> None:
    key, _ = signer
    form = pdfs.print_form_8879(page=2)
    places = [*find_places(form.pdf, ["taxpayer"]), SignatureBox("taxpayer", 1, 300, 300, 100, 16, "date")]
    with pytest.raises(ValueError, match="same page as their signature"):
        sign_in_places(form.pdf, key, places, "taxpayer")
