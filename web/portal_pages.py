"""The portal itself: My Files, Edit Signature, Messages, Account (home and Documents: client_hub_pages).

Each state-changing handler answers htmx/fetch requests with a fragment or JSON, and a plain form post
with a redirect, so every page also works without JavaScript (except drawing the signature).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, Response, UploadFile
from fastapi.responses import JSONResponse

from core.models import Direction
from services import (
    Refusal,
    ServiceError,
    account_changes,
    consent,
    new_device,
    placements,
    portal,
    signature_images,
)
from services.context import TaxpayerContext
from services.deps import ResourcesDep, SessionDep
from services.documents import chat_of, documents_of, download
from web.rendering import PortalContext, PortalUser, VerifiedUser, render
from web.security import check_csrf
from web.security_view import SECURITY_NOTICES, security_view
from web.toolkit import form_problem, is_htmx, see_other, with_refusal_headers

router = APIRouter(prefix="/portal", include_in_schema=False, dependencies=[Depends(check_csrf)])


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


# ---- My Files --------------------------------------------------------------------------------------------


def _files_context(db: SessionDep, user: PortalUser) -> dict[str, object]:
    files = documents_of(db, user.signer.engagement_id, Direction.TO_PREPARER, viewer_role=user.role)
    by = portal.uploaders(db, user.signer.engagement_id)
    names = {user.role: "You", **user.co_signer_names, "preparer": "Your preparer"}
    return {
        "user": user,
        "files": list(reversed(files)),
        "uploaded_by": {f.id: names.get(by.get(f.id, ""), "") for f in files},
        "page": "files",
    }


@router.get("/files")
def my_files(request: Request, user: VerifiedUser, db: SessionDep) -> Response:
    return render(request, "files.html", _files_context(db, user))


@router.get("/files/list")
def my_files_list(request: Request, user: VerifiedUser, db: SessionDep) -> Response:
    return render(request, "_file_list.html", _files_context(db, user))


@router.post("/files")
async def upload(
    request: Request,
    user: VerifiedUser,
    ctx: PortalContext,
    files: Annotated[list[UploadFile], File()],
    private: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    db = ctx.db
    try:
        stored = await portal.store_uploads(ctx, files, private=private == "on")
    except ServiceError as exc:
        if _wants_json(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        context = {**_files_context(db, user), "error": exc.detail}
        return render(request, "files.html", context, exc.status_code)
    if _wants_json(request):
        return JSONResponse({"message": "Uploaded", "count": len(stored)}, status_code=201)
    return see_other("/portal/files?m=uploaded")


# ---- a document, opened in the browser (the Documents page: web/client_hub_pages.py) -------------------


@router.get("/documents/{document_id}/view")
async def view(
    document_id: int, request: Request, user: VerifiedUser, ctx: PortalContext, pdf: bool = False
) -> Response:
    """A document the client still has to sign: its pages with their places highlighted and a link to
    the PDF (`?pdf=1`); any other document: the PDF itself."""
    doc = portal.view_document(ctx, document_id)
    if not pdf:
        shown = await placements.where_to_sign(ctx, doc)
        if shown is not None:
            return render(request, "document_view.html", {"user": user, "doc": doc, "view": shown})
    return download(ctx.resources.store, doc)


# ---- Edit Signature ---------------------------------------------------------------------------------------


def _signature_page(
    request: Request, user: PortalUser, ctx: TaxpayerContext, problem: ServiceError | None = None, **form: str
) -> Response:
    """Edit Signature: draw, type or upload; the consent to sign electronically asked first if missing."""
    context = {
        "user": user,
        "page": "signature",
        "consented": consent.current(ctx) is not None,
        "consent_changed": consent.asked_again(ctx),
        "method": form.get("method") or "drawn",
        "typed_name": form.get("typed_name", ""),
        "error": problem.detail if problem else None,
    }
    notices = {"consent-agreed": "Thank you: you agreed to sign electronically."}
    status = problem.status_code if problem else 200
    return render(request, "signature.html", context, status, notices=notices)


@router.get("/signature")
def signature_page(request: Request, user: VerifiedUser, ctx: PortalContext) -> Response:
    return _signature_page(request, user, ctx)


@router.get("/signature.png")
def signature_image(user: VerifiedUser, resources: ResourcesDep) -> Response:
    if not user.signer.signature_key:
        raise HTTPException(404, "No signature on file.")
    return Response(
        resources.store.get(user.signer.signature_key),
        media_type="image/png",
        headers={"Cache-Control": "private, no-store"},
    )


@router.post("/signature")
async def save_signature(
    request: Request,
    user: VerifiedUser,
    ctx: PortalContext,
    image: Annotated[UploadFile | None, File()] = None,
    method: Annotated[str, Form(max_length=10)] = "drawn",
    typed_name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Drawn (JSON from the pad), typed or uploaded (the forms: JSON with fetch, a redirect without)."""
    data = await image.read(signature_images.UPLOAD_MAX_BYTES + 1) if image is not None else b""
    try:
        await portal.save_signature(ctx, data, method=method, typed_name=typed_name)
    except ServiceError as exc:
        if _wants_json(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return _signature_page(request, user, ctx, exc, method=method, typed_name=typed_name)
    if _wants_json(request):
        return JSONResponse({"message": "Signature saved", "method": method})
    return see_other("/portal/signature?m=signature-saved")


# ---- Messages ----------------------------------------------------------------------------------------------


@router.get("/messages")
def messages(request: Request, user: VerifiedUser, db: SessionDep) -> Response:
    chat = chat_of(db, user.signer.engagement_id)
    context = {"user": user, "chat": chat, "after": chat[-1].id if chat else 0, "page": "messages"}
    return render(request, "messages.html", context)


@router.get("/messages/feed")
def message_feed(request: Request, user: VerifiedUser, db: SessionDep, after: int = 0) -> Response:
    """New messages since `after`, appended by htmx; the poller comes back with the new position."""
    new = chat_of(db, user.signer.engagement_id, after_id=after)
    context = {"user": user, "chat": new, "after": new[-1].id if new else after}
    return render(request, "_chat_feed.html", context)


@router.post("/messages")
async def send_message(
    request: Request,
    user: VerifiedUser,
    ctx: PortalContext,
    body: Annotated[str, Form(max_length=6000)] = "",
) -> Response:
    db = ctx.db
    try:
        await portal.post_chat(ctx, body)
    except ServiceError as exc:
        if is_htmx(request):
            return render(request, "_chat_error.html", {"error": exc.detail})
        chat = chat_of(db, user.signer.engagement_id)
        context = {"user": user, "chat": chat, "after": chat[-1].id if chat else 0, "error": exc.detail}
        return render(request, "messages.html", {**context, "page": "messages"}, exc.status_code)
    if is_htmx(request):
        response = render(request, "_chat_error.html", {"error": None})
        response.headers["HX-Trigger"] = "chat-sent"
        return response
    return see_other("/portal/messages")


# ---- Account: password, email address, phone number ----------------------------------------------------

ACCOUNT_NOTICES = {
    "password-changed": "Your password is changed. Every other device is logged out.",
    "email-changed": "Your email address is changed. Messages go there from now on.",
    "phone-changed": "Your phone number is changed. Texts go there from now on.",
    "time-zone-changed": "Your time zone is saved. Times here are shown in it.",
    **SECURITY_NOTICES,
}
CONTACT_KINDS = ("email", "phone")


def _account_page(
    request: Request,
    user: PortalUser,
    *,
    ctx: TaxpayerContext,
    problem: ServiceError | None = None,
    form: str = "",
    pending: dict[str, str] | None = None,
) -> Response:
    """The Account page; `problem` is shown at the form (`form`) and field it concerns."""
    context = {
        **security_view(ctx, request),
        "user": user,
        "page": "account",
        "email": account_changes.current_contact(user.account, user.signer, "email"),
        "phone": account_changes.current_contact(user.account, user.signer, "phone"),
        **form_problem(problem, form),
        "pending": pending,
        "code_minutes": int(new_device.CODE_LIFETIME.total_seconds() // 60),
    }
    status_code = problem.status_code if problem else 200
    page = render(request, "account.html", context, status_code, notices=ACCOUNT_NOTICES)
    return with_refusal_headers(page, problem)


@router.get("/account")
def account_page(request: Request, user: VerifiedUser, ctx: PortalContext) -> Response:
    return _account_page(request, user, ctx=ctx)


@router.post("/account/password")
async def change_password(
    request: Request,
    user: VerifiedUser,
    ctx: PortalContext,
    current_password: Annotated[str, Form(max_length=256)] = "",
    new_password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    response = see_other("/portal/account?m=password-changed")
    try:
        await account_changes.change_password(
            ctx, request, response, current=current_password, new=new_password
        )
    except ServiceError as exc:
        return _account_page(request, user, ctx=ctx, problem=exc, form="password")
    return response


@router.post("/account/time-zone")
async def change_time_zone(
    request: Request,
    user: VerifiedUser,
    ctx: PortalContext,
    time_zone: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    try:
        await account_changes.change_time_zone(ctx, time_zone=time_zone)
    except ServiceError as exc:
        return _account_page(request, user, ctx=ctx, problem=exc, form="zone")
    return see_other("/portal/account?m=time-zone-changed")


def _contact_kind(kind: str) -> account_changes.ContactKind:
    if kind not in CONTACT_KINDS:
        raise HTTPException(404, "Not found.")
    return kind  # type: ignore[return-value]


def _pending_change(contact: account_changes.ContactKind, value: str, masked: str) -> dict[str, str]:
    """A change waiting for its code. The new address goes back into the page (not stored anywhere): the
    code is bound to it."""
    return {"kind": contact, "value": value.strip(), "masked": masked}


@router.post("/account/contact/code")
async def send_contact_code(
    request: Request,
    user: VerifiedUser,
    ctx: PortalContext,
    kind: Annotated[str, Form()] = "",
    value: Annotated[str, Form(max_length=254)] = "",
    current_password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    contact = _contact_kind(kind)
    try:
        sent = await account_changes.send_contact_code(
            ctx, request, kind=contact, value=value, current_password=current_password
        )
    except ServiceError as exc:
        return _account_page(request, user, ctx=ctx, problem=exc, form=contact)
    return _account_page(
        request, user, ctx=ctx, pending=_pending_change(contact, value, sent.masked_destination)
    )


@router.post("/account/contact")
async def confirm_contact(
    request: Request,
    user: VerifiedUser,
    ctx: PortalContext,
    kind: Annotated[str, Form()] = "",
    value: Annotated[str, Form(max_length=254)] = "",
    code: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    contact = _contact_kind(kind)
    digits = re.sub(r"\D", "", code)
    try:
        if len(digits) != 6:
            raise ServiceError(Refusal.INVALID, "Enter the 6-digit code.", "code")
        await account_changes.confirm_contact(ctx, request, kind=contact, value=value, code=digits)
    except ServiceError as exc:
        pending = None
        if exc.field == "code" and exc.status_code == 422:  # let them try the code again
            pending = _pending_change(contact, value, account_changes.masked_or_blank(contact, value))
        return _account_page(request, user, ctx=ctx, problem=exc, form=contact, pending=pending)
    return see_other(f"/portal/account?m={contact}-changed")
