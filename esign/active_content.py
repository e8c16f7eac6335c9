"""What a PDF may not carry into Portico: scripts, launch actions, XFA forms and embedded files.

Both upload routes refuse such PDFs (`services/upload_checks.py`), and so does the check before a PDF is
sent for signature (`esign.pdfsign.check_pdf_for_sending`). Refused, not stripped: stripping would change
a tax document the person meant to hand over unchanged. Why each one:
- scripts and launch actions run code in the reader of whoever opens the file (the preparer, the client);
- an XFA form is drawn from XML at display time, so what a signer sees need not be the page content that
  is signed and sealed;
- embedded files are invisible on the page and can be anything (an executable), and would be sealed into
  the signed record unseen.
"""

from __future__ import annotations

from typing import Any

from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

SCRIPTED = (
    "This PDF contains scripts (JavaScript), which Portico does not accept. Print it to PDF and upload that."
)
XFA_FORM = (
    "This PDF is an XFA (dynamic) form, which Portico does not accept: what it shows can change after it "
    "is signed. Print it to PDF, or save it as a flattened (static) PDF, and upload that."
)
EMBEDDED_FILES = (
    "This PDF has files attached inside it, which Portico does not accept. Remove the attachments (or "
    "print it to PDF) and upload that."
)
TOO_COMPLEX = "This PDF has too many objects for Portico to check. Print it to PDF and upload that."

SCRIPT_KEYS = frozenset({"/JS", "/JavaScript"})
SCRIPT_ACTIONS = frozenset({"/JavaScript", "/Launch", "/ImportData", "/Rendition"})
XFA_KEYS = frozenset({"/XFA"})
# /EmbeddedFiles: the document's attachment name tree; /EF: a file specification's embedded stream.
EMBEDDED_KEYS = frozenset({"/EmbeddedFiles", "/EF"})
MAX_OBJECTS = 200_000


def active_content_problem(reader: PdfReader) -> str | None:
    """Why this PDF is refused for what it carries, or None. Walks every object reachable from the
    trailer (object streams included; pypdf decodes `#xx` name escapes), resolving indirect values: an
    action written `/S 7 0 R` with object 7 being `/Launch` is still a launch action."""
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
            return TOO_COMPLEX  # an object bomb: too costly to prove harmless
        if isinstance(item, DictionaryObject):
            problem = _dictionary_problem(item)
            if problem is not None:
                return problem
            stack.extend(v for k, v in item.items() if k != "/Parent")
        elif isinstance(item, ArrayObject):
            stack.extend(item)
        elif isinstance(item, NameObject) and item == "/JavaScript":
            return SCRIPTED
    return None


def _dictionary_problem(item: DictionaryObject) -> str | None:
    keys = item.keys()
    if SCRIPT_KEYS.intersection(keys) or _name(item, "/S") in SCRIPT_ACTIONS:
        return SCRIPTED
    if XFA_KEYS.intersection(keys):
        return XFA_FORM
    if (
        EMBEDDED_KEYS.intersection(keys)
        or _name(item, "/Type") == "/EmbeddedFile"
        or _name(item, "/Subtype") == "/FileAttachment"
    ):
        return EMBEDDED_FILES
    return None


def _name(item: DictionaryObject, key: str) -> object:
    """The value under `key`, following indirect references (`dict.get` would answer the reference)."""
    value = item.get(key)
    for _ in range(32):  # a reference to a reference…, but never a cycle
        if not isinstance(value, IndirectObject):
            break
        value = value.get_object()
    return value
