"""Taxpayer side: invitation, registration, code verification, documents, signature, chat."""

from __future__ import annotations

import contextlib
import io
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Request, Response, UploadFile, status
from PIL import Image, UnidentifiedImageError
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.service import RPCError

from activities.engagement import code_digest
from api import workflow_calls
from api.deps import (
    CurrentSigner,
    CurrentTaxpayer,
    ResourcesDep,
    SessionDep,
    TemporalDep,
    cookie_name,
    request_actor,
)
from api.documents import chat_of, documents_of, download, owned_document, safe_filename, sniff_upload
from api.schemas import (
    ChatIn,
    ChatOut,
    CodeChannel,
    CodeIn,
    CodeRequest,
    CodeSentOut,
    DocumentOut,
    Done,
    InvitationOut,
    InvitationState,
    MeOut,
    RegisterIn,
    RegisterOut,
    SignOut,
    TaxpayerLogin,
)
from core import audit, sessions
from core.actor import Actor
from core.context import Resources
from core.crypto import sha256_hex
from core.identity import InvalidContact, contact_digest, identity_digest, mask_email, mask_phone
from core.models import ChatMessage, Direction, Document, Engagement, Firm, Signer, TaxpayerAccount
from core.passwords import hash_password, password_problems, verify_password
from core.tokens import InvalidToken, read_invite_token
from workflows.engagement import EngagementWorkflow
from workflows.types import (
    ClientActivity,
    CodeSent,
    Register,
    RegisterResult,
    RequestCode,
    SaveSignature,
    SignDocument,
    SignResult,
    VerifyCode,
    VerifyResult,
)

router = APIRouter(prefix="/api", tags=["taxpayer"])
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"
MISMATCH = (
    "These details don't match the tax return your preparer entered. Check them and try again, "
    "or ask your preparer."
)


def _channels(signer: Signer) -> list[CodeChannel]:
    out = []
    if signer.email:
        out.append(CodeChannel(channel="email", masked=mask_email(signer.email)))
    if signer.phone:
        out.append(CodeChannel(channel="sms", masked=mask_phone(signer.phone)))
    return out


def _set_cookie(response: Response, resources: Resources, token: str) -> None:
    response.set_cookie(
        cookie_name(resources),
        token,
        httponly=True,
        samesite="lax",
        path="/",
        secure=not resources.settings.is_development,
    )


# ---- invitation and registration -----------------------------------------------------------------


def _invitation(db: Session, resources: Resources, token: str) -> tuple[Signer, Engagement, int]:
    try:
        payload = read_invite_token(resources.cipher.derive_key("invite-token"), token)
    except InvalidToken as exc:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, "This link is not valid. Check it, or ask your preparer for a new one."
        ) from exc
    signer = db.exec(
        select(Signer).where(Signer.engagement_id == payload.engagement_id, Signer.role == payload.role)
    ).first()
    engagement = db.get(Engagement, payload.engagement_id)
    if signer is None or engagement is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "This link is not valid.")
    return signer, engagement, payload.invite_seq


@router.get("/invitations/{token}", response_model=InvitationOut)
async def open_invitation(
    token: str, db: SessionDep, resources: ResourcesDep, client: TemporalDep
) -> InvitationOut:
    """What an invitation link leads to, and whether it can still be used."""
    signer, engagement, seq = _invitation(db, resources, token)
    firm = db.get(Firm, engagement.firm_id)
    state = await workflow_calls.query_status(client, engagement.id or 0)
    me = state.signers[signer.role.value]
    verdict: InvitationState = "open"
    message = "Create your account."
    if state.stage in ("cancelled", "completed"):
        verdict, message = "closed", "This engagement is closed. Contact your preparer if you need anything."
    elif me.registered_at is not None:
        verdict, message = "registered", "Your account already exists. Log in."
    elif me.invite_seq != seq:
        verdict, message = "replaced", "This link has been replaced by a newer one. Use the latest message."
    elif me.invite_expired:
        verdict, message = "expired", "This link has expired. Ask your preparer to send you a new one."
    elif me.registration_locked:
        verdict, message = (
            "locked",
            "This link is locked after too many attempts. Ask your preparer for a new one.",
        )
    return InvitationOut(
        state=verdict,
        message=message,
        firm_name=firm.name if firm else "",
        first_name=signer.first_name,
        tax_year=engagement.tax_year,
    )


