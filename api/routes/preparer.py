"""Preparer side: log in, create and follow engagements, invite, send documents, chat, cancel."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, Response, UploadFile, status
from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from activities import pdfsign
from api import workflow_calls
from api.deps import CurrentPreparer, ResourcesDep, SessionDep, TemporalDep, cookie_name, request_actor
from api.documents import chat_of, documents_of, download, owned_document, safe_filename
from api.engagements import create_engagement
from api.schemas import (
    CancelIn,
    ChatIn,
    ChatOut,
    Done,
    EngagementCreate,
    EngagementOut,
    EngagementPage,
    EngagementSummary,
    InviteIn,
    InviteOut,
    Login,
    RoleIn,
    SignerOut,
    StatusOut,
)
from core import audit, sessions
from core.crypto import sha256_hex
from core.identity import InvalidContact, contact_digest
from core.models import ChatMessage, Engagement, EngagementStatus, Preparer, Signer, TaxpayerAccount
from core.passwords import verify_password
from workflows.engagement import EngagementWorkflow
from workflows.types import Cancel, DocumentSpec, InviteResult, SendDocuments, SendInvite, Unlock

router = APIRouter(prefix="/api", tags=["preparer"])
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"


@router.post("/preparer/login", response_model=Done)
def login(body: Login, request: Request, response: Response, db: SessionDep, resources: ResourcesDep) -> Done:
    """Log in with email and password; sets the session cookie."""
    preparer = db.exec(select(Preparer).where(Preparer.email == body.email.strip().lower())).first()
    # Verify against a dummy hash when there is no such preparer, so timing doesn't reveal accounts.
    ok = verify_password(preparer.password_hash if preparer else _DUMMY_HASH, body.password)
    actor = request_actor(request, "preparer", str(preparer.id) if preparer else body.email)
    if not (ok and preparer and preparer.active):
        audit.record(
            db, action="preparer.login_failed", actor=actor, firm_id=preparer.firm_id if preparer else None
        )
        db.commit()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Wrong email or password.")
    token = sessions.start(db, "preparer", preparer.id or 0, actor.ip, actor.user_agent)
    audit.record(db, action="preparer.login", actor=actor, firm_id=preparer.firm_id)
    db.commit()
    _set_cookie(response, resources, token)
    return Done(message=f"Welcome, {preparer.name}.")


def _set_cookie(response: Response, resources: ResourcesDep, token: str) -> None:
    response.set_cookie(
        cookie_name(resources),
        token,
        httponly=True,
        samesite="lax",
        path="/",
        secure=not resources.settings.is_development,
    )


@router.post("/preparer/logout", response_model=Done)
def logout(request: Request, response: Response, db: SessionDep, resources: ResourcesDep) -> Done:
    """End this session."""
    token = request.cookies.get(cookie_name(resources))
    if token:
        sessions.end(db, token)
    response.delete_cookie(cookie_name(resources), path="/")
    return Done(message="Logged out.")


def _engagement(db: Session, preparer: Preparer, engagement_id: int) -> Engagement:
    """The engagement, only if it belongs to the preparer's firm."""
    engagement = db.exec(
        select(Engagement).where(Engagement.id == engagement_id, Engagement.firm_id == preparer.firm_id)
    ).first()
    if engagement is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "No such engagement.")
    return engagement


def _status_out(row: EngagementStatus | None) -> StatusOut:
    if row is None:
        return StatusOut(
            stage="created",
            waiting_on="preparer",
            waiting_since=None,
            reminders_sent=0,
            needs_attention=False,
            last_activity_at=None,
        )
    return StatusOut(
        stage=row.stage,
        waiting_on=row.waiting_on,
        waiting_since=row.waiting_since,
        reminders_sent=row.reminders_sent,
        needs_attention=row.needs_attention,
        last_activity_at=row.last_activity_at,
    )


@router.post("/engagements", response_model=EngagementOut, status_code=status.HTTP_201_CREATED)
async def create(
    body: EngagementCreate,
    request: Request,
    preparer: CurrentPreparer,
    db: SessionDep,
    resources: ResourcesDep,
    client: TemporalDep,
) -> EngagementOut:
    """Create an engagement for one tax return and start its workflow."""
    engagement = await create_engagement(db, client, resources, preparer, body)
    audit.record(
        db,
        action="engagement.create",
        actor=request_actor(request, "preparer", str(preparer.id)),
        firm_id=preparer.firm_id,
        engagement_id=engagement.id,
    )
    db.commit()
    return _engagement_out(db, engagement)


