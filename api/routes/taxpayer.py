"""Taxpayer side: invitation, registration, code verification, login, documents, signature, chat.

The rules live in `api.services` and are shared with the portal pages; these routes only translate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, File, Request, Response, UploadFile, status
from fastapi.responses import JSONResponse

from activities.outbox import Outbox
from api.deps import CurrentSigner, CurrentTaxpayer, ResourcesDep, SessionDep, TemporalDep
from api.documents import chat_of, documents_of, download
from api.schemas import (
    ChatIn,
    ChatOut,
    CodeRequest,
    CodeSentOut,
    ContactCodeIn,
    ContactConfirmIn,
    DocumentOut,
    Done,
    InvitationOut,
    LoginChallengeOut,
    MeOut,
    PasswordChangeIn,
    PasswordHintsIn,
    PasswordHintsOut,
    RegisterIn,
    RegisterOut,
    SignOut,
    TaxpayerLoginIn,
    VerifyIn,
)
from api.services import account_changes, accounts, new_device, portal, throttling
from api.services.accounts import channels

router = APIRouter(prefix="/api", tags=["taxpayer"])
OutboxDep = Annotated[Outbox, Depends(new_device.get_outbox)]


class SentCode(Protocol):
    """A one-time code that went out: a login code, a new address's code or the workflow's own."""

    @property
    def masked_destination(self) -> str: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def resend_after(self) -> datetime: ...


def _code_sent(sent: SentCode) -> CodeSentOut:
    return CodeSentOut(
        message=f"Code sent to {sent.masked_destination}.",
        expires_at=sent.expires_at,
        resend_after=sent.resend_after,
    )


# ---- invitation and registration -----------------------------------------------------------------


@router.get("/invitations/{token}", response_model=InvitationOut)
async def open_invitation(
    token: str, db: SessionDep, resources: ResourcesDep, client: TemporalDep
) -> InvitationOut:
    """What an invitation link leads to, and whether it can still be used."""
    out, _ = await accounts.invitation_state(db, resources, client, token)
    return out


@router.post("/password-hints", response_model=PasswordHintsOut)
def password_hints(body: PasswordHintsIn) -> PasswordHintsOut:
    """What is wrong with a new password (NIST rules: length, common passwords, not your own name)."""
    problems = accounts.password_hints(body.password, body.username, body.email)
    return PasswordHintsOut(ok=bool(body.password) and not problems, problems=problems)


@router.post(
    "/invitations/{token}/register",
    response_model=RegisterOut,
    status_code=201,
    dependencies=[throttling.REGISTER],
)
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
    account, signer = await accounts.register(db, resources, client, request, token, body)
    accounts.start_session(db, resources, request, response, account, signer, "registration")
    return RegisterOut(username=body.username, next="verify", channels=channels(signer))


# ---- login -----------------------------------------------------------------------------------------


@router.post(
    "/taxpayer/login",
    response_model=MeOut,
    dependencies=[throttling.TAXPAYER_LOGIN],
    responses={202: {"model": LoginChallengeOut, "description": "new browser: a one-time code is needed"}},
)
def login(
    body: TaxpayerLoginIn, request: Request, response: Response, db: SessionDep, resources: ResourcesDep
) -> MeOut | JSONResponse:
    """Log in with user name and password; from a browser Portico doesn't know, a code is needed too."""
    account, signer = accounts.check_password(db, request, body.username, body.password)
    # An unverified account has no trusted contact yet: it logs in to finish verification, nothing more.
    if account.verified_at is None or new_device.is_trusted(db, request, resources, account.id or 0):
        accounts.start_session(db, resources, request, response, account, signer, "password")
        return portal.me(db, account, signer)
    challenge = JSONResponse(
        LoginChallengeOut(
            next="login_code",
            message="This browser is new to us: we need a code sent to you as well.",
            channels=channels(signer),
        ).model_dump(),
        status_code=status.HTTP_202_ACCEPTED,
    )
    new_device.start_attempt(db, request, challenge, resources, account)
    return challenge


@router.post(
    "/taxpayer/login/code", response_model=CodeSentOut, dependencies=[throttling.TAXPAYER_LOGIN_CODE_SEND]
)
async def send_login_code(
    body: CodeRequest, request: Request, db: SessionDep, resources: ResourcesDep, outbox: OutboxDep
) -> CodeSentOut:
    """Send the one-time code a login from a new browser needs."""
    pending = new_device.pending_login(db, request, resources)
    sent = await new_device.send_login_code(db, request, resources, outbox, pending, body.channel)
    return _code_sent(sent)


@router.post("/taxpayer/login/verify", response_model=MeOut, dependencies=[throttling.TAXPAYER_LOGIN_CODE])
def finish_login(
    body: VerifyIn, request: Request, response: Response, db: SessionDep, resources: ResourcesDep
) -> MeOut:
    """Check the login code; with remember_device, this browser needs no code for 30 days."""
    pending = new_device.pending_login(db, request, resources)
    new_device.check_login_code(db, request, resources, pending, body.code)
    new_device.end_attempt(db, request, response, resources)
    if body.remember_device:
        new_device.remember(db, request, response, resources, pending.account.id or 0)
    accounts.start_session(db, resources, request, response, pending.account, pending.signer, "password+code")
    return portal.me(db, pending.account, pending.signer)