@router.post("/invitations/{token}/register", response_model=RegisterOut, status_code=201)
async def register(
    token: str,
    body: RegisterIn,
    request: Request,
    response: Response,
    db: SessionDep,
    resources: ResourcesDep,
    client: TemporalDep,
) -> RegisterOut:
    """Create the portal account; the details must match the return."""
    signer, engagement, seq = _invitation(db, resources, token)
    problems = password_problems(body.password, body.username, body.email)
    if problems:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, " ".join(problems))
    if db.exec(select(TaxpayerAccount.id).where(TaxpayerAccount.username == body.username)).first():
        raise HTTPException(status.HTTP_409_CONFLICT, "That user name is taken. Choose another.")
    cipher = resources.cipher
    try:
        email_digest = contact_digest(cipher, "email", body.email)
        phone_digest = contact_digest(cipher, "sms", body.phone)
    except InvalidContact as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    actor = request_actor(request, "taxpayer", signer.role.value)
    result: RegisterResult = await workflow_calls.update(
        client,
        engagement.id or 0,
        EngagementWorkflow.register,
        Register(
            role=signer.role.value,
            invite_seq=seq,
            identity_digest=identity_digest(cipher, body.last_name, body.ssn_last4),
            email_digest=email_digest,
            phone_digest=phone_digest,
            username=body.username,
            password_hash=hash_password(body.password),
            email=body.email.strip().lower(),
            phone=body.phone,
            actor=actor,
        ),
    )
    if not result.ok:
        if result.locked:
            raise HTTPException(
                status.HTTP_423_LOCKED,
                "Too many attempts: this link is locked. Ask your preparer for a new one.",
            )
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"{MISMATCH} ({result.attempts_left} attempts left)"
        )
    session_token = sessions.start(db, "taxpayer", result.account_id or 0, actor.ip, actor.user_agent)
    _set_cookie(response, resources, session_token)
    return RegisterOut(username=body.username, next="verify", channels=_channels(signer))


@router.post("/taxpayer/login", response_model=MeOut)
async def login(
    body: TaxpayerLogin, request: Request, response: Response, db: SessionDep, resources: ResourcesDep
) -> MeOut:
    """Log in with user name and password."""
    account = db.exec(select(TaxpayerAccount).where(TaxpayerAccount.username == body.username)).first()
    ok = verify_password(account.password_hash if account else _DUMMY_HASH, body.password)
    signer = db.get(Signer, account.signer_id) if account else None
    actor = request_actor(request, "taxpayer", signer.role.value if signer else body.username)
    if not (ok and account and signer):
        audit.record(
            db,
            action="taxpayer.login_failed",
            actor=actor,
            engagement_id=signer.engagement_id if signer else None,
        )
        db.commit()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Wrong user name or password.")
    token = sessions.start(db, "taxpayer", account.id or 0, actor.ip, actor.user_agent)
    audit.record(db, action="taxpayer.login", actor=actor, engagement_id=signer.engagement_id)
    db.commit()
    _set_cookie(response, resources, token)
    return _me(db, account, signer)


@router.post("/taxpayer/logout", response_model=Done)
def logout(request: Request, response: Response, db: SessionDep, resources: ResourcesDep) -> Done:
    """End this session."""
    token = request.cookies.get(cookie_name(resources))
    if token:
        sessions.end(db, token)
    response.delete_cookie(cookie_name(resources), path="/")
    return Done(message="Logged out.")


@router.get("/taxpayer/me", response_model=MeOut)
def me(account: CurrentTaxpayer, signer: CurrentSigner, db: SessionDep) -> MeOut:
    """The logged-in taxpayer, with what is waiting for them."""
    return _me(db, account, signer)


def _me(db: Session, account: TaxpayerAccount, signer: Signer) -> MeOut:
    engagement = db.get(Engagement, signer.engagement_id)
    waiting = sum(
        1
        for doc in documents_of(db, signer.engagement_id, Direction.TO_CLIENT)
        for sig in doc.signatures
        if sig.role == signer.role.value and sig.signed_at is None
    )
    return MeOut(
        username=account.username,
        role=signer.role.value,
        name=signer.full_name,
        engagement_id=signer.engagement_id,
        tax_year=engagement.tax_year if engagement else 0,
        verified=account.verified_at is not None,
        signature_on_file=signer.signature_key is not None,
        channels=_channels(signer),
        documents_waiting=waiting,
    )


# ---- verification --------------------------------------------------------------------------------


