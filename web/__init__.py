"""Server-rendered pages (Jinja2 + htmx). The portal pages build on the API's rules (`services`)."""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
TEMPLATES_DIR = Path(__file__).parent / "templates"