@router.post("/taxpayer/logout", response_model=Done)
def logout(request: Request, response: Response, db: SessionDep, resources: ResourcesDep) -> Done:
    """End this session."""
    accounts.end_session(db, resources, request, response)
    return Done(message="Logged out.")


@router.post("/taxpayer/logout-everywhere", response_model=Done)
def logout_everywhere(
    account: CurrentTaxpayer, request: Request, response: Response, db: SessionDep, resources: ResourcesDep
) -> Done:
    """End every session of this account and forget every remembered browser."""
    new_device.forget_everywhere(db, account.id or 0)
    accounts.end_session(db, resources, request, response)
    return Done(message="Logged out on every device.")


@router.get("/taxpayer/me", response_model=MeOut)
def me(account: CurrentTaxpayer, signer: CurrentSigner, db: SessionDep) -> MeOut:
    """The logged-in taxpayer, with what is waiting for them."""
    return portal.me(db, account, signer)


# ---- changing one's own password, email address or phone number ----------------------------------

_CHANGE_REFUSALS: dict[int | str, dict[str, object]] = {
    403: {"description": "wrong current password, or the account is not verified yet"},
    429: {"description": "too many wrong passwords (the login throttle), or a code was asked for just now"},
}


@router.post("/taxpayer/account/password", response_model=Done, responses=_CHANGE_REFUSALS)
async def change_password(
    body: PasswordChangeIn,
    request: Request,
    response: Response,
    account: CurrentTaxpayer,
    signer: CurrentSigner,
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
) -> Done:
    """Change the password (asks for the current one); every other session of the account ends."""
    portal.require_verified(account)
    await account_changes.change_password(
        db, resources, request, response, outbox, account, signer, body.current_password, body.new_password
    )
    return Done(message="Your password is changed. You are logged out everywhere else.")


@router.post("/taxpayer/account/contact/code", response_model=CodeSentOut, responses=_CHANGE_REFUSALS)
async def send_contact_code(
    body: ContactCodeIn,
    request: Request,
    account: CurrentTaxpayer,
    signer: CurrentSigner,
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
) -> CodeSentOut:
    """Start changing the email address or phone number: a one-time code goes to the new one."""
    portal.require_verified(account)
    sent = await account_changes.send_contact_code(
        db, resources, request, outbox, account, signer, body.kind, body.value, body.current_password
    )
    return _code_sent(sent)


@router.post("/taxpayer/account/contact", response_model=Done, responses=_CHANGE_REFUSALS)
async def confirm_contact(
    body: ContactConfirmIn,
    request: Request,
    account: CurrentTaxpayer,
    signer: CurrentSigner,
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
) -> Done:
    """Finish the change with the code sent to the new address; messages go there from now on."""
    portal.require_verified(account)
    masked = await account_changes.confirm_contact(
        db, resources, request, outbox, account, signer, body.kind, body.value, body.code
    )
    return Done(message=f"Your {account_changes.WORDS[body.kind]} is changed to {masked}.")


# ---- verification --------------------------------------------------------------------------------


@router.post("/taxpayer/code", response_model=CodeSentOut, dependencies=[throttling.CODE_SEND])
async def request_code(
    body: CodeRequest, request: Request, signer: CurrentSigner, client: TemporalDep
) -> CodeSentOut:
    """Send a one-time code by email or text."""
    sent = await accounts.request_code(client, request, signer, body.channel)
    return _code_sent(sent)


@router.post("/taxpayer/verify", response_model=Done, dependencies=[throttling.CODE])
async def verify(
    body: VerifyIn,
    request: Request,
    response: Response,
    account: CurrentTaxpayer,
    signer: CurrentSigner,
    db: SessionDep,
    resources: ResourcesDep,
    client: TemporalDep,
) -> Done:
    """Check the one-time code; with remember_device, this browser needs no login code for 30 days."""
    await accounts.verify_code(client, request, resources, signer, body.code)
    if body.remember_device:
        new_device.remember(db, request, response, resources, account.id or 0)
    return Done(message="Your account is verified.")


# ---- documents -----------------------------------------------------------------------------------


@router.get("/taxpayer/documents", response_model=list[DocumentOut])
def list_documents(account: CurrentTaxpayer, signer: CurrentSigner, db: SessionDep) -> list[DocumentOut]:
    """Files from the preparer and the files this taxpayer's return has uploaded."""
    portal.require_verified(account)
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
    portal.require_verified(account)
    return download(resources.store, portal.view_document(db, request, signer, document_id))


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
    portal.require_verified(account)
    return await portal.store_uploads(db, resources, client, request, signer, files)


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
    portal.require_verified(account)
    data = await image.read(portal.SIGNATURE_MAX_BYTES + 1)
    await portal.save_signature(resources, client, request, signer, data)
    return Done(message="Signature saved.")


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
    portal.require_verified(account)
    result = await portal.sign(db, client, request, signer, document_id)
    return SignOut(
        document_id=result.document_id, signed_at=result.signed_at, sha256=result.sha256, message="Signed!"
    )


# ---- chat ----------------------------------------------------------------------------------------


@router.get("/taxpayer/messages", response_model=list[ChatOut])
def read_chat(account: CurrentTaxpayer, signer: CurrentSigner, db: SessionDep) -> list[ChatOut]:
    """The chat with the preparer, oldest first."""
    portal.require_verified(account)
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
    portal.require_verified(account)
    return await portal.post_chat(db, client, request, signer, body.body)
