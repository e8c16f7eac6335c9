"""Where each signer signs: the pages of a document as images, with the places on them.

- `preview`: the PDF a preparer chose on the send form, checked exactly as sending checks it (the same
  refusals), its first pages drawn, and the places Portico would use: the firm's template for this form
  when one matches (`services.placement_templates`), else the places found on the page
  (`esign.places.find_places`, with the firm's own labels). The placement editor (web/static/placement.js)
  shows them and lets the preparer change them before sending.
- `document_view`: the same pages of a document sent for signature, with the places of the client who
  looks at it, for the portal's read-only view.

Pages are drawn by poppler's pdftoppm (no pdf.js in the browser) at most `MAX_PAGES` of them, as PNG data
URLs in the answer: nothing is stored, nothing outlives the request. The PDF checks and the finder run in
the parsing pool's processes, pdftoppm in a subprocess with a time limit: the event loop never waits.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from core.models import Document, Engagement, PlacementTemplate, Signature
from esign import pdfsign, places
from esign.boxes import SignatureBox, loads, parse_signature_boxes
from services import Refusal, ServiceError, parsing, upload_checks
from services import placement_templates as templates
from services.client_library import on_return_of
from services.context import PreparerContext, TaxpayerContext
from services.documents import safe_filename
from services.preparer_engagements import WHO_SIGNS

MAX_PAGES = 10
IMAGE_PX = 1100  # the longest side of a page image: sharp enough to place on, small enough to send
RENDER_SECONDS = 20.0
NOT_DRAWN = "Portico could not draw this PDF's pages. Send it as it is: the places are found when it is sent."


@dataclass(frozen=True)
class PageView:
    """One page as the editor draws it: its visible area in PDF points (unrotated) and its /Rotate, so
    a place's points map onto the image, which shows the page as a reader sees it (rotated, cropped)."""

    number: int
    left: float
    bottom: float
    width: float
    height: float
    rotation: int
    image: str  # a PNG data URL


@dataclass
class Placing:
    """What the editor starts from."""

    name: str
    roles: list[str]
    page_count: int
    pages: list[PageView]
    places: list[SignatureBox]
    source: str  # "template": the firm's template for this form; "found": found on the page; "none"
    template: str | None = None  # the template's name
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "roles": self.roles,
            "page_count": self.page_count,
            "pages": [asdict(page) for page in self.pages],
            "places": [asdict(place) for place in self.places],
            "source": self.source,
            "template": self.template,
            "notes": self.notes,
        }


# ---- in the parsing pool -------------------------------------------------------------------------------


def inspect_for_placing(
    pdf: bytes, limit: int, roles: list[str], labels: dict[str, list[str]]
) -> tuple[templates.FormShape, list[SignatureBox]]:
    """The send checks (PdfRejected / ServiceError as a send refuses), the form's fingerprint, and the
    places found on its pages. CPU-heavy: run through `services.parsing`."""
    pdfsign.check_pdf_for_sending(pdf, limit, roles=roles)
    problem = upload_checks.pdf_problem(pdf)
    if problem is not None:
        raise ServiceError(Refusal.INVALID, problem)
    shape = templates.form_shape(pdf)
    return shape, find_places(pdf, roles, labels) if roles else []


def find_places(pdf: bytes, roles: Sequence[str], labels: Mapping[str, Sequence[str]]) -> list[SignatureBox]:
    """`esign.places.find_places`; a document whose text the finder can't read has no places found
    rather than no preview (the preparer places them by hand)."""
    try:
        return list(places.find_places(pdf, roles, labels or None))
    except Exception:
        return []


def shape_of_checked(pdf: bytes, limit: int) -> templates.FormShape:
    """The fingerprint of a PDF, after the send checks (saving a template re-reads the chosen file)."""
    pdfsign.check_pdf_for_sending(pdf, limit)
    return templates.form_shape(pdf)


# ---- drawing pages -------------------------------------------------------------------------------------


def pdftoppm() -> str | None:
    return shutil.which("pdftoppm") or ("/usr/bin/pdftoppm" if Path("/usr/bin/pdftoppm").exists() else None)