@router.post("/taxpayer/code", response_model=CodeSentOut)
async def request_code(
    body: CodeRequest, request: Request, signer: CurrentSigner, client: TemporalDep
) -> CodeSentOut:
    """Send a one-time code by email or text."""
    sent: CodeSent = await workflow_calls.update(
        client,
        signer.engagement_id,
        EngagementWorkflow.request_code,
        RequestCode(
            role=signer.role.value,
            channel=body.channel,
            actor=request_actor(request, "taxpayer", signer.role.value),
        ),
    )
    return CodeSentOut(
        message=f"Code sent to {sent.masked_destination}.",
        expires_at=sent.expires_at,
        resend_after=sent.resend_after,
    )


@router.post("/taxpayer/verify", response_model=Done)
async def verify(
    body: CodeIn, request: Request, signer: CurrentSigner, resources: ResourcesDep, client: TemporalDep
) -> Done:
    """Check the one-time code."""
    digest = code_digest(resources, signer.engagement_id, signer.role.value, body.code)
    result: VerifyResult = await workflow_calls.update(
        client,
        signer.engagement_id,
        EngagementWorkflow.verify_code,
        VerifyCode(
            role=signer.role.value,
            code_digest=digest,
            actor=request_actor(request, "taxpayer", signer.role.value),
        ),
    )
    if result.ok:
        return Done(message="Your account is verified.")
    messages = {
        "wrong": f"That code is not right. {result.tries_left} tries left.",
        "expired": "That code has expired. Ask for a new one.",
        "used": "That code was already used. Ask for a new one.",
        "locked": "Too many wrong codes. Ask your preparer to unlock your account.",
    }
    code = status.HTTP_423_LOCKED if result.reason == "locked" else status.HTTP_422_UNPROCESSABLE_CONTENT
    raise HTTPException(code, messages.get(result.reason, "That code did not work."))


def _require_verified(account: TaxpayerAccount) -> None:
    if account.verified_at is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Verify your account first.")


# ---- documents -----------------------------------------------------------------------------------


@router.get("/taxpayer/documents", response_model=list[DocumentOut])
def list_documents(account: CurrentTaxpayer, signer: CurrentSigner, db: SessionDep) -> list[DocumentOut]:
    """Files from the preparer and the files this taxpayer's return has uploaded."""
    _require_verified(account)
    return documents_of(db, signer.engagement_id)


@router.get("/taxpayer/documents/{document_id}/download")
def download_document(
    document_id: int,
    request: Request,
    account: CurrentTaxpayer,
    signer: CurrentSigner,
    db: SessionDep,
    resources: ResourcesDep,
) -> Response:
    """View a document (the signed version once signed)."""
    _require_verified(account)
    doc = owned_document(db, signer.engagement_id, document_id)
    audit.record(
        db,
        action="document.view",
        actor=request_actor(request, "taxpayer", signer.role.value),
        engagement_id=signer.engagement_id,
        detail={"document": doc.id},
    )
    db.commit()
    return download(resources.store, doc)


@router.post("/taxpayer/uploads", response_model=list[DocumentOut], status_code=201)
async def upload(
    files: Annotated[list[UploadFile], File(description="PDFs or photos")],
    request: Request,
    account: CurrentTaxpayer,
    signer: CurrentSigner,
    db: SessionDep,
    resources: ResourcesDep,
    client: TemporalDep,
) -> list[DocumentOut]:
    """Upload W-2s, 1099s and other documents for the preparer."""
    _require_verified(account)
    limit = resources.settings.max_upload_bytes
    accepted: list[tuple[UploadFile, bytes, str]] = []
    for item in files:  # check every file before storing any, so a refusal leaves nothing behind
        data = await item.read(limit + 1)
        name = safe_filename(item.filename or "upload")
        kind = sniff_upload(data)
        if len(data) > limit:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, f"{name} is larger than {limit // (1024 * 1024)} MB."
            )
        if kind is None:
            raise HTTPException(
                status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"{name}: upload PDFs or photos (JPEG, PNG, HEIC)."
            )
        accepted.append((item, data, kind))
    for item, data, kind in accepted:
        key = resources.store.new_key("uploads")
        resources.store.put(key, data)
        digest = sha256_hex(data)
        db.add(
            Document(
                engagement_id=signer.engagement_id,
                direction=Direction.TO_PREPARER,
                upload_ref=key,
                name=safe_filename(item.filename or "upload"),
                content_type=kind,
                size=len(data),
                storage_key=key,
                sha256=digest,
                current_key=key,
                current_sha256=digest,
                uploaded_by=f"taxpayer:{signer.role.value}",
            )
        )
    actor = request_actor(request, "taxpayer", signer.role.value)
    audit.record(
        db,
        action="document.upload",
        actor=actor,
        engagement_id=signer.engagement_id,
        detail={"count": len(accepted)},
    )
    db.commit()
    await _tell_workflow(client, signer, "upload", actor)
    return documents_of(db, signer.engagement_id, Direction.TO_PREPARER)


