"""GET /: a small landing page for a person, with the two ways in (client portal, preparer workspace)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from web import TEMPLATES_DIR

router = APIRouter(include_in_schema=False)
_templates = Jinja2Templates(directory=TEMPLATES_DIR)


@router.get("/", response_class=HTMLResponse)
def landing(request: Request) -> HTMLResponse:
    """Where the bare address leads: links to /portal and /preparer."""
    return _templates.TemplateResponse(request, "landing.html")