def render_pages(pdf: bytes, pages: int) -> list[bytes]:
    """PNG images of the first `pages` pages (CropBox, rotation applied, as a reader sees them); [] when
    poppler is missing or gives up. Blocking: run in a thread."""
    tool = pdftoppm()
    if tool is None or pages < 1:
        return []
    with tempfile.TemporaryDirectory(prefix="portico-pages-") as folder:
        source = Path(folder) / "in.pdf"
        source.write_bytes(pdf)
        command = [
            tool, "-f", "1", "-l", str(pages), "-cropbox", "-scale-to", str(IMAGE_PX), "-png",
            str(source), str(Path(folder) / "page"),
        ]  # fmt: skip
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=RENDER_SECONDS)  # noqa: S603
        except (subprocess.SubprocessError, OSError):
            return []
        images = sorted(Path(folder).glob("page-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        return [image.read_bytes() for image in images]


def _page_views(shape: templates.FormShape, images: list[bytes]) -> list[PageView]:
    return [
        PageView(
            number,
            page.left,
            page.bottom,
            page.width,
            page.height,
            page.rotation,
            "data:image/png;base64," + base64.b64encode(png).decode(),
        )
        for number, (page, png) in enumerate(zip(shape.pages, images, strict=False), start=1)
    ]


# ---- the preparer's preview ----------------------------------------------------------------------------


async def preview(ctx: PreparerContext, engagement: Engagement, upload: UploadFile, who: str) -> Placing:
    """The chosen PDF's first pages and the places Portico would use for `who` (a key of WHO_SIGNS)."""
    name = safe_filename(upload.filename or "document.pdf")
    if who not in WHO_SIGNS:
        raise ServiceError(Refusal.INVALID, f"{name}: who signs must be taxpayer, spouse, both or none.")
    roles = WHO_SIGNS[who]
    limit = ctx.resources.settings.max_upload_bytes
    data = await upload.read(limit + 1)
    labels = templates.firm_labels_for(templates.labels_of(ctx.db, ctx.firm_id), roles)
    try:
        shape, found = await parsing.in_process(name, inspect_for_placing, data, limit, roles, labels)
    except pdfsign.PdfRejected as exc:
        raise ServiceError(Refusal.INVALID, f"{name}: {exc.reason}") from exc
    template = templates.matching_template(ctx.db, ctx.firm_id, shape)
    places, source = found, "found" if found else "none"
    if template is not None and roles:
        places, source = _with_template(templates.template_places(template, roles), found, roles), "template"
    images = await run_in_threadpool(render_pages, data, min(MAX_PAGES, len(shape.pages)))
    placing = Placing(
        name, roles, len(shape.pages), _page_views(shape, images), places, source,
        template.name if template is not None and source == "template" else None,
    )  # fmt: skip
    if not images:
        placing.notes.append(NOT_DRAWN)
    elif len(shape.pages) > MAX_PAGES:
        placing.notes.append(f"Showing the first {MAX_PAGES} of {len(shape.pages)} pages.")
    return placing


def _with_template(
    from_template: list[SignatureBox], found: list[SignatureBox], roles: Sequence[str]
) -> list[SignatureBox]:
    """The template's places; a signer the template has no signature for keeps what was found for them."""
    covered = {box.role for box in from_template if box.kind == "signature"}
    return from_template + [box for box in found if box.role in roles and box.role not in covered]


async def save_as_template(
    ctx: PreparerContext, request: Request, upload: UploadFile, name: str, places_json: str
) -> PlacementTemplate:
    """The preparer's places saved as the firm's template for the form of the chosen PDF."""
    file_name = safe_filename(upload.filename or "document.pdf")
    limit = ctx.resources.settings.max_upload_bytes
    data = await upload.read(limit + 1)
    try:
        places = parse_signature_boxes(places_json)
    except ValueError as exc:
        raise ServiceError(Refusal.INVALID, str(exc), "places") from exc
    try:
        shape = await parsing.in_process(file_name, shape_of_checked, data, limit)
    except pdfsign.PdfRejected as exc:
        raise ServiceError(Refusal.INVALID, f"{file_name}: {exc.reason}") from exc
    return templates.save_template(ctx.db, request, ctx.preparer, name=name, shape=shape, places=places)


# ---- the client's view ---------------------------------------------------------------------------------


@dataclass
class DocumentView:
    pages: list[PageView]
    page_count: int
    mine: list[SignatureBox]  # the places of the client who looks

    def places_json(self) -> list[dict[str, Any]]:
        return [asdict(place) for place in self.mine]

    def page_json(self, page: PageView) -> dict[str, Any]:
        return {k: v for k, v in asdict(page).items() if k != "image"}

    def by_page(self) -> list[tuple[int, list[str]]]:
        """Where the client signs, in words: [(page, [kinds…])], in page order."""
        pages: dict[int, list[str]] = {}
        for place in self.mine:
            pages.setdefault(place.page, []).append(place.kind)
        return sorted(pages.items())


def _shape_of(pdf: bytes) -> templates.FormShape:
    return templates.form_shape(pdf)


async def where_to_sign(ctx: TaxpayerContext, document: Document) -> DocumentView | None:
    """The document's pages with the places of the client looking at it, while their signature on it is
    still to come; None otherwise (a document they needn't sign, signed, declined or replaced already:
    the PDF itself shows then). Their places only: on a joint return the spouse's are not theirs to sign."""
    _, own = on_return_of(ctx, document.id or 0)  # the signer on the document's own return
    role = own.signer.role
    pending = ctx.db.exec(
        select(Signature).where(
            Signature.document_id == document.id,
            Signature.role == role,
            col(Signature.signed_at).is_(None),
            col(Signature.declined_at).is_(None),  # declined: nothing to sign until a corrected copy
        )
    ).first()
    if pending is None or document.replaced_by is not None:
        return None
    # As it is now: a spouse's signature already made shows; the places were set on these same pages.
    data = await run_in_threadpool(ctx.resources.store.get, document.current_key)
    shape = await parsing.in_process(document.name, _shape_of, data)
    images = await run_in_threadpool(render_pages, data, min(MAX_PAGES, len(shape.pages)))
    mine = [box for box in loads(document.signature_boxes) if box.role == role.value]
    return DocumentView(_page_views(shape, images), len(shape.pages), mine)