async def _tell_workflow(client: Client, signer: Signer, what: str, actor: Actor) -> None:
    handle = workflow_calls.handle_for(client, signer.engagement_id)
    # The dashboard's "last activity" is a nicety: the upload or message is already stored.
    with contextlib.suppress(RPCError):
        await handle.signal(
            EngagementWorkflow.client_activity, ClientActivity(role=signer.role.value, what=what, actor=actor)
        )


# ---- signature and signing -----------------------------------------------------------------------


@router.put("/taxpayer/signature", response_model=Done)
async def save_signature(
    image: Annotated[UploadFile, File(description="PNG of the drawn signature")],
    request: Request,
    account: CurrentTaxpayer,
    signer: CurrentSigner,
    resources: ResourcesDep,
    client: TemporalDep,
) -> Done:
    """Save the drawn signature that gets stamped onto documents."""
    _require_verified(account)
    data = await image.read(2 * 1024 * 1024 + 1)
    png = _clean_signature_png(data)
    key = resources.store.new_key("signatures")
    resources.store.put(key, png)
    await workflow_calls.update(
        client,
        signer.engagement_id,
        EngagementWorkflow.save_signature,
        SaveSignature(
            role=signer.role.value, image_key=key, actor=request_actor(request, "taxpayer", signer.role.value)
        ),
    )
    return Done(message="Signature saved.")


def _clean_signature_png(data: bytes) -> bytes:
    """Re-encode the image: whatever else the upload carried does not survive."""
    if len(data) > 2 * 1024 * 1024 or not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "The signature must be a PNG under 2 MB.")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > 4_000_000:
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT, "The signature image is too large."
                )
            out = io.BytesIO()
            img.convert("RGBA").save(out, format="PNG")
    except (UnidentifiedImageError, OSError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "The signature image is damaged.") from exc
    return out.getvalue()


@router.post("/taxpayer/documents/{document_id}/sign", response_model=SignOut)
async def sign(
    document_id: int,
    request: Request,
    account: CurrentTaxpayer,
    signer: CurrentSigner,
    db: SessionDep,
    client: TemporalDep,
) -> SignOut:
    """Sign a document. Clicking twice signs once."""
    _require_verified(account)
    owned_document(db, signer.engagement_id, document_id)
    result: SignResult = await workflow_calls.update(
        client,
        signer.engagement_id,
        EngagementWorkflow.sign_document,
        SignDocument(
            role=signer.role.value,
            document_id=document_id,
            actor=request_actor(request, "taxpayer", signer.role.value),
        ),
        # Same id for the same document and signer: Temporal answers a repeat with the first result.
        update_id=f"sign-{document_id}-{signer.role.value}",
    )
    return SignOut(
        document_id=result.document_id, signed_at=result.signed_at, sha256=result.sha256, message="Signed!"
    )


# ---- chat ----------------------------------------------------------------------------------------


@router.get("/taxpayer/messages", response_model=list[ChatOut])
def read_chat(account: CurrentTaxpayer, signer: CurrentSigner, db: SessionDep) -> list[ChatOut]:
    """The chat with the preparer, oldest first."""
    _require_verified(account)
    return chat_of(db, signer.engagement_id)


@router.post("/taxpayer/messages", response_model=ChatOut, status_code=201)
async def post_chat(
    body: ChatIn,
    request: Request,
    account: CurrentTaxpayer,
    signer: CurrentSigner,
    db: SessionDep,
    client: TemporalDep,
) -> ChatOut:
    """Write to the preparer."""
    _require_verified(account)
    db.add(
        ChatMessage(
            engagement_id=signer.engagement_id,
            sender=signer.role.value,
            sender_name=signer.full_name,
            body=body.body.strip(),
        )
    )
    actor = request_actor(request, "taxpayer", signer.role.value)
    audit.record(db, action="chat.sent", actor=actor, engagement_id=signer.engagement_id)
    db.commit()
    await _tell_workflow(client, signer, "message", actor)
    return chat_of(db, signer.engagement_id)[-1]
