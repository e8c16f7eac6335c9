"""The client hub's pages: the landing page (`/portal`: tasks, completed tasks, activity, firm contact
across every return) and the one Documents page (`/portal/documents`: every return's documents, searched,
filtered, sorted and paged), with signing and downloading on whichever return a document belongs to.
Rules: `services.client_hub` and `services.client_library`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from sqlmodel import Session, col, func, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as FormFile

from core.context import Resources
from core.models import Direction, Document, Signature, Signer
from services import Refusal, ServiceError, client_hub, client_library, cookies, paper, placements, portal
from services.context import TaxpayerContext
from services.deps import ResourcesDep, SessionDep
from services.documents import content_disposition, download
from web.rendering import PortalContext, PortalUser, VerifiedUser, render, safe_next, verified_user
from web.security import check_csrf
from web.toolkit import is_htmx, local_time, next_param, redirect, see_other

router = APIRouter(prefix="/portal", include_in_schema=False, dependencies=[Depends(check_csrf)])


# ---- the landing page ---------------------------------------------------------------------------------


@router.get("")
async def home(request: Request, resources: ResourcesDep) -> Response:
    # The portal's busiest page: its reads and its rendering go to the thread pool in one hop, where the
    # dependencies (user, session) would take one each.
    return await run_in_threadpool(_home, request, resources)


def _home(request: Request, resources: Resources) -> Response:
    with Session(resources.engine, expire_on_commit=False) as db:
        user = verified_user(request, db, resources)
        hub = client_hub.hub(db, user.account, user.engagement.id, user.linked, settings=resources.settings)
        context = {"user": user, "hub": hub, "when": _when(user), "page": "home"}
        return render(request, "home.html", context)


@router.get("/go")
def go(
    user: VerifiedUser,
    ctx: PortalContext,
    to: Annotated[str, Query(max_length=200)] = "/portal",
    engagement_id: Annotated[int, Query(alias="return")] = 0,
) -> Response:
    """Shows one of the person's returns, then opens `to` there (a task's Get Started). A return the
    account does not reach is ignored: the page opens on the return already shown."""
    response = see_other(safe_next(to))
    if any(r.engagement_id == engagement_id for r in user.returns):
        cookies.put(response, ctx.resources, cookies.RETURN, str(engagement_id))
    return response


# A date in a person's time zone, remembered: the landing page shows some forty, the same on every visit.
_local_time = lru_cache(maxsize=16_384)(local_time)


def _when(user: PortalUser) -> Callable[[datetime | None], str]:
    return lambda value: _local_time(value, user.signer.time_zone)


# ---- the Documents page -------------------------------------------------------------------------------


def _filters(q: str, year: str, kind: str, status: str, sort: str, page: str) -> dict[str, object]:
    """What the page's form sent, with anything unknown dropped: a page never fails on a stale link."""
    return {
        "q": q.strip()[:100],
        "year": int(year) if year.isdigit() and len(year) == 4 else None,
        "kind": kind if kind in client_library.KINDS else "",
        "status": status if status in client_library.STATUSES else "",
        "sort": sort if sort in client_library.SORTS else "date",
        "page": int(page) if page.isdigit() and len(page) < 7 else 1,
    }


def summary_of(db: Session, signer: Signer) -> dict[str, object]:
    """Above the documents: what the shown return still needs (the workflow has told the preparer
    once every signature is in)."""
    o = portal.overview(db, signer)
    needed = db.exec(
        select(func.count())
        .select_from(Signature)
        .join(Document, col(Document.id) == col(Signature.document_id))
        .where(Document.engagement_id == signer.engagement_id, Document.direction == Direction.TO_CLIENT)
    ).one()
    missing = sorted(o.others_missing)
    return {"o": o, "missing": missing, "all_done": bool(needed) and not missing and not o.waiting_for_me}


def _documents_page(
    request: Request, user: PortalUser, db: Session, filters: dict[str, object], error: str | None = None
) -> Response:
    lib = client_library.library(db, user.account, **filters)  # type: ignore[arg-type]
    context = {
        "user": user,
        "lib": lib,
        "f": filters,
        "kinds": client_library.KINDS,
        "statuses": client_library.STATUSES,
        "sorts": client_library.SORTS,
        "when": _when(user),
        "error": error,
        "page": "documents",
        **summary_of(db, user.signer),
    }
    return render(request, "documents.html", context, 200 if error is None else 422)


