"""Content checks for uploaded PDFs: parsed with pypdf before acceptance; encrypted, damaged and scripted
PDFs, XFA forms and PDFs with embedded files are refused.

Decision on active content: a PDF carrying JavaScript (`/JS`, `/JavaScript`, an `/OpenAction` or `/AA`
that runs a script, `/Launch`), an XFA form or embedded files is **refused**, not stripped (the walk and
the reasons are in `esign/active_content.py`). Stripping would change a tax document the person meant to
hand over unchanged (and for documents sent for signature, what gets signed); a clear refusal asks them to
re-export or print to PDF, which removes the script.
"""

from __future__ import annotations

import io

from pypdf import PdfReader
from pypdf.errors import PyPdfError

from esign.active_content import SCRIPTED, active_content_problem

__all__ = ["ENCRYPTED", "SCRIPTED", "pdf_problem"]

ENCRYPTED = "This PDF is encrypted or password-protected. Save an unprotected copy and upload that."


def pdf_problem(data: bytes) -> str | None:
    """Why this PDF can't be accepted, or None when it parses, has pages and carries no active content."""
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            return ENCRYPTED
        if len(reader.pages) == 0:
            return "This PDF has no pages."
        problem = active_content_problem(reader)
        if problem is not None:
            return problem
    except (PyPdfError, ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError, OSError):
        return "This PDF is damaged. Re-export it and upload again."
    return None
