"""What a preparer does to an engagement, shared by the JSON API (`api/routes/preparer.py`) and the
workspace pages (`web/preparer/`): each rule is written once here.

Firm isolation starts at `engagement_of`: every engagement, document, message and audit entry a preparer
reaches is found through an engagement of their own firm. Whatever changes the pipeline (invite,
documents, cancel, unlock) is a workflow update, exactly as the API always did; the rest (chat,
downloads, views) is recorded in the audit log here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from fastapi import HTTPException, Request, status
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload
from temporalio.client import Client

from activities import pdfsign, signing
from api import workflow_calls
from api.deps import request_actor
from api.documents import add_chat, documents_of, owned_document, safe_filename
from api.engagements import create_engagement
from api.schemas import (
    ChatOut,
    EngagementCreate,
    EngagementOut,
    InviteOut,
    SignerOut,
    StatusOut,
)
from api.services import ServiceError, upload_checks
from core import audit
from core.actor import Actor
from core.context import Resources
from core.crypto import sha256_hex
from core.identity import InvalidContact, contact_digest, mask_email, mask_phone
from core.models import (
    Document,
    Engagement,
    EngagementStatus,
    Preparer,
    Signer,
    TaxpayerAccount,
)
from workflows.engagement import EngagementWorkflow
from workflows.types import Cancel, DocumentSpec, InviteResult, SendDocuments, SendInvite, Unlock

WHO_SIGNS = {"taxpayer": ["taxpayer"], "spouse": ["spouse"], "both": ["taxpayer", "spouse"], "none": []}
LINK_SENT = "The link has successfully been sent!"
TRANSFER_COMPLETED = "Transfer Completed - Documents are now on Customer Portal"


def engagement_of(db: Session, preparer: Preparer, engagement_id: int) -> Engagement:
    """The engagement, only if it belongs to the preparer's firm; 404 otherwise (no hint it exists)."""
    engagement = db.exec(
        select(Engagement).where(Engagement.id == engagement_id, Engagement.firm_id == preparer.firm_id)
    ).first()
    if engagement is None:
        raise ServiceError(status.HTTP_404_NOT_FOUND, "No such engagement.")
    return engagement


def _actor(request: Request, preparer: Preparer) -> Actor:
    return request_actor(request, "preparer", str(preparer.id))


# ---- create ----------------------------------------------------------------------------------------------


async def create(
    db: Session,
    client: Client,
    resources: Resources,
    request: Request,
    preparer: Preparer,
    body: EngagementCreate,
    *,
    detail: dict[str, str] | None = None,
    owner: Preparer | None = None,
) -> Engagement:
    """Creates the engagement (for `owner`, a preparer of the same firm, or the one acting)."""
    engagement = await create_engagement(db, client, resources, owner or preparer, body)
    audit.record(
        db,
        action="engagement.create",
        actor=_actor(request, preparer),
        firm_id=preparer.firm_id,
        engagement_id=engagement.id,
        detail=detail,
    )
    db.commit()
    return engagement


# ---- invite ----------------------------------------------------------------------------------------------