@router.get("/engagements", response_model=EngagementPage)
def list_engagements(
    preparer: CurrentPreparer,
    db: SessionDep,
    stage: str | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
) -> EngagementPage:
    """The firm's engagements with their status, newest activity first."""
    query = select(EngagementStatus).where(EngagementStatus.firm_id == preparer.firm_id)
    if stage:
        query = query.where(EngagementStatus.stage == stage)
    if q:
        like = f"%{q.strip()}%"
        query = query.where(
            or_(
                col(EngagementStatus.taxpayer_name).ilike(like), col(EngagementStatus.spouse_name).ilike(like)
            )
        )
    total = db.exec(select(func.count()).select_from(query.subquery())).one()
    rows = db.exec(
        query.order_by(
            col(EngagementStatus.last_activity_at).desc(), col(EngagementStatus.engagement_id).desc()
        )
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    items = [
        EngagementSummary(
            id=r.engagement_id,
            tax_year=r.tax_year,
            taxpayer_name=r.taxpayer_name,
            spouse_name=r.spouse_name,
            status=_status_out(r),
        )
        for r in rows
    ]
    return EngagementPage(items=items, total=total, page=page, per_page=per_page)


@router.get("/engagements/{engagement_id}", response_model=EngagementOut)
def read_engagement(engagement_id: int, preparer: CurrentPreparer, db: SessionDep) -> EngagementOut:
    """One engagement: status, signers (contacts masked), documents."""
    return _engagement_out(db, _engagement(db, preparer, engagement_id))


def _engagement_out(db: Session, engagement: Engagement) -> EngagementOut:
    from core.identity import mask_email, mask_phone

    signers = db.exec(
        select(Signer).where(Signer.engagement_id == engagement.id).order_by(col(Signer.role).desc())
    ).all()
    accounts = {
        a.signer_id: a
        for a in db.exec(
            select(TaxpayerAccount).where(col(TaxpayerAccount.signer_id).in_([s.id for s in signers]))
        )
    }
    row = db.get(EngagementStatus, engagement.id)
    names = {s.role.value: s.full_name for s in signers}
    return EngagementOut(
        id=engagement.id or 0,
        tax_year=engagement.tax_year,
        taxpayer_name=names.get("taxpayer", ""),
        spouse_name=names.get("spouse"),
        status=_status_out(row),
        signers=[
            SignerOut(
                role=s.role.value,
                name=s.full_name,
                masked_email=mask_email(s.email) if s.email else None,
                masked_phone=mask_phone(s.phone) if s.phone else None,
                time_zone=s.time_zone,
                registered=s.id in accounts,
                verified=bool(accounts.get(s.id or 0) and accounts[s.id or 0].verified_at),
                signature_on_file=s.signature_key is not None,
            )
            for s in signers
        ],
        documents=documents_of(db, engagement.id or 0),
    )


@router.post("/engagements/{engagement_id}/invite", response_model=InviteOut)
async def invite(
    engagement_id: int,
    body: InviteIn,
    request: Request,
    preparer: CurrentPreparer,
    db: SessionDep,
    resources: ResourcesDep,
    client: TemporalDep,
) -> InviteOut:
    """Send (or re-send) the portal invitation by email or text."""
    engagement = _engagement(db, preparer, engagement_id)
    digest = None
    if body.destination:
        try:
            digest = contact_digest(resources.cipher, body.channel, body.destination)
        except InvalidContact as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    actor = request_actor(request, "preparer", str(preparer.id))
    result: InviteResult = await workflow_calls.update(
        client,
        engagement.id or 0,
        EngagementWorkflow.send_invite,
        SendInvite(role=body.role, channel=body.channel, actor=actor, destination_digest=digest),
    )
    message = "The link has successfully been sent!"
    if result.scheduled_for:
        message = "It is night where the client lives: the text goes out at 8:00 their time."
    return InviteOut(
        message=message, masked_destination=result.masked_destination, scheduled_for=result.scheduled_for
    )


@router.post("/engagements/{engagement_id}/documents", response_model=EngagementOut)
async def send_documents(
    engagement_id: int,
    request: Request,
    preparer: CurrentPreparer,
    db: SessionDep,
    resources: ResourcesDep,
    client: TemporalDep,
    files: Annotated[list[UploadFile], File(description="PDFs")],
    signers: Annotated[list[str], Form(description="per file: taxpayer, spouse, both or none")],
) -> EngagementOut:
    """Send tax return PDFs to the customer portal, each with who must sign it."""
    engagement = _engagement(db, preparer, engagement_id)
    if len(signers) != len(files):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "Say who signs each file.")
    specs: list[DocumentSpec] = []
    try:
        for upload, who in zip(files, signers, strict=True):
            specs.append(await _store_pdf(resources, upload, who))
        actor = request_actor(request, "preparer", str(preparer.id))
        await workflow_calls.update(
            client,
            engagement.id or 0,
            EngagementWorkflow.send_documents,
            SendDocuments(documents=specs, actor=actor),
            update_id=f"documents-{specs[0].upload_ref}",
        )
    except BaseException:
        for spec in specs:  # refused: leave nothing behind
            resources.store.delete(spec.storage_key)
        raise
    return _engagement_out(db, engagement)


