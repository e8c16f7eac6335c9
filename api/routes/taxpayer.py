"""Taxpayer side: invitation, registration, code verification, login, documents, signature, chat.

The rules live in `services` and are shared with the portal pages; these routes only translate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Protocol

from fastapi import APIRouter, BackgroundTasks, File, Form, Query, Request, Response, UploadFile, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.routes import identity, taxpayer_security
from services import (
    account_changes,
    accounts,
    client_hub,
    client_library,
    consent,
    new_device,
    notifications,
    paper,
    password_reset,
    portal,
    returning_clients,
    signature_images,
    throttling,
)
from services.accounts import channels
from services.deps import (
    CurrentSigner,
    CurrentTaxpayer,
    OutboxDep,
    ResourcesDep,
    SessionDep,
    TemporalDep,
    VerifiedTaxpayer,
)
from services.documents import chat_of, documents_of, download
from services.schemas import (
    ChatIn,
    ChatOut,
    CodeRequest,
    CodeSentOut,
    ContactCodeIn,
    ContactConfirmIn,
    DocumentOut,
    Done,
    InvitationOut,
    LinkReturnIn,
    LoginChallengeOut,
    MeOut,
    PasswordChangeIn,
    PasswordHintsIn,
    PasswordHintsOut,
    PasswordResetConfirmIn,
    PasswordResetIn,
    RegisterIn,
    RegisterOut,
    SignOut,
    TaxpayerLoginIn,
    TimeZoneIn,
    VerifyIn,
)
from services.signature_images import SignatureMethod

router = APIRouter(prefix="/api", tags=["taxpayer"])


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
    """What an invitation link leads to, whether it can still be used, and whether the person already has
    an account with this firm (then: log in and `POST /api/invitations/{token}/link`)."""
    out, _ = await returning_clients.invitation_for(db, resources, client, token)
    return out


@router.post(
    "/invitations/{token}/link",
    response_model=Done,
    dependencies=[throttling.REGISTER],
    responses={422: {"description": "the details do not match the return (counted toward the link's lock)"}},
)
async def link_return(token: str, body: LinkReturnIn, ctx: VerifiedTaxpayer) -> Done:
    """Add the invitation's return to your account: your last name and the last four of your SSN, as on
    the return (the same check as registration). Later calls reach it with `?engagement_id=`."""
    engagement = await returning_clients.link_return(
        ctx, token, last_name=body.last_name, ssn_last4=body.ssn_last4
    )
    return Done(message=f"Your {engagement.tax_year} return is added to your account.")


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
    """Log in with `login` (a verified email address or the user name; `username` still works) and the
    password; from a browser Portico doesn't know, a code is needed too."""
    account, signer = accounts.check_password(db, request, body.who, body.password)
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
    body: PasswordChangeIn, request: Request, response: Response, ctx: VerifiedTaxpayer
) -> Done:
    """Change the password (asks for the current one); every other session of the account ends."""
    await account_changes.change_password(
        ctx, request, response, current=body.current_password, new=body.new_password
    )
    return Done(message="Your password is changed. You are logged out everywhere else.")


@router.post("/taxpayer/account/contact/code", response_model=CodeSentOut, responses=_CHANGE_REFUSALS)
async def send_contact_code(body: ContactCodeIn, request: Request, ctx: VerifiedTaxpayer) -> CodeSentOut:
    """Start changing the email address or phone number: a one-time code goes to the new one."""
    sent = await account_changes.send_contact_code(
        ctx, request, kind=body.kind, value=body.value, current_password=body.current_password
    )
    return _code_sent(sent)


@router.post("/taxpayer/account/contact", response_model=Done, responses=_CHANGE_REFUSALS)
async def confirm_contact(body: ContactConfirmIn, request: Request, ctx: VerifiedTaxpayer) -> Done:
    """Finish the change with the code sent to the new address; messages go there from now on."""
    masked = await account_changes.confirm_contact(
        ctx, request, kind=body.kind, value=body.value, code=body.code
    )
    return Done(message=f"Your {account_changes.WORDS[body.kind]} is changed to {masked}.")


@router.put("/taxpayer/account/time-zone", response_model=Done)
async def change_time_zone(body: TimeZoneIn, ctx: VerifiedTaxpayer) -> Done:
    """Where you live: the portal shows times there, and reminders wait for the morning there."""
    await account_changes.change_time_zone(ctx, time_zone=body.time_zone)
    return Done(message=f"Your time zone is {body.time_zone}.")


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
    accounts.rotate_session(db, resources, request, response, account)
    if body.remember_device:
        new_device.remember(db, request, response, resources, account.id or 0)
    return Done(message="Your account is verified.")


# ---- documents -----------------------------------------------------------------------------------


