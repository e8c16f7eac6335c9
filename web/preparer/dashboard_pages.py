"""The status dashboard page and the fragment htmx polls so rows move by themselves.

The table part (counts, rows, pager) is rendered once per page the dashboard keeps
(`services.dashboard.PageCache`) and time zone, and again only when what it shows changes: a waiting time
moving on ("3 minutes" to "4 minutes") is part of the key. Twenty preparers polling a firm at rest then
share one rendering of each page, as they share one read.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from markupsafe import Markup
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from core.context import Resources
from core.crypto import Cipher
from core.models import Preparer, utcnow
from services import clients
from services.dashboard import (
    SORTS,
    STAGE_LABELS,
    STAGE_ORDER,
    DashboardPage,
    DashboardQuery,
    load_dashboard,
)
from services.deps import ResourcesDep
from web.preparer.rendering import Workspace, page_window, relative_age, render, workspace_of
from web.toolkit import see_other, templates

router = APIRouter(include_in_schema=False)
POLL_SECONDS = 5


def _query(request: Request) -> DashboardQuery:
    p = request.query_params
    return DashboardQuery.parse(
        stage=p.get("stage"),
        preparer=p.get("preparer"),
        q=p.get("q"),
        sort=p.get("sort"),
        order=p.get("order"),
        page=p.get("page"),
        per_page=p.get("per_page"),
        client=p.get("client"),
    )


def _context(db: Session, ws: Workspace, query: DashboardQuery, cipher: Cipher) -> dict[str, object]:
    preparers = db.exec(
        select(Preparer).where(Preparer.firm_id == ws.preparer.firm_id).order_by(col(Preparer.name))
    ).all()
    names = {p.id or 0: p.name for p in preparers}
    firm_id = ws.preparer.firm_id
    client_ids = clients.engagement_ids(db, cipher, firm_id, query.client) if query.client else None
    result = load_dashboard(db, firm_id, query, names, client_ids=client_ids)
    q = result.query

    def link(**changes: object) -> str:
        return "/preparer?" + urlencode(q.params(**changes))

    def sort_link(column: str) -> str:
        descending = not q.descending if q.sort == column else column in ("activity", "reminders")
        return link(sort=column, order="desc" if descending else "asc", page=1)

    def results() -> dict[str, object]:  # what the table part shows
        return {
            "ws": ws,
            "result": result,
            "q": q,
            "link": link,
            "sort_link": sort_link,
            "window": page_window(q.page, result.pages),
            "first": (q.page - 1) * q.per_page + 1 if result.total else 0,
            "last": min(q.page * q.per_page, result.total),
            "ages": ages,
        }

    now = utcnow()
    ages = tuple(relative_age(r.status.waiting_since, now) for r in result.rows)
    return {
        "ws": ws,
        "page": "dashboard",
        "q": q,
        "link": link,
        "sorts": SORTS,
        "preparers": preparers,
        "stages": [(s, STAGE_LABELS[s]) for s in STAGE_ORDER],
        "poll_url": "/preparer/dashboard/results?" + urlencode(q.params()),
        "poll_seconds": POLL_SECONDS,
        "client_name": clients.name_of(db, firm_id, q.client) if q.client else None,
        "results": _table(result, (ws.time_zone, ages), results),
    }


_RENDERED: weakref.WeakKeyDictionary[DashboardPage, dict[object, Markup]] = weakref.WeakKeyDictionary()
_RENDERED_LOCK = threading.Lock()


def _table(result: DashboardPage, key: object, context: Callable[[], dict[str, object]]) -> Markup:
    """The table part for a kept page: rendered once per time zone and waiting times shown, and gone
    with the page when the dashboard lets it go."""
    with _RENDERED_LOCK:
        found = _RENDERED.setdefault(result, {}).get(key)
    if found is None:
        # A template's own output, every value in it escaped as it was rendered (autoescape).
        html = templates.get_template("preparer/_results.html").render(context())
        found = Markup(html)  # noqa: S704
        with _RENDERED_LOCK:
            kept = _RENDERED.setdefault(result, {})
            kept.clear()  # the waiting times moved on: the earlier rendering is not shown again
            kept[key] = found
    return found


@router.get("/preparer")
async def dashboard(request: Request, resources: ResourcesDep) -> Response:
    # The workspace's busiest pages (each preparer's open dashboard polls): the workspace, the reads and
    # the rendering go to the thread pool in one hop, where the dependencies would take one each.
    return await run_in_threadpool(_page, request, resources, "preparer/dashboard.html", touch=True)


@router.get("/preparer/dashboard/results")
async def dashboard_results(request: Request, resources: ResourcesDep) -> Response:
    """Counts, table and pager: what the page polls every few seconds (which does not count as the
    preparer being active: `touch`)."""
    return await run_in_threadpool(_page, request, resources, "preparer/_results_part.html", touch=False)


def _page(request: Request, resources: Resources, template: str, *, touch: bool) -> Response:
    with Session(resources.engine, expire_on_commit=False) as db:
        ws = workspace_of(request, db, resources, touch=touch)
        return render(request, template, _context(db, ws, _query(request), resources.cipher))


@router.get("/engagements/{engagement_id}")
def engagement_link(engagement_id: int) -> Response:
    """The address Portico's emails to preparers use (needs attention, completed)."""
    return see_other(f"/preparer/engagements/{engagement_id}")
