"""What a verified taxpayer does in the portal: uploads, signature, signing, chat, and where they stand."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field

from fastapi import UploadFile
from PIL import Image, UnidentifiedImageError
from sqlalchemy import func, update
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload
from temporalio.service import RPCError

from activities.types import SignResult
from core import audit
from core.enums import Role
from core.models import ChatMessage, Direction, Document, Engagement, Signer, TaxpayerAccount
from services import Refusal, ServiceError, consent, parsing, proofing, signature_images, workflow_calls
from services.accounts import channels
from services.client_library import on_return_of
from services.context import TaxpayerContext
from services.documents import add_chat, documents_of, safe_filename, sniff_upload, store_upload
from services.schemas import ChatOut, DocumentOut, MeOut
from services.signature_images import SignatureMethod
from services.upload_checks import pdf_problem
from workflows.engagement import EngagementWorkflow
from workflows.types import ClientActivity, SaveSignature, SignDocument

SIGNATURE_MAX_BYTES = 2 * 1024 * 1024
REFUSED_TYPE = "{name}: this kind of file can't be uploaded. Upload PDFs or photos (JPEG, PNG, HEIC)."


# ---- where the taxpayer stands -------------------------------------------------------------------------


@dataclass
class Overview:
    """Counts and next steps for the home page and `GET /api/taxpayer/me`."""

    uploaded: int
    sent: int
    messages: int
    waiting_for_me: int
    signature_on_file: bool
    others_missing: dict[str, int] = field(default_factory=dict)  # other signer's name -> unsigned docs
    next_steps: list[str] = field(default_factory=list)


def overview(db: Session, signer: Signer, names: dict[str, str] | None = None) -> Overview:
    """`names`: the co-signers' first names by role, when the caller has them already."""
    docs = documents_of(db, signer.engagement_id, viewer_role=signer.role.value)
    role = signer.role.value
    sent = [d for d in docs if d.direction == "to_client"]
    # Owed: not signed, not declined (the preparer acts next), on a document no corrected copy replaced.
    owed: list[str] = [
        sig.role
        for d in sent
        if d.replaced_by is None
        for sig in d.signatures
        if sig.signed_at is None and sig.declined_at is None
    ]
    mine = owed.count(role) - _waiting_for_taxpayer(db, signer, sent)
    if names is None:
        names = {s.role.value: s.first_name for s in co_signers(db, signer)}
    others: dict[str, int] = {}
    for other in owed:
        if other != role:
            name = names.get(other, other.capitalize())
            others[name] = others.get(name, 0) + 1
    messages = db.exec(
        select(func.count()).select_from(ChatMessage).where(ChatMessage.engagement_id == signer.engagement_id)
    ).one()
    result = Overview(
        uploaded=sum(1 for d in docs if d.direction == "to_preparer"),
        sent=len(sent),
        messages=int(messages),
        waiting_for_me=mine,
        signature_on_file=signer.signature_key is not None,
        others_missing=others,
    )
    result.next_steps = _next_steps(result)
    return result


def _documents(count: int) -> str:
    return "1 document" if count == 1 else f"{count} documents"


def _next_steps(o: Overview) -> list[str]:
    steps = []
    if o.waiting_for_me:
        verb = "is" if o.waiting_for_me == 1 else "are"
        steps.append(f"{_documents(o.waiting_for_me)} {verb} waiting for your signature.")
        if not o.signature_on_file:
            steps.append(
                "Start by adding your signature: open Files From My Preparer and choose "
                '"Click To Add Signature".'
            )
    for name, count in o.others_missing.items():
        steps.append(f"{name} still needs to sign {_documents(count)}.")
    if not steps and o.sent == 0:
        steps.append(
            "Upload your tax documents (W-2s, 1099s …) in My Files. Your preparer will send your return "
            "here when it is ready to sign."
        )
    if not steps:
        steps.append("You're all done for now. Your preparer will let you know if anything else is needed.")
    return steps


def _waiting_for_taxpayer(db: Session, signer: Signer, sent: list[DocumentOut]) -> int:
    """The spouse's documents that wait for the taxpayer to sign first (a return with a signing order):
    not yet theirs to sign."""
    if signer.role != Role.SPOUSE:
        return 0
    engagement = db.get(Engagement, signer.engagement_id)
    if engagement is None or not engagement.taxpayer_signs_first:
        return 0
    waiting = 0
    for doc in sent:
        unsigned = {s.role for s in doc.signatures if s.signed_at is None and s.declined_at is None}
        waiting += doc.replaced_by is None and {Role.SPOUSE, Role.TAXPAYER} <= unsigned
    return waiting