_REQUIRED = {"taxpayer": ["taxpayer"], "spouse": ["spouse"], "both": ["taxpayer", "spouse"], "none": []}


async def _store_pdf(resources: ResourcesDep, upload: UploadFile, who: str) -> DocumentSpec:
    name = safe_filename(upload.filename or "document.pdf")
    if who not in _REQUIRED:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{name}: who signs must be taxpayer, spouse, both or none.",
        )
    limit = resources.settings.max_upload_bytes
    data = await upload.read(limit + 1)
    try:
        pages = pdfsign.check_pdf_for_sending(data, limit)
    except pdfsign.PdfRejected as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{name}: {exc.reason}") from exc
    key = resources.store.new_key("sent")
    resources.store.put(key, data)
    digest = sha256_hex(data)
    ref = hashlib.sha256(f"{key}:{digest}".encode()).hexdigest()[:32]
    return DocumentSpec(
        upload_ref=ref,
        storage_key=key,
        name=name,
        sha256=digest,
        size=len(data),
        pages=pages,
        required_roles=_REQUIRED[who],
    )


@router.get("/engagements/{engagement_id}/documents/{document_id}/download")
def download_document(
    engagement_id: int,
    document_id: int,
    request: Request,
    preparer: CurrentPreparer,
    db: SessionDep,
    resources: ResourcesDep,
    original: bool = False,
) -> Response:
    """Download a document: the latest (signed) version, or the original as sent."""
    engagement = _engagement(db, preparer, engagement_id)
    doc = owned_document(db, engagement.id or 0, document_id)
    audit.record(
        db,
        action="document.download",
        actor=request_actor(request, "preparer", str(preparer.id)),
        firm_id=preparer.firm_id,
        engagement_id=engagement.id,
        detail={"document": doc.id},
    )
    db.commit()
    return download(resources.store, doc, original=original)


@router.post("/engagements/{engagement_id}/cancel", response_model=Done)
async def cancel(
    engagement_id: int,
    body: CancelIn,
    request: Request,
    preparer: CurrentPreparer,
    db: SessionDep,
    client: TemporalDep,
) -> Done:
    """Cancel the engagement: reminders stop and the client can no longer act."""
    engagement = _engagement(db, preparer, engagement_id)
    await workflow_calls.update(
        client,
        engagement.id or 0,
        EngagementWorkflow.cancel,
        Cancel(actor=request_actor(request, "preparer", str(preparer.id)), reason=body.reason),
    )
    return Done(message="The engagement is cancelled.")


@router.post("/engagements/{engagement_id}/unlock", response_model=Done)
async def unlock(
    engagement_id: int,
    body: RoleIn,
    request: Request,
    preparer: CurrentPreparer,
    db: SessionDep,
    client: TemporalDep,
) -> Done:
    """Clear a signer's lock after too many identity mismatches or wrong codes."""
    engagement = _engagement(db, preparer, engagement_id)
    await workflow_calls.update(
        client,
        engagement.id or 0,
        EngagementWorkflow.unlock,
        Unlock(role=body.role, actor=request_actor(request, "preparer", str(preparer.id))),
    )
    return Done(message=f"The {body.role} can try again.")


@router.get("/engagements/{engagement_id}/messages", response_model=list[ChatOut])
def read_chat(engagement_id: int, preparer: CurrentPreparer, db: SessionDep) -> list[ChatOut]:
    """The chat with the client, oldest first."""
    return chat_of(db, _engagement(db, preparer, engagement_id).id or 0)


@router.post("/engagements/{engagement_id}/messages", response_model=ChatOut, status_code=201)
def post_chat(
    engagement_id: int, body: ChatIn, request: Request, preparer: CurrentPreparer, db: SessionDep
) -> ChatOut:
    """Write to the client."""
    engagement = _engagement(db, preparer, engagement_id)
    message = ChatMessage(
        engagement_id=engagement.id or 0, sender="preparer", sender_name=preparer.name, body=body.body.strip()
    )
    db.add(message)
    audit.record(
        db,
        action="chat.sent",
        actor=request_actor(request, "preparer", str(preparer.id)),
        firm_id=preparer.firm_id,
        engagement_id=engagement.id,
    )
    db.commit()
    return chat_of(db, engagement.id or 0)[-1]