@router.get("/documents")
def documents(
    request: Request,
    user: VerifiedUser,
    db: SessionDep,
    q: Annotated[str, Query(max_length=200)] = "",
    year: Annotated[str, Query(max_length=10)] = "",
    kind: Annotated[str, Query(max_length=20)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    sort: Annotated[str, Query(max_length=20)] = "date",
    page: Annotated[str, Query(max_length=10)] = "1",
) -> Response:
    return _documents_page(request, user, db, _filters(q, year, kind, status, sort, page))


@router.post("/documents/{document_id}/sign")
async def sign(document_id: int, request: Request, user: VerifiedUser, ctx: PortalContext) -> Response:
    """Signs as the person's signer on the document's own return (which need not be the one shown)."""
    db = ctx.db
    error = None
    try:
        await portal.sign(ctx, document_id)
    except ServiceError as exc:
        if exc.field == "consent":  # not yet agreed to sign electronically: the consent page, then back
            return redirect(request, f"/portal/consent?next={next_param('/portal/documents')}")
        if exc.field == "identity":  # an 8879 needs the signer's identity proofed first: the questions,
            # on the document's own return (which need not be the one shown)
            _doc, linked = client_library.reachable_document(db, user.account, document_id)
            questions = f"/portal/identity?next={next_param('/portal/documents')}"
            return redirect(request, client_hub.go_link(linked.engagement_id, quote(questions, safe="/")))
        if exc.status_code == 404 or not is_htmx(request):
            page = _documents_page(request, user, db, _filters("", "", "", "", "date", "1"), str(exc.detail))
            page.status_code = exc.status_code
            return page
        error = str(exc.detail)
    if not is_htmx(request):
        return see_other("/portal/documents?m=signed")
    _doc, linked = client_library.reachable_document(db, user.account, document_id)
    item = client_library.one_document(db, user.account, document_id)
    context = {
        "user": user,
        "doc": item,
        "when": _when(user),
        "error": error,
        "oob": True,
        **summary_of(db, linked.signer),
    }
    # The row, plus the summary above the tables (out of band): both change when a document is signed.
    return render(request, "_library_row.html", context)


async def _view_with_problem(
    request: Request, user: PortalUser, ctx: TaxpayerContext, document_id: int, problem: ServiceError, at: str
) -> Response:
    """The document's page again, with why the decline or the scan was refused where it was asked; the
    Documents page with the reason when the page has nothing left to offer (not theirs, signed, declined)."""
    shown = None
    if problem.status_code != 404:
        doc = portal.view_document(ctx, document_id)
        shown = await placements.where_to_sign(ctx, doc)
    if shown is None:
        page = _documents_page(request, user, ctx.db, _filters("", "", "", "", "date", "1"), problem.detail)
        page.status_code = problem.status_code
        return page
    context = {"user": user, "doc": doc, "view": shown, "error": problem.detail, "error_at": at}
    return render(request, "document_view.html", context, problem.status_code)


@router.post("/documents/{document_id}/decline")
async def decline(
    document_id: int,
    request: Request,
    user: VerifiedUser,
    ctx: PortalContext,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        await paper.decline(ctx, document_id, reason)
    except ServiceError as exc:
        return await _view_with_problem(request, user, ctx, document_id, exc, "reason")
    return see_other("/portal/documents?m=declined")


@router.post("/documents/{document_id}/paper")
async def signed_on_paper(
    document_id: int, request: Request, user: VerifiedUser, ctx: PortalContext
) -> Response:
    form = await request.form(max_files=1)
    scan = form.get("scan")
    try:
        if not isinstance(scan, FormFile) or not scan.filename:
            raise ServiceError(Refusal.INVALID, "Choose the scan or photo of the signed document.", "scan")
        await paper.client_signed_on_paper(ctx, document_id, scan)
    except ServiceError as exc:
        return await _view_with_problem(request, user, ctx, document_id, exc, "scan")
    return see_other("/portal/documents?m=signed-on-paper")


@router.get("/documents/{document_id}/download")
def download_document(document_id: int, ctx: PortalContext) -> Response:
    """The document as a file to keep (View opens the same bytes in the browser)."""
    doc = portal.view_document(ctx, document_id)
    response = download(ctx.resources.store, doc)
    response.headers["Content-Disposition"] = content_disposition(doc.name, "attachment")
    return response