def co_signers(db: Session, signer: Signer) -> list[Signer]:
    return list(
        db.exec(
            select(Signer).where(Signer.engagement_id == signer.engagement_id, Signer.id != signer.id)
        ).all()
    )


def me(db: Session, account: TaxpayerAccount, signer: Signer) -> MeOut:
    engagement = db.get(Engagement, signer.engagement_id)
    waiting = overview(db, signer).waiting_for_me if account.verified_at else 0
    return MeOut(
        username=account.username,
        role=signer.role.value,
        name=signer.full_name,
        engagement_id=signer.engagement_id,
        tax_year=engagement.tax_year if engagement else 0,
        verified=account.verified_at is not None,
        signature_on_file=signer.signature_key is not None,
        channels=channels(signer),
        documents_waiting=waiting,
    )


# ---- uploads -----------------------------------------------------------------------------------------


async def store_uploads(
    ctx: TaxpayerContext, files: list[UploadFile], *, private: bool = False
) -> list[DocumentOut]:
    """Stores PDFs and photos for the preparer; checks every file before storing any. `private` (on a
    joint return only): the other spouse never sees them."""
    db, resources, signer = ctx.db, ctx.resources, ctx.signer
    private = private and bool(co_signers(db, signer))
    limit = resources.settings.max_upload_bytes
    accepted: list[tuple[str, bytes, str]] = []
    if not files:
        raise ServiceError(Refusal.INVALID, "Choose at least one file.")
    for item in files:
        accepted.append(await checked_file(item, limit))
    for name, data, kind in accepted:
        by = f"taxpayer:{signer.role.value}"
        db.add(
            await store_upload(
                resources.store, signer.engagement_id, name, data, kind, uploaded_by=by, private=private
            )
        )
    audit.record(
        db,
        action="document.upload",
        actor=ctx.actor,
        engagement_id=signer.engagement_id,
        detail={"count": len(accepted), "private": private},
    )
    db.commit()
    await tell_workflow(ctx, "upload")
    return documents_of(db, signer.engagement_id, Direction.TO_PREPARER, viewer_role=signer.role.value)


async def checked_file(
    item: StarletteUpload, limit: int, *, refused: str = REFUSED_TYPE, field: str | None = None
) -> tuple[str, bytes, str]:
    """(name, bytes, content type) of a file a client uploads: within the size limit, not empty, a PDF
    that opens or a photo, judged by its content (a renamed .exe is still refused)."""
    data = await item.read(limit + 1)
    name = safe_filename(item.filename or "upload")
    if len(data) > limit:
        raise ServiceError(Refusal.TOO_LARGE, f"{name} is larger than {limit // (1024 * 1024)} MB.", field)
    if not data:
        raise ServiceError(Refusal.INVALID, f"{name} is empty.", field)
    kind = sniff_upload(data)
    if kind is None:
        raise ServiceError(Refusal.UNSUPPORTED, refused.format(name=name), field)
    problem = await parsing.in_process(name, pdf_problem, data) if kind == "application/pdf" else None
    if problem:
        raise ServiceError(Refusal.INVALID, f"{name}: {problem}", field)
    return name, data, kind


def uploaders(db: Session, engagement_id: int) -> dict[int, str]:
    """Document id -> who uploaded it ("taxpayer" / "spouse" / "preparer"), for the lists of files."""
    rows = db.exec(
        select(Document.id, Document.uploaded_by).where(
            Document.engagement_id == engagement_id, Document.direction == Direction.TO_PREPARER
        )
    ).all()
    # A scan of a paper signature the firm attached is the firm's ("preparer:<id>"): "preparer".
    return {doc_id or 0: by.partition(":")[0 if by.startswith("preparer:") else 2] for doc_id, by in rows}


async def tell_workflow(ctx: TaxpayerContext, what: str) -> None:
    handle = workflow_calls.handle_for(ctx.client, ctx.signer.engagement_id)
    # The dashboard's "last activity" is a nicety: the upload or message is already stored.
    activity = ClientActivity(role=ctx.signer.role.value, what=what, actor=ctx.actor)
    with contextlib.suppress(RPCError):
        await handle.signal(EngagementWorkflow.client_activity, activity)


