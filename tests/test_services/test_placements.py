"""Signature places before sending (services/placements.py, services/placement_templates.py): the preview
draws the pages and finds the places, refuses what a send refuses, applies the firm's template to the same
form printed for another client in another year (and not to another form), looks for the firm's own
labels, and the send takes the template's places; only administrators delete templates or change labels."""

from __future__ import annotations

import base64
import io
from typing import Any, cast

import pytest
from PIL import Image
from placement_pdfs import FORM_8878, signature_form
from preparer_steps import add_preparer
from pypdf import PdfWriter
from pypdf.generic import RectangleObject
from sqlmodel import Session, select
from starlette.datastructures import UploadFile
from starlette.requests import Request

from core.actor import Actor
from core.context import Resources
from core.models import PlacementTemplate, Preparer
from esign import pdfsign
from esign.boxes import SignatureBox
from services import Refusal, ServiceError, placements
from services import placement_templates as templates
from services import preparer_engagements as engagements
from services.context import PreparerContext

JOINT = ["taxpayer", "spouse"]
NEXT_YEAR = {"client": "Maria Garcia and Tom Garcia", "ssn": "111-22-3333", "year": 2026}


def request() -> Request:
    return Request({"type": "http", "method": "POST", "headers": [], "client": ("203.0.113.9", 5000)})


def context(resources: Resources, db: Session, preparer: Preparer) -> PreparerContext:
    actor = Actor(kind="preparer", id=str(preparer.id), ip="203.0.113.9", user_agent="test")
    return PreparerContext(db, resources, cast(Any, None), cast(Any, None), preparer, actor)


def chosen(data: bytes, name: str = "Form 8879.pdf") -> UploadFile:
    return UploadFile(io.BytesIO(data), filename=name)


def preparer_of(db: Session, email: str) -> Preparer:
    return db.exec(select(Preparer).where(Preparer.email == email)).one()


@pytest.fixture
def people(resources: Resources) -> Resources:
    add_preparer(resources, "ada@firm.test", "Lovelace Tax")  # the firm's first: its administrator
    add_preparer(resources, "bob@firm.test", "Lovelace Tax", "Bob")
    add_preparer(resources, "eve@other.test", "Other Firm", "Eve")
    with Session(resources.engine) as db:
        ada = preparer_of(db, "ada@firm.test")
        ada.is_admin = True
        db.add(ada)
        db.commit()
    return resources


async def preview(resources: Resources, email: str, data: bytes, who: str = "both") -> placements.Placing:
    with Session(resources.engine) as db:
        ctx = context(resources, db, preparer_of(db, email))
        return await placements.preview(ctx, cast(Any, None), chosen(data), who)


def near(found: list[SignatureBox], role: str, kind: str) -> SignatureBox:
    [box] = [b for b in found if b.role == role and b.kind == kind]
    return box


async def test_the_preview_draws_the_pages_and_finds_each_signers_places(people: Resources) -> None:
    shown = await preview(people, "ada@firm.test", signature_form())
    assert shown.source == "found" and shown.page_count == 2 and shown.roles == JOINT
    for page in shown.pages:
        assert (page.width, page.height, page.rotation) == (612, 792, 0)
        png = base64.b64decode(page.image.removeprefix("data:image/png;base64,"))
        with Image.open(io.BytesIO(png)) as image:
            assert max(image.size) == placements.IMAGE_PX
            assert image.width / image.height == pytest.approx(612 / 792, abs=0.01)
    # On the printed lines (the taxpayer's at y=330, the spouse's at 270), the dates in their boxes.
    assert near(shown.places, "taxpayer", "signature").y == pytest.approx(330, abs=4)
    assert near(shown.places, "spouse", "signature").y == pytest.approx(270, abs=4)
    assert near(shown.places, "taxpayer", "date").x >= 420
    only_taxpayer = await preview(people, "ada@firm.test", signature_form(), who="taxpayer")
    assert {b.role for b in only_taxpayer.places} == {"taxpayer"}


async def test_a_cropped_page_is_drawn_as_shown_and_measured_from_its_crop_box(people: Resources) -> None:
    """The image shows the CropBox (what a reader sees) and the page says where that box starts, so the
    editor maps places in the page's own coordinates onto the image."""
    writer = PdfWriter(clone_from=io.BytesIO(signature_form(pages=1)))
    writer.pages[0].cropbox = RectangleObject((36, 72, 576, 792))
    cropped = io.BytesIO()
    writer.write(cropped)
    shown = await preview(people, "ada@firm.test", cropped.getvalue())
    [page] = shown.pages
    assert (page.left, page.bottom, page.width, page.height) == (36, 72, 540, 720)
    png = base64.b64decode(page.image.removeprefix("data:image/png;base64,"))
    with Image.open(io.BytesIO(png)) as image:
        assert image.width / image.height == pytest.approx(540 / 720, abs=0.01)


@pytest.mark.parametrize(
    "data",
    [b"\x89PNG\r\n\x1a\n" + bytes(64), signature_form()[:900], b"%PDF-1.7\n%%EOF"],
    ids=["png", "cut", "empty"],
)
async def test_the_preview_refuses_a_file_as_sending_does(people: Resources, data: bytes) -> None:
    with pytest.raises(pdfsign.PdfRejected) as sending:
        pdfsign.check_pdf_for_sending(data, people.settings.max_upload_bytes, roles=JOINT)
    with pytest.raises(ServiceError) as refused:
        await preview(people, "ada@firm.test", data)
    assert refused.value.kind is Refusal.INVALID
    assert refused.value.message == f"Form 8879.pdf: {sending.value.reason}"


