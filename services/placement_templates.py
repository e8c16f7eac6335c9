"""A firm's templates of signature places, one per form, and its own signature labels.

An 8879 from the firm's tax software looks the same every year: the preparer places the signatures once,
saves the layout as a template, and Portico applies it the next time a document of the same form is
previewed or sent.

Which document is "the same form" is decided by its fingerprint, `FormShape`:
- its geometry, compared exactly: the page count and each page's visible size and rotation (a form never
  changes its paper; another form usually has another page count);
- the words printed on its first page, compared by overlap (Jaccard similarity at least
  `SAME_FORM_SIMILARITY`). Only words of letters are kept: everything with a digit (amounts, SSNs, dates,
  the tax year, EINs, ZIP codes) is dropped, so next year's copy and another client's copy keep the same
  words. What remains of the client's own data is their name and address, a handful of words among the
  form's hundreds of printed words (headings, labels, the declaration), which moves the similarity by a
  few hundredths; another form (8878 beside 8879, say) shares its boilerplate only in part. A hash of
  "lines that contain known labels" was the alternative: it breaks on the first label nobody listed and
  tells nothing about how close two forms are, while the overlap needs no list of labels at all.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fastapi import Request
from pypdf import PdfReader
from sqlmodel import Session, col, select

from core import audit
from core.models import PlacementTemplate, Preparer, SignatureLabel, utcnow
from esign.boxes import ROLES, SignatureBox, boxes_json, loads
from services import Refusal, ServiceError
from services.preparer_settings import actor_of, require_admin

SAME_FORM_SIMILARITY = 0.85
MAX_NAME = 120
MAX_LABEL = 80
MAX_LABELS_PER_ROLE = 10
WORD = re.compile(r"[^\W\d_]{3,}")  # letters only, three or more (drops "of", "a", single initials)
TOKEN = re.compile(r"\S+")
NAME_IT = "Name the template, e.g. “Form 8879 from your tax software”."


@dataclass(frozen=True)
class PageShape:
    """One page's visible area (CropBox, else MediaBox) in PDF points, and its /Rotate."""

    left: float
    bottom: float
    width: float
    height: float
    rotation: int


@dataclass(frozen=True)
class FormShape:
    """A document's fingerprint: its pages' geometry and its first page's form words."""

    pages: tuple[PageShape, ...]
    words: frozenset[str]

    @property
    def geometry(self) -> str:
        sizes = ",".join(f"{p.width:.0f}x{p.height:.0f}r{p.rotation}" for p in self.pages)
        return f"{len(self.pages)}:{sizes}"


def form_words(text: str) -> frozenset[str]:
    """The words of a page's text that belong to the form: tokens with a digit go whole (an amount, an
    SSN, "2025", "8879-A"), the rest are lower-cased words of three letters or more."""
    words: set[str] = set()
    for token in TOKEN.findall(text):
        if any(c.isdigit() for c in token):
            continue
        words.update(w.lower() for w in WORD.findall(token))
    return frozenset(words)


def form_shape(pdf: bytes) -> FormShape:
    """The fingerprint of a PDF that passed the send checks. CPU-heavy: run through `services.parsing`."""
    reader = PdfReader(io.BytesIO(pdf), strict=False)
    pages = []
    for page in reader.pages:
        box = page.cropbox
        left, bottom = float(min(box.left, box.right)), float(min(box.bottom, box.top))
        pages.append(
            PageShape(left, bottom, float(abs(box.width)), float(abs(box.height)), page.rotation % 360)
        )
    try:
        text = reader.pages[0].extract_text() if pages else ""
    except Exception:  # a page whose text can't be read still has a geometry
        text = ""
    return FormShape(tuple(pages), form_words(text))


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _words_of(row: PlacementTemplate) -> frozenset[str]:
    return frozenset(json.loads(row.words or "[]"))


def matching_template(db: Session, firm_id: int, shape: FormShape) -> PlacementTemplate | None:
    """The firm's template for this form: same geometry, and the closest first-page words if close enough."""
    candidates = db.exec(
        select(PlacementTemplate).where(
            PlacementTemplate.firm_id == firm_id, PlacementTemplate.geometry == shape.geometry
        )
    ).all()
    scored = [(similarity(shape.words, _words_of(row)), row) for row in candidates]
    scored = [(score, row) for score, row in scored if score >= SAME_FORM_SIMILARITY]
    if not scored:
        return None
    return max(scored, key=lambda item: (item[0], item[1].id or 0))[1]


def has_templates(db: Session, firm_id: int) -> bool:
    """Whether the firm saved any template (reading a PDF's fingerprint is needed only then)."""
    found = db.exec(select(PlacementTemplate.id).where(PlacementTemplate.firm_id == firm_id)).first()
    return found is not None


def template_places(row: PlacementTemplate, roles: Sequence[str]) -> list[SignatureBox]:
    """The template's places of the signers who sign this document (a joint 8879's template sent to the
    taxpayer alone gives the taxpayer's places only)."""
    return [box for box in loads(row.places) if box.role in roles]


def templates_of(db: Session, firm_id: int) -> list[PlacementTemplate]:
    return list(
        db.exec(
            select(PlacementTemplate)
            .where(PlacementTemplate.firm_id == firm_id)
            .order_by(col(PlacementTemplate.name), col(PlacementTemplate.id))
        ).all()
    )


def places_summary(row: PlacementTemplate) -> str:
    """E.g. "taxpayer: signature, date · spouse: signature, date"."""
    by_role: dict[str, list[str]] = {}
    for box in loads(row.places):
        by_role.setdefault(box.role, []).append(box.kind)
    return " · ".join(f"{role}: {', '.join(kinds)}" for role, kinds in by_role.items())


