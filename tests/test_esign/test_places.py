"""Finding each signer's place on a flattened form: the signature on its printed line, the date in its box.

The corpus is generated like the forms tax software prints (reportlab; no form fields): Form 8879 in three
fonts, at different heights, on page 2, on pages turned by /Rotate; an engagement letter with the label under
the line; Form 1040's ruled "Sign Here" cells. Each found place must sit on the line it names, within a few
points, in the upright space a reader sees.
"""

from __future__ import annotations

import pytest
from pdfs import (
    PrintedForm,
    SignLine,
    make_engagement_letter,
    make_form_1040_sign_here,
    make_pdf,
    print_form_8879,
)

from esign.boxes import SignatureBox
from esign.places import find_places

TOLERANCE = 4.0  # points


def upright(form: PrintedForm, box: SignatureBox) -> tuple[float, float, float, float]:
    """A found box as a reader sees it on the turned page: (x0, y0, x1, y1)."""
    width, height = form.size
    corners = [(box.x, box.y), (box.x + box.width, box.y + box.height)]
    seen = []
    for x, y in corners:
        if form.rotate == 90:
            seen.append((y, width - x))
        elif form.rotate == 180:
            seen.append((width - x, height - y))
        elif form.rotate == 270:
            seen.append((height - y, x))
        else:
            seen.append((x, y))
    (ax, ay), (bx, by) = seen
    return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)


def assert_on_line(form: PrintedForm, box: SignatureBox, line: SignLine) -> None:
    x0, y0, x1, y1 = upright(form, box)
    assert box.page == line.page
    assert abs(y0 - line.y) <= TOLERANCE, f"{box.kind} of {box.role} starts at {y0:.1f}, line at {line.y}"
    assert line.x0 - TOLERANCE <= x0 and x1 <= line.x1 + TOLERANCE, (x0, x1, line)
    assert x1 - x0 >= 0.8 * (line.x1 - line.x0), "the place should use most of the line"
    assert y1 - y0 >= 14


def places(
    form: PrintedForm, roles: tuple[str, ...] = ("taxpayer", "spouse")
) -> dict[tuple[str, str], SignatureBox]:
    found = find_places(form.pdf, list(roles))
    keyed = {(box.role, box.kind): box for box in found}
    assert len(keyed) == len(found), "one place of each kind per signer"
    return keyed


CORPUS = {
    "8879 Helvetica": lambda: print_form_8879(),
    "8879 Times": lambda: print_form_8879(font="Times-Roman"),
    "8879 Courier, high on the page": lambda: print_form_8879(font="Courier", top=420),
    "8879 low on the page": lambda: print_form_8879(top=160, left=72),
    "8879 on page 2": lambda: print_form_8879(page=2),
    "8879 turned 90": lambda: print_form_8879(rotate=90),
    "8879 turned 180": lambda: print_form_8879(rotate=180),
    "8879 turned 270": lambda: print_form_8879(rotate=270, font="Times-Roman"),
    "8879 Taxpayer's signature": lambda: print_form_8879(taxpayer_label="Taxpayer's signature"),
    "engagement letter": lambda: make_engagement_letter(),
    "1040 Sign Here": lambda: make_form_1040_sign_here(),
}


@pytest.mark.parametrize("name", CORPUS)
def test_each_signer_is_placed_on_their_line_and_the_date_in_its_box(name: str) -> None:
    form = CORPUS[name]()
    found = places(form)
    for line in form.lines:
        assert (line.role, line.kind) in found, f"no {line.kind} place found for the {line.role}"
        assert_on_line(form, found[(line.role, line.kind)], line)


def test_a_single_return_places_the_taxpayer_only() -> None:
    form = print_form_8879(joint=False)
    found = places(form)
    assert {role for role, _ in found} == {"taxpayer"}
    assert_on_line(form, found[("taxpayer", "signature")], form.line("taxpayer"))


def test_only_the_signers_asked_for_are_placed() -> None:
    found = places(print_form_8879(), roles=("spouse",))
    assert {role for role, _ in found} == {"spouse"}


def test_a_firm_label_places_a_signer_the_defaults_would_miss() -> None:
    form = print_form_8879(joint=False, taxpayer_label="Client acceptance")
    assert find_places(form.pdf, ["taxpayer"]) == []
    [signature, date] = find_places(form.pdf, ["taxpayer"], {"taxpayer": ["Client acceptance"]})
    assert (signature.kind, date.kind) == ("signature", "date")
    assert_on_line(form, signature, form.line("taxpayer"))


def test_a_label_mentioned_in_a_sentence_is_not_a_place() -> None:
    form = print_form_8879(
        joint=False,
        taxpayer_label=(
            "Taxpayer's signature is required on this form before the return can be filed electronically"
        ),
    )
    assert find_places(form.pdf, ["taxpayer"]) == []


def test_a_form_without_labels_has_no_places() -> None:
    assert find_places(make_pdf(title="Form 1099-INT", sign_lines=False), ["taxpayer", "spouse"]) == []


def test_a_long_return_is_laid_out_only_where_a_label_is_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    """pdfminer's layout takes about half a second a page: a 40-page return must not take 20 seconds."""
    from esign import places as module

    laid_out: list[int] = []
    real = module.extract_pages

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        for layout in real(*args, **kwargs):
            laid_out.append(layout.pageid)
            yield layout

    monkeypatch.setattr(module, "extract_pages", counting)
    form = print_form_8879(page=40)
    found = places(form)
    assert {key[0] for key in found} == {"taxpayer", "spouse"}
    assert_on_line(form, found[("spouse", "signature")], form.line("spouse"))
    assert len(laid_out) == 1  # page 40 alone
