"""The portal itself: home, My Files, Files From My Preparer, Edit Signature, Messages, Account.

Each state-changing handler answers htmx/fetch requests with a fragment or JSON, and a plain form post
with a redirect, so every page also works without JavaScript (except drawing the signature).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, Response, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse

from activities.outbox import Outbox
from api.deps import ResourcesDep, SessionDep, TemporalDep
from api.documents import chat_of, documents_of, download
from api.schemas import DocumentOut
from api.services import ServiceError, account_changes, new_device, portal
from core.models import Direction
from web.rendering import PortalUser, VerifiedUser, local_time, render
from web.security import check_csrf

router = APIRouter(prefix="/portal", include_in_schema=False, dependencies=[Depends(check_csrf)])
OutboxDep = Annotated[Outbox, Depends(new_device.get_outbox)]


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# ---- home ----------------------------------------------------------------------------------------------


@router.get("")
def home(request: Request, user: VerifiedUser, db: SessionDep) -> Response:
    overview = portal.overview(db, user.signer, user.co_signer_names)
    latest = chat_of(db, user.signer.engagement_id, last=1)
    return render(request, "home.html", {"user": user, "o": overview, "latest": latest, "page": "home"})


# ---- My Files --------------------------------------------------------------------------------------------


def _files_context(db: SessionDep, user: PortalUser) -> dict[str, object]:
    files = documents_of(db, user.signer.engagement_id, Direction.TO_PREPARER)
    by = portal.uploaders(db, user.signer.engagement_id)
    names = {user.role: "You", **user.co_signer_names}
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
    db: SessionDep,
    resources: ResourcesDep,
    client: TemporalDep,
    files: Annotated[list[UploadFile], File()],
) -> Response:
    try:
        stored = await portal.store_uploads(db, resources, client, request, user.signer, files)
    except HTTPException as exc:
        if _wants_json(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        context = {**_files_context(db, user), "error": exc.detail}
        return render(request, "files.html", context, exc.status_code)
    if _wants_json(request):
        return JSONResponse({"message": "Uploaded", "count": len(stored)}, status_code=201)
    return _see_other("/portal/files?m=uploaded")


# ---- Files From My Preparer ------------------------------------------------------------------------------


@dataclass
class DocumentRow:
    doc: DocumentOut
    sent: str
    mine: str  # "sign", "signed", "signature-first", "not-needed"
    others: list[tuple[str, bool]] = field(default_factory=list)  # co-signer name, signed?
    error: str | None = None


def _row(doc: DocumentOut, user: PortalUser, error: str | None = None) -> DocumentRow:
    mine = "not-needed"
    others = []
    for sig in doc.signatures:
        if sig.role == user.role:
            if sig.signed_at is not None:
                mine = "signed"
            else:
                mine = "sign" if user.signer.signature_key else "signature-first"
        else:
            others.append(
                (user.co_signer_names.get(sig.role, sig.role.capitalize()), sig.signed_at is not None)
            )
    return DocumentRow(doc, local_time(doc.created_at, user.signer.time_zone), mine, others, error)


def _rows(db: SessionDep, user: PortalUser) -> list[DocumentRow]:
    docs = documents_of(db, user.signer.engagement_id, Direction.TO_CLIENT)
    return [_row(d, user) for d in reversed(docs)]


def _documents_context(db: SessionDep, user: PortalUser) -> dict[str, object]:
    rows = _rows(db, user)
    missing = sorted({name for r in rows for name, signed in r.others if not signed})
    return {
        "user": user,
        "rows": rows,
        "missing": missing,
        "o": portal.overview(db, user.signer, user.co_signer_names),
        "page": "documents",
    }


@router.get("/documents")
def documents(request: Request, user: VerifiedUser, db: SessionDep) -> Response:
    return render(request, "documents.html", _documents_context(db, user))


@router.post("/documents/{document_id}/sign")
async def sign(
    document_id: int, request: Request, user: VerifiedUser, db: SessionDep, client: TemporalDep
) -> Response:
    error = None
    try:
        await portal.sign(db, client, request, user.signer, document_id)
    except HTTPException as exc:
        if exc.status_code == 404 or not _is_htmx(request):
            context = {**_documents_context(db, user), "error": exc.detail}
            return render(request, "documents.html", context, exc.status_code)
        error = str(exc.detail)
    if not _is_htmx(request):
        return _see_other("/portal/documents?m=signed")
    context = _documents_context(db, user)
    row = next(r for r in _rows(db, user) if r.doc.id == document_id)
    row.error = error
    # The row, plus the summary above the table (out of band): both change when a document is signed.
    return render(request, "_document_row.html", {**context, "row": row, "oob": True})


@router.get("/documents/{document_id}/view")
def view(
    document_id: int, request: Request, user: VerifiedUser, db: SessionDep, resources: ResourcesDep
) -> Response:
    doc = portal.view_document(db, request, user.signer, document_id)
    return download(resources.store, doc)


# ---- Edit Signature ---------------------------------------------------------------------------------------


@router.get("/signature")
def signature_page(request: Request, user: VerifiedUser) -> Response:
    return render(request, "signature.html", {"user": user, "page": "signature"})


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
    resources: ResourcesDep,
    client: TemporalDep,
    image: Annotated[UploadFile, File()],
) -> Response:
    data = await image.read(portal.SIGNATURE_MAX_BYTES + 1)
    try:
        await portal.save_signature(resources, client, request, user.signer, data)
    except HTTPException as exc:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
    return JSONResponse({"message": "Signature saved"})


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
    db: SessionDep,
    client: TemporalDep,
    body: Annotated[str, Form(max_length=6000)] = "",
) -> Response:
    try:
        await portal.post_chat(db, client, request, user.signer, body)
    except HTTPException as exc:
        if _is_htmx(request):
            return render(request, "_chat_error.html", {"error": exc.detail})
        chat = chat_of(db, user.signer.engagement_id)
        context = {"user": user, "chat": chat, "after": chat[-1].id if chat else 0, "error": exc.detail}
        return render(request, "messages.html", {**context, "page": "messages"}, exc.status_code)
    if _is_htmx(request):
        response = render(request, "_chat_error.html", {"error": None})
        response.headers["HX-Trigger"] = "chat-sent"
        return response
    return _see_other("/portal/messages")


# ---- Account: password, email address, phone number ----------------------------------------------------

ACCOUNT_NOTICES = {
    "password-changed": "Your password is changed. Every other device is logged out.",
    "email-changed": "Your email address is changed. Messages go there from now on.",
    "phone-changed": "Your phone number is changed. Texts go there from now on.",
}
CONTACT_KINDS = ("email", "phone")


def _account_page(
    request: Request,
    user: PortalUser,
    *,
    problem: ServiceError | None = None,
    form: str = "",
    pending: dict[str, str] | None = None,
) -> Response:
    """The Account page; `problem` is shown at the form (`form`) and field it concerns."""
    context = {
        "user": user,
        "page": "account",
        "email": account_changes.current_contact(user.account, user.signer, "email"),
        "phone": account_changes.current_contact(user.account, user.signer, "phone"),
        "problem": problem,
        "problem_form": form,
        "problem_field": problem.field if problem else None,
        "pending": pending,
        "code_minutes": int(new_device.CODE_LIFETIME.total_seconds() // 60),
    }
    notice = ACCOUNT_NOTICES.get(request.query_params.get("m", ""))
    if notice:
        context["notice"] = notice
    response = render(request, "account.html", context, problem.status_code if problem else 200)
    if problem is not None and problem.headers:
        response.headers.update(problem.headers)  # Retry-After, when the login throttle answered
    return response


@router.get("/account")
def account_page(request: Request, user: VerifiedUser) -> Response:
    return _account_page(request, user)


@router.post("/account/password")
async def change_password(
    request: Request,
    user: VerifiedUser,
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
    current_password: Annotated[str, Form(max_length=256)] = "",
    new_password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    response = _see_other("/portal/account?m=password-changed")
    try:
        await account_changes.change_password(
            db,
            resources,
            request,
            response,
            outbox,
            user.account,
            user.signer,
            current_password,
            new_password,
        )
    except ServiceError as exc:
        return _account_page(request, user, problem=exc, form="password")
    return response


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
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
    kind: Annotated[str, Form()] = "",
    value: Annotated[str, Form(max_length=254)] = "",
    current_password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    contact = _contact_kind(kind)
    try:
        sent = await account_changes.send_contact_code(
            db, resources, request, outbox, user.account, user.signer, contact, value, current_password
        )
    except ServiceError as exc:
        return _account_page(request, user, problem=exc, form=contact)
    return _account_page(request, user, pending=_pending_change(contact, value, sent.masked_destination))


@router.post("/account/contact")
async def confirm_contact(
    request: Request,
    user: VerifiedUser,
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
    kind: Annotated[str, Form()] = "",
    value: Annotated[str, Form(max_length=254)] = "",
    code: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    contact = _contact_kind(kind)
    digits = re.sub(r"\D", "", code)
    try:
        if len(digits) != 6:
            raise ServiceError(422, "Enter the 6-digit code.", "code")
        await account_changes.confirm_contact(
            db, resources, request, outbox, user.account, user.signer, contact, value, digits
        )
    except ServiceError as exc:
        pending = None
        if exc.field == "code" and exc.status_code == 422:  # let them try the code again
            pending = _pending_change(contact, value, account_changes.masked_or_blank(contact, value))
        return _account_page(request, user, problem=exc, form=contact, pending=pending)
    return _see_other(f"/portal/account?m={contact}-changed")