@router.get("/taxpayer/documents", response_model=list[DocumentOut])
def list_documents(ctx: VerifiedTaxpayer) -> list[DocumentOut]:
    """Files from the preparer and the files this taxpayer's return has uploaded."""
    return documents_of(ctx.db, ctx.signer.engagement_id, viewer_role=ctx.signer.role.value)


@router.get("/taxpayer/documents/{document_id}/download")
def download_document(document_id: int, ctx: VerifiedTaxpayer) -> Response:
    """View a document (the signed version once signed)."""
    return download(ctx.resources.store, portal.view_document(ctx, document_id))


@router.post("/taxpayer/uploads", response_model=list[DocumentOut], status_code=201)
async def upload(
    files: Annotated[list[UploadFile], File(description="PDFs or photos")], ctx: VerifiedTaxpayer
) -> list[DocumentOut]:
    """Upload W-2s, 1099s and other documents for the preparer."""
    return await portal.store_uploads(ctx, files)


# ---- signature and signing -----------------------------------------------------------------------


@router.put("/taxpayer/signature", response_model=Done)
async def save_signature(
    ctx: VerifiedTaxpayer,
    image: Annotated[
        UploadFile | None, File(description="drawn: PNG of the drawing; uploaded: PNG or JPEG picture")
    ] = None,
    method: Annotated[
        SignatureMethod, Form(description="how the signature was made: drawn, typed or uploaded")
    ] = SignatureMethod.DRAWN,
    typed_name: Annotated[str, Form(max_length=200, description="typed: the name to write")] = "",
) -> Done:
    """Save the signature that gets stamped onto documents: drawn, typed (written in a handwriting font)
    or an uploaded picture of a handwritten one."""
    data = await image.read(signature_images.UPLOAD_MAX_BYTES + 1) if image is not None else b""
    await portal.save_signature(ctx, data, method=method.value, typed_name=typed_name)
    return Done(message="Signature saved.")


class ConsentOut(BaseModel):
    """The firm's disclosure for signing electronically, and whether this person agreed to it."""

    version: int
    text: str
    text_sha256: str
    agreed_at: datetime | None
    page: str = consent.CONSENT_PAGE


class ConsentIn(BaseModel):
    version: int = Field(description="the version of the text the person read and agrees to")


def _consent_out(ctx: VerifiedTaxpayer) -> ConsentOut:
    disclosure = consent.disclosure_for(ctx.db, consent.firm_of(ctx))
    agreed = consent.current(ctx)
    return ConsentOut(
        version=disclosure.version,
        text=disclosure.text,
        text_sha256=disclosure.sha256,
        agreed_at=agreed.agreed_at if agreed else None,
    )


@router.get("/taxpayer/consent", response_model=ConsentOut)
def get_consent(ctx: VerifiedTaxpayer) -> ConsentOut:
    """The consent to sign electronically (ESIGN Act): its text and whether it was agreed to."""
    return _consent_out(ctx)


@router.post("/taxpayer/consent", response_model=ConsentOut)
def agree_to_consent(body: ConsentIn, ctx: VerifiedTaxpayer) -> ConsentOut:
    """Agree to sign electronically, to the version of the text read. Needed before signing."""
    consent.agree(ctx, version=body.version)
    return _consent_out(ctx)


@router.delete("/taxpayer/consent", response_model=Done)
def withdraw_consent(ctx: VerifiedTaxpayer) -> Done:
    """Withdraw consent to sign electronically: signing is refused until agreed again."""
    consent.withdraw(ctx)
    return Done(message="Consent withdrawn.")


@router.post("/taxpayer/documents/{document_id}/sign", response_model=SignOut)
async def sign(document_id: int, ctx: VerifiedTaxpayer) -> SignOut:
    """Sign a document. Clicking twice signs once. Refused until `POST /taxpayer/consent`."""
    result = await portal.sign(ctx, document_id)
    return SignOut(
        document_id=result.document_id, signed_at=result.signed_at, sha256=result.sha256, message="Signed!"
    )


class DeclineIn(BaseModel):
    reason: str = Field(max_length=2000, description="why, for the preparer (up to 1,000 characters)")


@router.post("/taxpayer/documents/{document_id}/decline", response_model=Done)
async def decline(document_id: int, body: DeclineIn, ctx: VerifiedTaxpayer) -> Done:
    """Decline to sign a document, with a reason: the preparer is told at once and sends a corrected
    copy or takes the signature on paper. Declining twice declines once."""
    await paper.decline(ctx, document_id, body.reason)
    return Done(message="Declined. Your preparer has been told and will be in touch.")


