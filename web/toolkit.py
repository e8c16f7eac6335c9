"""What every page handler uses, in the portal and in the workspace alike: one template environment,
rendering with the context every page gets, safe post-login targets, redirects and the login redirect,
and the context that shows a refusal next to its form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, available_timezones

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates

from core.context import Resources
from core.identity import format_phone
from services import ServiceError
from services.dashboard import STAGE_LABELS
from web import TEMPLATES_DIR
from web.security import csrf_token, issue_csrf_cookie


def local_time(value: datetime | None, zone: str, with_zone: bool = True) -> str:
    """`Mar 3, 2026, 2:15 PM PST` in the time zone `zone` (a signer's own, or the firm's)."""
    if value is None:
        return ""
    local = value.astimezone(ZoneInfo(zone))
    hour = local.hour % 12 or 12
    text = f"{local:%b} {local.day}, {local.year}, {hour}:{local:%M} {local:%p}"
    return f"{text} {local.tzname()}" if with_zone else text


# The zones a person picks from: the US ones by name first, then every other region's.
US_TIME_ZONES = (
    ("America/New_York", "Eastern"),
    ("America/Chicago", "Central"),
    ("America/Denver", "Mountain"),
    ("America/Phoenix", "Arizona"),
    ("America/Los_Angeles", "Pacific"),
    ("America/Anchorage", "Alaska"),
    ("Pacific/Honolulu", "Hawaii"),
    ("America/Puerto_Rico", "Atlantic (Puerto Rico)"),
)


@cache
def other_time_zones() -> list[str]:
    us = {zone for zone, _ in US_TIME_ZONES}
    return sorted(z for z in available_timezones() if "/" in z and z not in us and not z.startswith("Etc/"))


def zone_label(zone: str) -> str:
    """`Pacific (America/Los_Angeles)`; a zone outside the US by its name alone."""
    name = dict(US_TIME_ZONES).get(zone)
    return f"{name} ({zone})" if name else zone


def file_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


templates = Jinja2Templates(directory=TEMPLATES_DIR)
# Templates ship with the code and change only with it (a restart): without this Jinja stats every template
# a page includes on every render, a tenth of the portal landing page's time.
templates.env.auto_reload = False
templates.env.filters["file_size"] = file_size
# Phone numbers as people write them, `(702) 555-0197`; the database keeps E.164 (the Account page).
templates.env.filters["phone"] = format_phone
templates.env.globals["local_time"] = local_time
templates.env.globals["STAGE_LABELS"] = STAGE_LABELS
templates.env.globals["us_zones"] = US_TIME_ZONES
templates.env.globals["other_zones"] = other_time_zones
templates.env.globals["zone_label"] = zone_label


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def redirect(request: Request, url: str) -> Response:
    """A 303 to `url`; to an htmx request, a header htmx follows with a full page load."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return see_other(url)


def safe_next(value: str | None, home: str) -> str:
    """Where to go after logging in: only a path on this site under `home` (`/portal`, `/preparer`)."""
    if value and value.startswith(home) and not value.startswith("//") and "\\" not in value:
        return value
    return home


def next_param(target: str) -> str:
    """A return path as the value of a `next=` query parameter: its own `?`, `&` and `=` escaped, so a page
    with a query string comes back whole after the login."""
    return quote(target, safe="/")


class LoginRequired(Exception):
    """Raised by the pages' user dependencies; `redirect_to_login` answers it with a redirect."""

    def __init__(self, login_url: str) -> None:
        self.login_url = login_url


async def redirect_to_login(request: Request, exc: Exception) -> Response:
    """The exception handler for `LoginRequired`."""
    assert isinstance(exc, LoginRequired)
    return redirect(request, exc.login_url)


def with_refusal_headers(response: Response, refusal: ServiceError | None) -> Response:
    """A refused form's page carries the refusal's headers too (`Retry-After` from a throttle)."""
    if refusal is not None and refusal.headers:
        response.headers.update(refusal.headers)
    return response


def form_problem(problem: ServiceError | None, form: str) -> dict[str, Any]:
    """Page context that shows `problem` at the top, and at the form (`form`) and field it concerns."""
    return {"problem": problem, "problem_form": form, "problem_field": problem.field if problem else None}


@dataclass(frozen=True)
class PageArea:
    """One area of pages (the portal, the workspace): where it starts and the notices it shows."""

    home: str
    """`/portal`: where a login lands by default; a post-login target must stay below it."""
    notices: Mapping[str, str]
    """Short notices after a redirect, by `?m=` key, so a URL can never inject text into a page."""

    def render(
        self,
        request: Request,
        name: str,
        context: dict[str, Any] | None = None,
        status_code: int = 200,
        *,
        notices: Mapping[str, str] | None = None,
    ) -> Response:
        """The page; `notices`: this page's own, looked up before the area's."""
        resources: Resources = request.app.state.resources
        key = request.query_params.get("m", "")
        ctx = {
            "csrf_token": csrf_token(request, resources),
            "notice": (notices or {}).get(key) or self.notices.get(key),
            **(context or {}),
        }
        response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
        response.headers["Cache-Control"] = "no-store"  # pages hold personal data: never from a cache
        issue_csrf_cookie(request, response, resources)
        return response

    def safe_next(self, value: str | None) -> str:
        return safe_next(value, self.home)

    def login_required(self, request: Request) -> LoginRequired:
        """To the area's login, and back to this page afterwards (to the area's home after a form post)."""
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = self.home
        return LoginRequired(f"{self.home}/login?next={next_param(target)}")