def save_template(
    db: Session,
    request: Request,
    preparer: Preparer,
    *,
    name: str,
    shape: FormShape,
    places: list[SignatureBox],
) -> PlacementTemplate:
    """Saves the places as the firm's template for this form; a template that already matches the form
    is replaced (one template per form), so a corrected layout wins next time."""
    name = " ".join(name.split())
    if not name:
        raise ServiceError(
            Refusal.INVALID, "Name the template, e.g. “Form 8879 from your tax software”.", "name"
        )
    if len(name) > MAX_NAME:
        raise ServiceError(Refusal.INVALID, f"Keep the name under {MAX_NAME} characters.", "name")
    if not any(box.kind == "signature" for box in places):
        raise ServiceError(
            Refusal.INVALID, "Place at least one signature before saving a template.", "places"
        )
    for box in places:
        if not 1 <= box.page <= len(shape.pages):
            raise ServiceError(
                Refusal.INVALID, f"A place is on page {box.page}, which this form does not have."
            )
    row = matching_template(db, preparer.firm_id, shape) or PlacementTemplate(
        firm_id=preparer.firm_id, name=name, geometry=shape.geometry, words="[]", places="[]",
        created_by=preparer.id,
    )  # fmt: skip
    replaced = row.id is not None
    row.name, row.words, row.places = name, json.dumps(sorted(shape.words)), boxes_json(places)
    row.updated_at = utcnow()
    db.add(row)
    db.flush()
    audit.record(
        db,
        action="firm.placement_template_saved",
        actor=actor_of(request, preparer),
        firm_id=preparer.firm_id,
        detail={"template": row.id, "name": name, "places": len(places), "replaced": replaced},
    )
    db.commit()
    db.refresh(row)
    return row


def delete_template(db: Session, request: Request, preparer: Preparer, template_id: int) -> None:
    require_admin(preparer)
    row = db.get(PlacementTemplate, template_id)
    if row is None or row.firm_id != preparer.firm_id:
        raise ServiceError(Refusal.NOT_FOUND, "No such template.")
    detail = {"template": template_id, "name": row.name}
    _delete_audited(db, request, preparer, row, "firm.placement_template_deleted", detail)


def _delete_audited(
    db: Session,
    request: Request,
    preparer: Preparer,
    row: PlacementTemplate | SignatureLabel,
    action: str,
    detail: dict[str, object],
) -> None:
    """Delete one of the firm's rows, with its audit entry, in one commit."""
    db.delete(row)
    audit.record(
        db, action=action, actor=actor_of(request, preparer), firm_id=preparer.firm_id, detail=detail
    )
    db.commit()


# ---- the firm's own labels ------------------------------------------------------------------------------


def labels_of(db: Session, firm_id: int) -> dict[str, list[str]]:
    """The firm's extra label texts by signer, as `esign.places.find_places` takes them."""
    rows = db.exec(
        select(SignatureLabel).where(SignatureLabel.firm_id == firm_id).order_by(col(SignatureLabel.id))
    ).all()
    labels: dict[str, list[str]] = {}
    for row in rows:
        labels.setdefault(row.role, []).append(row.text)
    return labels


def label_rows(db: Session, firm_id: int) -> list[SignatureLabel]:
    return list(
        db.exec(
            select(SignatureLabel)
            .where(SignatureLabel.firm_id == firm_id)
            .order_by(col(SignatureLabel.role).desc(), col(SignatureLabel.id))
        ).all()
    )


def add_label(db: Session, request: Request, preparer: Preparer, *, role: str, text: str) -> SignatureLabel:
    require_admin(preparer)
    text = " ".join(text.split())
    if role not in ROLES:
        raise ServiceError(Refusal.INVALID, "Choose the taxpayer or the spouse.", "role")
    if len(text) < 3:
        raise ServiceError(Refusal.INVALID, "Type the label as printed, e.g. “Client signature”.", "text")
    if len(text) > MAX_LABEL:
        raise ServiceError(Refusal.INVALID, f"Keep a label under {MAX_LABEL} characters.", "text")
    existing = labels_of(db, preparer.firm_id).get(role, [])
    if any(t.casefold() == text.casefold() for t in existing):
        raise ServiceError(Refusal.CONFLICT, f"“{text}” is already a label for the {role}.", "text")
    if len(existing) >= MAX_LABELS_PER_ROLE:
        raise ServiceError(Refusal.INVALID, f"A signer has at most {MAX_LABELS_PER_ROLE} labels.", "text")
    row = SignatureLabel(firm_id=preparer.firm_id, role=role, text=text, created_by=preparer.id)
    db.add(row)
    db.flush()
    audit.record(
        db,
        action="firm.signature_label_added",
        actor=actor_of(request, preparer),
        firm_id=preparer.firm_id,
        detail={"role": role, "text": text},
    )
    db.commit()
    db.refresh(row)
    return row


def delete_label(db: Session, request: Request, preparer: Preparer, label_id: int) -> None:
    require_admin(preparer)
    row = db.get(SignatureLabel, label_id)
    if row is None or row.firm_id != preparer.firm_id:
        raise ServiceError(Refusal.NOT_FOUND, "No such label.")
    _delete_audited(
        db, request, preparer, row, "firm.signature_label_deleted", {"role": row.role, "text": row.text}
    )


def firm_labels_for(labels: Mapping[str, Sequence[str]], roles: Sequence[str]) -> dict[str, list[str]]:
    return {role: list(labels.get(role, ())) for role in roles if labels.get(role)}