def test_the_fingerprint_keeps_the_forms_words_and_drops_the_clients_numbers() -> None:
    assert templates.form_words("Form 8879 (2025) Jordan O'Neil 123-45-6789 $84,210 Your signature") == {
        "form",
        "jordan",
        "neil",
        "your",
        "signature",
    }
    this_year, next_year = (templates.form_shape(signature_form(**c)) for c in ({}, NEXT_YEAR))
    other_form = templates.form_shape(signature_form(**FORM_8878))
    assert this_year.geometry == next_year.geometry == other_form.geometry == "2:612x792r0,612x792r0"
    assert templates.similarity(this_year.words, next_year.words) >= templates.SAME_FORM_SIMILARITY
    assert templates.similarity(this_year.words, other_form.words) < templates.SAME_FORM_SIMILARITY


async def test_a_saved_template_places_the_same_form_for_another_client_and_year(people: Resources) -> None:
    moved = [
        SignatureBox("taxpayer", 1, 160, 334, 220, 30),
        SignatureBox("taxpayer", 1, 452, 332, 100, 16, kind="date"),
        SignatureBox("spouse", 1, 160, 274, 220, 30),
        SignatureBox("spouse", 1, 60, 240, 150, 16, kind="name"),
    ]
    with Session(people.engine) as db:
        ada = preparer_of(db, "ada@firm.test")
        shape = templates.form_shape(signature_form())
        templates.save_template(db, request(), ada, name="Form 8879 from Drake", shape=shape, places=moved)

    shown = await preview(people, "bob@firm.test", signature_form(**NEXT_YEAR))  # a colleague, next year
    assert (shown.source, shown.template) == ("template", "Form 8879 from Drake")
    assert shown.places == moved
    # Another form of the same size, or this one with one page, is not matched; nor in another firm.
    assert (await preview(people, "bob@firm.test", signature_form(**FORM_8878))).source == "found"
    assert (await preview(people, "bob@firm.test", signature_form(pages=1))).source == "found"
    assert (await preview(people, "eve@other.test", signature_form(**NEXT_YEAR))).source == "found"

    # The send uses it too, for the signers who sign this document.
    with Session(people.engine) as db:
        firm_id = preparer_of(db, "ada@firm.test").firm_id
    given, _ = await engagements._places_for(people, firm_id, signature_form(**NEXT_YEAR), JOINT)
    assert given == moved
    given, _ = await engagements._places_for(people, firm_id, signature_form(**NEXT_YEAR), ["taxpayer"])
    assert given == moved[:2]
    given, _ = await engagements._places_for(people, firm_id, signature_form(**FORM_8878), JOINT)
    assert given == []  # the finder's turn

    # Saving again for the same form replaces the template rather than adding a second.
    with Session(people.engine) as db:
        bob = preparer_of(db, "bob@firm.test")
        again = templates.form_shape(signature_form(**NEXT_YEAR))
        templates.save_template(db, request(), bob, name="Form 8879 (Drake)", shape=again, places=moved[:3])
        rows = db.exec(select(PlacementTemplate)).all()
        assert [(r.name, len(templates.loads(r.places))) for r in rows] == [("Form 8879 (Drake)", 3)]


async def test_the_firms_own_labels_are_looked_for(people: Resources) -> None:
    letter = signature_form(taxpayer_label="Client signature", form="Engagement letter")
    shown = await preview(people, "ada@firm.test", letter)
    assert {b.role for b in shown.places} == {"spouse"}  # "Client signature" is no label Portico knows
    with Session(people.engine) as db:
        templates.add_label(
            db, request(), preparer_of(db, "ada@firm.test"), role="taxpayer", text="Client  signature"
        )
        assert templates.labels_of(db, preparer_of(db, "ada@firm.test").firm_id) == {
            "taxpayer": ["Client signature"]
        }
    shown = await preview(people, "bob@firm.test", letter)
    assert near(shown.places, "taxpayer", "signature").y == pytest.approx(330, abs=4)
    # Another firm's labels are its own.
    assert {b.role for b in (await preview(people, "eve@other.test", letter)).places} == {"spouse"}


def test_only_administrators_change_templates_and_labels(people: Resources) -> None:
    with Session(people.engine) as db:
        ada, bob, eve = (preparer_of(db, e) for e in ("ada@firm.test", "bob@firm.test", "eve@other.test"))
        eve.is_admin = True
        shape = templates.form_shape(signature_form())
        row = templates.save_template(
            db,
            request(),
            bob,
            name="Form 8879",
            shape=shape,
            places=[SignatureBox("taxpayer", 1, 150, 328, 250, 30)],
        )
        label = templates.add_label(db, request(), ada, role="spouse", text="Co-client signature")
        for attempt in (
            lambda: templates.delete_template(db, request(), bob, row.id or 0),
            lambda: templates.add_label(db, request(), bob, role="taxpayer", text="Client signature"),
            lambda: templates.delete_label(db, request(), bob, label.id or 0),
        ):
            with pytest.raises(ServiceError) as refused:
                attempt()
            assert refused.value.kind is Refusal.FORBIDDEN
        for attempt in (
            lambda: templates.delete_template(db, request(), eve, row.id or 0),
            lambda: templates.delete_label(db, request(), eve, label.id or 0),
        ):
            with pytest.raises(ServiceError) as refused:
                attempt()
            assert refused.value.kind is Refusal.NOT_FOUND  # another firm's: no hint it exists
        with pytest.raises(ServiceError, match="already a label"):
            templates.add_label(db, request(), ada, role="spouse", text="co-client SIGNATURE")
        templates.delete_template(db, request(), ada, row.id or 0)
        templates.delete_label(db, request(), ada, label.id or 0)
        assert templates.templates_of(db, ada.firm_id) == [] and templates.labels_of(db, ada.firm_id) == {}