@router.post("/taxpayer/documents/{document_id}/paper", response_model=Done)
async def signed_on_paper(
    document_id: int,
    ctx: VerifiedTaxpayer,
    scan: Annotated[UploadFile, File(description="the hand-signed document: a PDF or a photo")],
) -> Done:
    """Sign on paper: upload the scan of the document signed by hand. It counts as your signature, and
    the record says it was made on paper."""
    await paper.client_signed_on_paper(ctx, document_id, scan)
    return Done(message="Thank you: your signature on paper is recorded.")


# ---- chat ----------------------------------------------------------------------------------------


@router.get("/taxpayer/messages", response_model=list[ChatOut])
def read_chat(ctx: VerifiedTaxpayer) -> list[ChatOut]:
    """The chat with the preparer, oldest first."""
    return chat_of(ctx.db, ctx.signer.engagement_id)


@router.post("/taxpayer/messages", response_model=ChatOut, status_code=201)
async def post_chat(body: ChatIn, ctx: VerifiedTaxpayer) -> ChatOut:
    """Write to the preparer."""
    return await portal.post_chat(ctx, body.body)


# ---- a forgotten password ------------------------------------------------------------------------


@router.post("/taxpayer/password-reset", response_model=Done, dependencies=[password_reset.REQUEST_THROTTLE])
async def request_password_reset(
    body: PasswordResetIn,
    request: Request,
    response: Response,
    background: BackgroundTasks,
    resources: ResourcesDep,
    outbox: OutboxDep,
) -> Done:
    """Ask for a code to reset a forgotten password; the same answer whether or not an account uses it."""
    send = password_reset.start(request, response, resources, outbox, login=body.login, channel=body.channel)
    background.add_task(send)  # after the answer, so a known and an unknown login answer alike
    return Done(message=password_reset.neutral_answer(body.channel))


@router.post(
    "/taxpayer/password-reset/confirm",
    response_model=Done,
    dependencies=[password_reset.CONFIRM_THROTTLE],
    responses={422: {"description": "wrong or expired code, or a new password the rules refuse"}},
)
async def confirm_password_reset(
    body: PasswordResetConfirmIn,
    request: Request,
    response: Response,
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
) -> Done:
    """The code (from the browser that asked) and a new password: every session of the account ends."""
    await password_reset.confirm(
        db, request, response, resources, outbox, code=body.code, new_password=body.new_password
    )
    return Done(message=password_reset.DONE)


# ---- notifications (the client hub's bell) ---------------------------------------------------------------


@router.get("/taxpayer/notifications", response_model=notifications.NotificationsOut)
def list_notifications(ctx: VerifiedTaxpayer) -> notifications.NotificationsOut:
    """The account's newest notifications, across every return, with the unread count."""
    return notifications.listing(ctx)


@router.post("/taxpayer/notifications/{notification_id}/read", response_model=notifications.NotificationOut)
def read_notification(notification_id: int, ctx: VerifiedTaxpayer) -> notifications.NotificationOut:
    """Mark one notification read (another account's: 404)."""
    return notifications.mark_read(ctx, notification_id=notification_id)


@router.post("/taxpayer/notifications/read-all", response_model=Done)
def read_all_notifications(ctx: VerifiedTaxpayer) -> Done:
    """Mark every notification read, except the firm's messages, which wait for their OK."""
    count = notifications.mark_all_read(ctx)
    return Done(message=f"{count} marked as read.")


# ---- the client hub: tasks across every return, and every return's documents ---------------------


@router.get("/taxpayer/hub", response_model=client_hub.HubOut)
def hub(ctx: VerifiedTaxpayer) -> client_hub.HubOut:
    """Pending and completed tasks, recent activity and the firm's contact, across every return."""
    return client_hub.hub(ctx.db, ctx.account, ctx.signer.engagement_id, settings=ctx.resources.settings)


@router.get("/taxpayer/library", response_model=client_library.LibraryPage)
def library(
    ctx: VerifiedTaxpayer,
    q: Annotated[str, Query(max_length=100)] = "",
    year: Annotated[int | None, Query(ge=1900, le=2999)] = None,
    kind: Annotated[str, Query(description="return, to_sign, signed or upload")] = "",
    status: Annotated[str, Query(description="awaiting, complete or none")] = "",
    sort: Annotated[str, Query(description="date or name")] = "date",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=client_library.MAX_PER_PAGE)] = client_library.PER_PAGE,
) -> client_library.LibraryPage:
    """Every document of every return, grouped by year and kind; search, filter, sort and page."""
    return client_library.library(
        ctx.db, ctx.account, q=q, year=year, kind=kind, status=status, sort=sort, page=page, per_page=per_page
    )


# Security settings (sign-in emails, sessions, remembered browsers) have their own module.
router.include_router(taxpayer_security.router)
router.include_router(identity.router)