# ---- signature and signing -----------------------------------------------------------------------------


async def save_signature(
    ctx: TaxpayerContext, data: bytes = b"", *, method: str = "drawn", typed_name: str = ""
) -> None:
    """Puts a signature on file: `data` drawn on the pad or an uploaded picture, or `typed_name` written
    in the handwriting font (`services.signature_images`); the stamp and the record say which."""
    png = await parsing.in_process("The signature", signature_png, method, data, typed_name)
    store = ctx.resources.store
    key = store.new_key("signatures")
    await run_in_threadpool(store.put, key, png)
    await workflow_calls.update(
        ctx.client,
        ctx.signer.engagement_id,
        EngagementWorkflow.save_signature,
        SaveSignature(role=ctx.signer.role.value, image_key=key, actor=ctx.actor),
    )
    # The workflow put the image on file; its method goes with that very image (a later save wins both).
    ctx.db.commit()  # a fresh transaction, which sees the key the workflow's activity wrote
    ctx.db.execute(
        update(Signer)
        .where(col(Signer.id) == ctx.signer.id, col(Signer.signature_key) == key)
        .values(signature_method=method)
    )
    ctx.db.commit()
    ctx.db.refresh(ctx.signer)


def signature_png(method: str, data: bytes, typed_name: str) -> bytes:
    if method == SignatureMethod.TYPED:
        return signature_images.render_typed(typed_name)
    if method == SignatureMethod.UPLOADED:
        return signature_images.clean_uploaded(data)
    if method == SignatureMethod.DRAWN:
        return clean_signature_png(data)
    raise ServiceError(Refusal.INVALID, "Choose how to sign: drawn, typed or uploaded.", "method")


def clean_signature_png(data: bytes) -> bytes:
    """Re-encodes the drawing (nothing else the upload carried survives) and refuses a blank one."""
    if len(data) > SIGNATURE_MAX_BYTES or not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ServiceError(Refusal.INVALID, "The signature must be a PNG under 2 MB.")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > 4_000_000:
                raise ServiceError(Refusal.INVALID, "The signature image is too large.")
            rgba = img.convert("RGBA")
    except (UnidentifiedImageError, OSError) as exc:
        raise ServiceError(Refusal.INVALID, "The signature image is damaged.") from exc
    if rgba.getchannel("A").getbbox() is None:
        raise ServiceError(Refusal.INVALID, "Draw your signature first.")
    out = io.BytesIO()
    rgba.save(out, format="PNG")
    return out.getvalue()


async def sign(ctx: TaxpayerContext, document_id: int) -> SignResult:
    """Signs one document for this signer. Clicking twice signs once."""
    doc, ctx = on_return_of(ctx, document_id)  # the signer on the document's own return, not the shown one
    consent.require(ctx)  # ESIGN Act §101(c): the person agreed to sign electronically, to today's text
    proofing.require(ctx, doc)  # IRS Pub 1345: an 8879 signed remotely needs the signer's identity proofed
    signer = ctx.signer
    result: SignResult = await workflow_calls.update(
        ctx.client,
        signer.engagement_id,
        EngagementWorkflow.sign_document,
        SignDocument(role=signer.role.value, document_id=document_id, actor=ctx.actor),
        # Same id for the same document and signer: Temporal answers a repeat with the first result.
        update_id=f"sign-{document_id}-{signer.role.value}",
    )
    return result


def view_document(ctx: TaxpayerContext, document_id: int) -> Document:
    doc, ctx = on_return_of(ctx, document_id)  # any of the account's returns; never a private upload
    engagement_id = doc.engagement_id
    audit.record(
        ctx.db,
        action="document.view",
        actor=ctx.actor,
        engagement_id=engagement_id,
        detail={"document": doc.id},
    )
    ctx.db.commit()
    return doc


# ---- chat ----------------------------------------------------------------------------------------------


async def post_chat(ctx: TaxpayerContext, body: str) -> ChatOut:
    signer = ctx.signer
    message = add_chat(ctx.db, signer.engagement_id, signer.role.value, signer.full_name, body, ctx.actor)
    await tell_workflow(ctx, "message")
    return message
