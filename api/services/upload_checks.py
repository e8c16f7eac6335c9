"""Content checks for uploaded PDFs: parsed with pypdf before acceptance; encrypted, damaged and scripted
PDFs are refused.

Decision on active content: a PDF carrying JavaScript (`/JS`, `/JavaScript`, an `/OpenAction` or `/AA`
that runs a script, `/Launch`) is **refused**, not stripped. Stripping would change a tax document the
person meant to hand over unchanged (and for documents sent for signature, what gets signed); a clear
refusal asks them to re-export or print to PDF, which removes the script.
"""

from __future__ import annotations

import io
from typing import Any

from pypdf import PdfReader
from pypdf.errors import PyPdfError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

ACTIVE_KEYS = frozenset({"/JS", "/JavaScript"})
ACTIVE_ACTIONS = frozenset({"/JavaScript", "/Launch", "/ImportData", "/Rendition"})
SCRIPTED = (
    "This PDF contains scripts (JavaScript), which Portico does not accept. Print it to PDF and upload that."
)
ENCRYPTED = "This PDF is encrypted or password-protected. Save an unprotected copy and upload that."
MAX_OBJECTS = 200_000


def pdf_problem(data: bytes) -> str | None:
    """Why this PDF can't be accepted, or None when it parses, has pages and carries no scripts."""
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            return ENCRYPTED
        if len(reader.pages) == 0:
            return "This PDF has no pages."
        if has_active_content(reader):
            return SCRIPTED
    except (PyPdfError, ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError, OSError):
        return "This PDF is damaged. Re-export it and upload again."
    return None


def has_active_content(reader: PdfReader) -> bool:
    """Walks every object reachable from the trailer (object streams included, name escapes decoded)."""
    seen: set[tuple[int, int]] = set()
    stack: list[Any] = [reader.trailer]
    visited = 0
    while stack:
        item = stack.pop()
        if isinstance(item, IndirectObject):
            ref = (item.idnum, item.generation)
            if ref in seen:
                continue
            seen.add(ref)
            item = item.get_object()
        visited += 1
        if visited > MAX_OBJECTS:
            return True  # an object bomb: treat as hostile
        if isinstance(item, DictionaryObject):
            if ACTIVE_KEYS.intersection(item.keys()):
                return True
            if item.get("/S") in ACTIVE_ACTIONS:
                return True
            stack.extend(v for k, v in item.items() if k != "/Parent")
        elif isinstance(item, ArrayObject):
            stack.extend(item)
        elif isinstance(item, NameObject) and item in ("/JavaScript",):
            return True
    return False