async def invite(
    client: Client,
    resources: Resources,
    request: Request,
    preparer: Preparer,
    engagement: Engagement,
    role: str,
    channel: str,
    destination: str | None = None,
) -> InviteOut:
    """Sends (or re-sends, or re-issues after expiry) the portal link; the workflow decides."""
    digest = None
    if destination:
        try:
            digest = contact_digest(resources.cipher, channel, destination)
        except InvalidContact as exc:
            raise ServiceError(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    result: InviteResult = await workflow_calls.update(
        client,
        engagement.id or 0,
        EngagementWorkflow.send_invite,
        SendInvite(role=role, channel=channel, actor=_actor(request, preparer), destination_digest=digest),
    )
    message = LINK_SENT
    if result.scheduled_for:
        message = "It is night where the client lives: the text goes out at 8:00 their time."
    return InviteOut(
        message=message, masked_destination=result.masked_destination, scheduled_for=result.scheduled_for
    )


# ---- documents -------------------------------------------------------------------------------------------


@dataclass
class OutgoingFile:
    upload: StarletteUpload
    who: str  # a key of WHO_SIGNS
    boxes: str = ""  # JSON signature boxes, optional


async def send_documents(
    client: Client,
    resources: Resources,
    request: Request,
    preparer: Preparer,
    engagement: Engagement,
    files: list[OutgoingFile],
) -> list[int]:
    """Checks and stores every PDF, then asks the workflow to publish them; nothing is left behind when
    any file or the workflow refuses."""
    if not files:
        raise ServiceError(status.HTTP_422_UNPROCESSABLE_CONTENT, "Choose at least one PDF.", "files")
    specs: list[DocumentSpec] = []
    try:
        for item in files:
            specs.append(await _store_pdf(resources, item))
    except BaseException:
        _forget(resources, specs)
        raise
    try:
        ids: list[int] = await workflow_calls.update(
            client,
            engagement.id or 0,
            EngagementWorkflow.send_documents,
            SendDocuments(documents=specs, actor=_actor(request, preparer)),
            update_id=_send_id(specs),
        )
    except HTTPException as exc:
        # Only a refusal is final. After a timeout or an outage the workflow may already have accepted
        # the documents, and deleting their files then would leave documents nobody can sign.
        if exc.status_code == status.HTTP_409_CONFLICT:
            _forget(resources, specs)
        raise
    if not _published(resources, specs):
        _forget(resources, specs)  # a repeat of an earlier send: the workflow answered with that one's
    return ids


def _send_id(specs: list[DocumentSpec]) -> str:
    """The same files with the same signers make the same update id, so a send repeated after an outage
    or a double click (whose first attempt Temporal may still deliver) joins the first instead of
    putting a second copy up for signature."""
    content = [(s.sha256, s.name, sorted(s.required_roles), repr(s.signature_boxes)) for s in specs]
    return "documents-" + hashlib.sha256(repr(content).encode()).hexdigest()[:32]


def _published(resources: Resources, specs: list[DocumentSpec]) -> bool:
    refs = [spec.upload_ref for spec in specs]
    with Session(resources.engine) as db:
        return db.exec(select(Document.id).where(col(Document.upload_ref).in_(refs))).first() is not None


def _forget(resources: Resources, specs: list[DocumentSpec]) -> None:
    for spec in specs:
        resources.store.delete(spec.storage_key)


async def _store_pdf(resources: Resources, item: OutgoingFile) -> DocumentSpec:
    name = safe_filename(item.upload.filename or "document.pdf")
    if item.who not in WHO_SIGNS:
        raise ServiceError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{name}: who signs must be taxpayer, spouse, both or none.",
        )
    limit = resources.settings.max_upload_bytes
    data = await item.upload.read(limit + 1)
    roles = WHO_SIGNS[item.who]
    try:
        boxes = signing.parse_signature_boxes(item.boxes)
        pages = pdfsign.check_pdf_for_sending(data, limit, roles=roles, boxes=signing.page_boxes(boxes))
    except pdfsign.PdfRejected as exc:
        raise ServiceError(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{name}: {exc.reason}") from exc
    except ValueError as exc:
        raise ServiceError(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{name}: {exc}") from exc
    problem = upload_checks.pdf_problem(
        data
    )  # scripts (JavaScript, launch actions) are refused, as for clients
    if problem is not None:
        raise ServiceError(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{name}: {problem}")
    key = resources.store.new_key("sent")
    await run_in_threadpool(resources.store.put, key, data)  # disk I/O with fsync: off the loop
    digest = sha256_hex(data)
    return DocumentSpec(
        upload_ref=hashlib.sha256(f"{key}:{digest}".encode()).hexdigest()[:32],
        storage_key=key,
        name=name,
        sha256=digest,
        size=len(data),
        pages=pages,
        required_roles=roles,
        signature_boxes=boxes,
    )


def document_for_download(
    db: Session, request: Request, preparer: Preparer, engagement: Engagement, document_id: int
) -> Document:
    doc = owned_document(db, engagement.id or 0, document_id)
    audit.record(
        db,
        action="document.download",
        actor=_actor(request, preparer),
        firm_id=preparer.firm_id,
        engagement_id=engagement.id,
        detail={"document": doc.id},
    )
    db.commit()
    return doc


# ---- cancel, unlock --------------------------------------------------------------------------------------


async def cancel(
    client: Client, request: Request, preparer: Preparer, engagement: Engagement, reason: str
) -> None:
    await workflow_calls.update(
        client,
        engagement.id or 0,
        EngagementWorkflow.cancel,
        Cancel(actor=_actor(request, preparer), reason=reason.strip()[:500]),
    )


async def unlock(
    client: Client, request: Request, preparer: Preparer, engagement: Engagement, role: str
) -> None:
    await workflow_calls.update(
        client,
        engagement.id or 0,
        EngagementWorkflow.unlock,
        Unlock(role=role, actor=_actor(request, preparer)),
    )


# ---- chat ------------------------------------------------------------------------------------------------


def post_chat(
    db: Session, request: Request, preparer: Preparer, engagement: Engagement, body: str
) -> ChatOut:
    actor = _actor(request, preparer)
    return add_chat(db, engagement.id or 0, "preparer", preparer.name, body, actor, preparer.firm_id)


def record_view(db: Session, request: Request, preparer: Preparer, engagement: Engagement) -> None:
    """Opening an engagement shows personal data: the Safeguards Rule wants access monitored."""
    audit.record(
        db,
        action="engagement.viewed",
        actor=_actor(request, preparer),
        firm_id=preparer.firm_id,
        engagement_id=engagement.id,
    )
    db.commit()


# ---- reading ---------------------------------------------------------------------------------------------


def status_out(row: EngagementStatus | None) -> StatusOut:
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


def signers_of(db: Session, engagement: Engagement) -> list[tuple[Signer, TaxpayerAccount | None]]:
    """Taxpayer first, then the spouse, each with their portal account if they registered."""
    signers = db.exec(
        select(Signer).where(Signer.engagement_id == engagement.id).order_by(col(Signer.role).desc())
    ).all()
    ids = [s.id for s in signers]
    accounts = {
        a.signer_id: a
        for a in db.exec(select(TaxpayerAccount).where(col(TaxpayerAccount.signer_id).in_(ids)))
    }
    return [(s, accounts.get(s.id or 0)) for s in signers]


def signer_out(signer: Signer, account: TaxpayerAccount | None) -> SignerOut:
    return SignerOut(
        role=signer.role.value,
        name=signer.full_name,
        masked_email=mask_email(signer.email) if signer.email else None,
        masked_phone=mask_phone(signer.phone) if signer.phone else None,
        time_zone=signer.time_zone,
        registered=account is not None,
        verified=bool(account and account.verified_at),
        signature_on_file=signer.signature_key is not None,
    )


def engagement_out(db: Session, engagement: Engagement) -> EngagementOut:
    people = signers_of(db, engagement)
    names = {s.role.value: s.full_name for s, _ in people}
    return EngagementOut(
        id=engagement.id or 0,
        tax_year=engagement.tax_year,
        taxpayer_name=names.get("taxpayer", ""),
        spouse_name=names.get("spouse"),
        status=status_out(db.get(EngagementStatus, engagement.id)),
        signers=[signer_out(s, a) for s, a in people],
        documents=documents_of(db, engagement.id or 0),
    )
