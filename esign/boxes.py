"""Places on a document: where each signer's signature, signing date, initials or printed name go.

A place is found by itself when a document is sent (esign/places.py: the form's own signature field, else
the printed "Taxpayer's signature" line and its "Date" box), or drawn by the preparer in the placement
editor, or taken from a saved template. Every place of one signer is filled by that signer's one signature,
in one PDF revision.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from esign import stamp

KINDS = ("signature", "date", "initials", "name")
"""What a place holds: the drawn signature (with the printed name and caption), the signing date, the
signer's initials, or their printed name."""
ROLES = ("taxpayer", "spouse")


@dataclass(frozen=True)
class SignatureBox:
    """One place for one signer, in PDF points from the page's lower left (unrotated user space)."""

    role: str
    page: int  # 1 = first page
    x: float
    y: float
    width: float
    height: float
    kind: str = "signature"


def boxes_json(boxes: list[SignatureBox]) -> str:
    return json.dumps([dataclasses.asdict(box) for box in boxes])


BOX_KEYS = ("role", "page", "x", "y", "width", "height")


def parse_signature_boxes(raw: str | None) -> list[SignatureBox]:
    """Places from the send form or the API: a JSON list of {role, page, x, y, width, height[, kind]} in PDF
    points; '' = none given (Portico finds them). At most one signature place per signer."""
    if not raw or not raw.strip():
        return []
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError("The signature places are not valid JSON.") from exc
    if not isinstance(items, list):
        raise ValueError("The signature places must be a list.")
    boxes = [_box(item) for item in items]
    signature_roles = [box.role for box in boxes if box.kind == "signature"]
    if len(set(signature_roles)) != len(signature_roles):
        raise ValueError("Place one signature per signer (dates, initials and names may repeat).")
    return boxes


def _box(item: object) -> SignatureBox:
    if not isinstance(item, dict) or not set(BOX_KEYS) <= set(item) <= {*BOX_KEYS, "kind"}:
        raise ValueError(f"Each signature place needs exactly: {', '.join(BOX_KEYS)} (and optionally kind).")
    if item["role"] not in ROLES:
        raise ValueError("A signature place is for the taxpayer or the spouse.")
    kind = item.get("kind", "signature")
    if kind not in KINDS:
        raise ValueError(f"A place holds one of: {', '.join(KINDS)}.")
    numbers = [item[key] for key in BOX_KEYS[1:]]
    if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
        raise ValueError("A signature place's page and coordinates must be numbers.")
    page, x, y, width, height = numbers
    return SignatureBox(item["role"], int(page), float(x), float(y), float(width), float(height), kind)


def loads(raw: str | None) -> list[SignatureBox]:
    """Places as stored on a document row (rows from before places had kinds hold signatures only)."""
    return [SignatureBox(**item) for item in json.loads(raw or "[]")]


def page_boxes(boxes: list[SignatureBox]) -> dict[str, stamp.PageBox]:
    """Each signer's signature place, for the checks that predate dates and initials."""
    return {
        box.role: stamp.PageBox(box.page, box.x, box.y, box.width, box.height)
        for box in boxes
        if box.kind == "signature"
    }
