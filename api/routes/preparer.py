"""Preparer side: log in (password, then the authenticator code), one's own password and login email, the
dashboard, engagements, invite, documents, chat, cancel; the firm's settings and preparers are in
`api.routes.firm`. The rules live in `services.preparer_*` and `services.dashboard`, shared with the workspace
pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import (
    APIRouter,
    File,
    Form,
    HTTPException,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from pydantic import BaseModel, Field

from api.routes import firm, retention
from services import clients, paper, rollover
from services import preparer_account as account
from services import preparer_auth as auth
from services import preparer_engagements as work
from services.dashboard import DashboardQuery, load_dashboard
from services.deps import (
    CurrentPreparer,
    OutboxDep,
    PreparerCtx,
    PreparerInSetup,
    ResourcesDep,
    SessionDep,
)
from services.documents import chat_of, download
from services.schemas import (
    CancelIn,
    ChatIn,
    ChatOut,
    CodeSentOut,
    Done,
    EngagementCreate,
    EngagementOut,
    EngagementPage,
    EngagementSummary,
    InviteIn,
    InviteOut,
    Login,
    MfaEnrolOut,
    PreparerEmailCodeIn,
    PreparerEmailConfirmIn,
    PreparerEmailOut,
    PreparerLoginOut,
    PreparerPasswordChangeIn,
    RecoveryCodesOut,
    RoleIn,
    RoleName,
    SecondFactorIn,
    TimeZoneIn,
)
from services.throttling import PREPARER_LOGIN as throttle_login

router = APIRouter(prefix="/api", tags=["preparer"])


# ---- login ---------------------------------------------------------------------------------------------


@router.post("/preparer/login", response_model=PreparerLoginOut, dependencies=[throttle_login])
def login(
    body: Login, request: Request, response: Response, db: SessionDep, resources: ResourcesDep
) -> PreparerLoginOut:
    """Email and password; then the authenticator code (in `code`, or at /preparer/login/code)."""
    preparer = auth.check_password(db, request, body.email, body.password)
    if not auth.is_enrolled(db, preparer.id or 0):
        auth.start_setup_session(db, request, response, resources, preparer)
        return PreparerLoginOut(
            message=f"Welcome, {preparer.name}. Set up two-step login first: until then this session "
            "reaches only /api/preparer/mfa/enrol, /api/preparer/mfa/confirm and logout.",
            next="enrol",
        )
    if body.code:
        method = auth.check_second_factor(db, request, resources, preparer, body.code)
        auth.start_session(db, request, response, resources, preparer, method)
        return PreparerLoginOut(message=f"Welcome, {preparer.name}.", next="done")
    auth.start_pending(db, request, response, resources, preparer, auth.CODE_KIND)
    return PreparerLoginOut(message="Enter the code from your authenticator app.", next="code")


@router.post("/preparer/login/code", response_model=PreparerLoginOut)
def login_code(
    body: SecondFactorIn, request: Request, response: Response, db: SessionDep, resources: ResourcesDep
) -> PreparerLoginOut:
    """The second step: the authenticator code (or a recovery code) for the pending login."""
    preparer = auth.pending(db, request, resources, auth.CODE_KIND)
    method = auth.check_second_factor(db, request, resources, preparer, body.code)
    auth.end_pending(db, request, response, resources)
    auth.start_session(db, request, response, resources, preparer, method)
    return PreparerLoginOut(message=f"Welcome, {preparer.name}.", next="done")


@router.post("/preparer/logout", response_model=Done)
def logout(request: Request, response: Response, db: SessionDep, resources: ResourcesDep) -> Done:
    """End this session."""
    auth.end_session(db, request, response, resources)
    return Done(message="Logged out.")


@router.post("/preparer/mfa/enrol", response_model=MfaEnrolOut)
def mfa_enrol(preparer: PreparerInSetup, db: SessionDep, resources: ResourcesDep) -> MfaEnrolOut:
    """Start setting up two-step login: the secret for an authenticator app (also as an otpauth URI)."""
    secret = auth.enrolment_secret(db, resources, preparer)
    return MfaEnrolOut(secret=secret, otpauth_uri=auth.provisioning_uri(db, secret, preparer))


@router.post("/preparer/mfa/confirm", response_model=RecoveryCodesOut)
def mfa_confirm(
    body: SecondFactorIn,
    request: Request,
    response: Response,
    preparer: PreparerInSetup,
    db: SessionDep,
    resources: ResourcesDep,
) -> RecoveryCodesOut:
    """Finish the set-up with the app's first code; answers the recovery codes, once, and replaces the
    set-up session with a full one (a new session id)."""
    codes = auth.confirm_enrolment(db, request, resources, preparer, body.code)
    auth.start_session(db, request, response, resources, preparer, "totp")
    return RecoveryCodesOut(
        message="Two-step login is on. Keep these recovery codes somewhere safe: each works once.",
        recovery_codes=codes,
    )


# ---- one's own account: password and login email --------------------------------------------------------

# 422 (a wrong or used authenticator code, a new password's rules, a wrong email code) keeps FastAPI's own
# entry: its schema takes our {"detail": "..."} as well (see `portico.app`).
_CHANGE_REFUSALS: dict[int | str, dict[str, object]] = {
    403: {"description": "wrong current password"},
    409: {"description": "the new email address belongs to another preparer"},
    423: {"description": "too many wrong authenticator codes: the second factor is locked for a while"},
    429: {"description": "too many wrong answers (the login throttle), or a code was asked for just now"},
}


@router.post("/preparer/account/password", response_model=Done, responses=_CHANGE_REFUSALS)
async def change_password(
    body: PreparerPasswordChangeIn,
    request: Request,
    response: Response,
    preparer: CurrentPreparer,
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
) -> Done:
    """Change your password (asks for the current one and an authenticator code); every other session
    of yours ends and this one gets a new id."""
    await account.change_password(
        db,
        resources,
        request,
        response,
        outbox,
        preparer,
        body.current_password,
        body.code,
        body.new_password,
    )
    return Done(message="Your password is changed. You are logged out everywhere else.")


@router.post("/preparer/account/email/code", response_model=CodeSentOut, responses=_CHANGE_REFUSALS)
async def send_email_code(
    body: PreparerEmailCodeIn,
    request: Request,
    preparer: CurrentPreparer,
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
) -> CodeSentOut:
    """Start changing your login email (asks for the current password and an authenticator code): a
    one-time code goes to the new address."""
    sent = await account.send_email_code(
        db, resources, request, outbox, preparer, body.new_email, body.current_password, body.code
    )
    return CodeSentOut(
        message=f"Code sent to {sent.masked_destination}.",
        expires_at=sent.expires_at,
        resend_after=sent.resend_after,
    )


@router.post("/preparer/account/email", response_model=PreparerEmailOut, responses=_CHANGE_REFUSALS)
async def confirm_email(
    body: PreparerEmailConfirmIn,
    request: Request,
    preparer: CurrentPreparer,
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
) -> PreparerEmailOut:
    """Finish the change, in the same session, with the code sent to the new address; you log in with
    it from now on."""
    email = await account.confirm_email(
        db, resources, request, outbox, preparer, body.new_email, body.email_code
    )
    return PreparerEmailOut(message="Your login email is changed.", email=email)


# ---- engagements ---------------------------------------------------------------------------------------


@router.post("/engagements", response_model=EngagementOut, status_code=status.HTTP_201_CREATED)
async def create(body: EngagementCreate, ctx: PreparerCtx) -> EngagementOut:
    """Create an engagement for one tax return and start its workflow."""
    engagement = await work.create(ctx, body)
    return work.engagement_out(ctx.db, engagement)


@router.get("/engagements", response_model=EngagementPage)
def list_engagements(
    preparer: CurrentPreparer,
    db: SessionDep,
    resources: ResourcesDep,
    stage: str | None = None,
    q: Annotated[str | None, Query(max_length=100, description="name, email or phone (prefix)")] = None,
    preparer_id: int | None = None,
    sort: Annotated[
        str, Query(description="id, taxpayer, year, stage, waiting_on, since, reminders, activity")
    ] = "activity",
    order: Annotated[str | None, Query(pattern="^(asc|desc)$")] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
    client: Annotated[int | None, Query(description="a client's key (its page's): that person's")] = None,
) -> EngagementPage:
    """The firm's dashboard: filtered, searched, sorted and paged like the status dashboard page."""
    query = DashboardQuery.parse(
        stage=stage,
        preparer=preparer_id,
        q=q,
        sort=sort,
        order=order,
        page=page,
        per_page=per_page,
        client=client,
    )
    firm = preparer.firm_id
    ids = clients.engagement_ids(db, resources.cipher, firm, query.client) if query.client else None
    result = load_dashboard(db, firm, query, client_ids=ids)
    items = [
        EngagementSummary(
            id=r.status.engagement_id,
            tax_year=r.status.tax_year,
            taxpayer_name=r.status.taxpayer_name,
            spouse_name=r.status.spouse_name,
            status=work.status_out(r.status),
        )
        for r in result.rows
    ]
    return EngagementPage(
        items=items, total=result.total, page=result.query.page, per_page=per_page, counts=result.counts
    )


@router.get("/engagements/{engagement_id}", response_model=EngagementOut)
def read_engagement(engagement_id: int, preparer: CurrentPreparer, db: SessionDep) -> EngagementOut:
    """One engagement: status, signers (contacts masked), documents."""
    return work.engagement_out(db, work.engagement_of(db, preparer, engagement_id))


@router.post("/engagements/{engagement_id}/invite", response_model=InviteOut)
async def invite(engagement_id: int, body: InviteIn, ctx: PreparerCtx) -> InviteOut:
    """Send (or re-send) the portal invitation by email or text."""
    engagement = work.engagement_of(ctx.db, ctx.preparer, engagement_id)
    return await work.invite(
        ctx, engagement, role=body.role, channel=body.channel, destination=body.destination
    )


@router.post("/engagements/{engagement_id}/documents", response_model=EngagementOut)
async def send_documents(
    engagement_id: int,
    ctx: PreparerCtx,
    files: Annotated[list[UploadFile], File(description="PDFs")],
    signers: Annotated[list[str], Form(description="per file: taxpayer, spouse, both or none")],
    signature_boxes: Annotated[
        list[str] | None,
        Form(
            description="per file: JSON [{role, page, x, y, width, height, kind}] in PDF points (kind: "
            "signature, date, initials or name), or empty: Portico finds each signer's place on the form"
        ),
    ] = None,
    signature_pages: Annotated[
        list[bool] | None,
        Form(description="per file: true appends a signature page for signers who have no place on it"),
    ] = None,
    message: Annotated[
        str, Form(description="optional message to the client (up to 2,000 characters), shown once")
    ] = "",
) -> EngagementOut:
    """Send tax return PDFs to the customer portal, each with who must sign it (and where, optionally)."""
    engagement = work.engagement_of(ctx.db, ctx.preparer, engagement_id)
    if len(signers) != len(files):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "Say who signs each file.")
    boxes = signature_boxes or [""] * len(files)
    if len(boxes) != len(files):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "Give signature boxes for each file.")
    pages = signature_pages or [False] * len(files)
    if len(pages) != len(files):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "Say for each file whether to append a page."
        )
    outgoing = [
        work.OutgoingFile(f, who, b, page)
        for f, who, b, page in zip(files, signers, boxes, pages, strict=True)
    ]
    await work.send_documents(ctx, engagement, outgoing, message=message)
    return work.engagement_out(ctx.db, engagement)


@router.post("/engagements/{engagement_id}/documents/{document_id}/replace", response_model=EngagementOut)
async def replace_document(
    engagement_id: int,
    document_id: int,
    ctx: PreparerCtx,
    file: Annotated[UploadFile, File(description="the corrected PDF")],
    signer: Annotated[str, Form(description="who signs it: taxpayer, spouse, both or none")],
    signature_page: Annotated[
        bool, Form(description="true appends a signature page for signers who have no place on it")
    ] = False,
) -> EngagementOut:
    """Send a corrected copy in place of a document not yet fully signed (one declined, say): what was
    signed or declined on the old copy no longer counts, and the signers sign the new one."""
    engagement = work.engagement_of(ctx.db, ctx.preparer, engagement_id)
    outgoing = [work.OutgoingFile(file, signer, "", signature_page)]
    await work.send_documents(ctx, engagement, outgoing, replaces=document_id)
    return work.engagement_out(ctx.db, engagement)


@router.post("/engagements/{engagement_id}/documents/{document_id}/paper", response_model=Done)
async def signed_on_paper(
    engagement_id: int,
    document_id: int,
    ctx: PreparerCtx,
    scan: Annotated[UploadFile, File(description="the hand-signed document: a PDF or a photo")],
    roles: Annotated[list[str], Form(description="whose signatures the scan shows: taxpayer, spouse")],
) -> Done:
    """Mark a document manually signed: the scan shows these signers' signatures on paper, and you
    attest it. The record says which signatures were on paper and who attested them."""
    engagement = work.engagement_of(ctx.db, ctx.preparer, engagement_id)
    await paper.preparer_attests_paper(ctx, engagement, document_id, roles, scan)
    return Done(message="Recorded as signed on paper.")


@router.get("/engagements/{engagement_id}/documents/{document_id}/download")
def download_document(
    engagement_id: int, document_id: int, ctx: PreparerCtx, original: bool = False
) -> Response:
    """Download a document: the latest (signed) version, or the original as sent."""
    engagement = work.engagement_of(ctx.db, ctx.preparer, engagement_id)
    doc = work.document_for_download(ctx, engagement, document_id, original=original)
    return download(ctx.resources.store, doc, original=original)


@router.post("/engagements/{engagement_id}/cancel", response_model=Done)
async def cancel(engagement_id: int, body: CancelIn, ctx: PreparerCtx) -> Done:
    """Cancel the engagement: reminders stop and the client can no longer act."""
    engagement = work.engagement_of(ctx.db, ctx.preparer, engagement_id)
    await work.cancel(ctx, engagement, reason=body.reason)
    return Done(message="The engagement is cancelled.")


@router.post("/engagements/{engagement_id}/unlock", response_model=Done)
async def unlock(engagement_id: int, body: RoleIn, ctx: PreparerCtx) -> Done:
    """Clear a signer's lock after too many identity mismatches or wrong codes."""
    engagement = work.engagement_of(ctx.db, ctx.preparer, engagement_id)
    await work.unlock(ctx, engagement, role=body.role)
    return Done(message=f"The {body.role} can try again.")


@router.put("/engagements/{engagement_id}/signers/{role}/time-zone", response_model=Done)
async def change_time_zone(engagement_id: int, role: RoleName, body: TimeZoneIn, ctx: PreparerCtx) -> Done:
    """Correct a signer's time zone: quiet hours for their reminders and texts follow it."""
    engagement = work.engagement_of(ctx.db, ctx.preparer, engagement_id)
    await work.change_time_zone(ctx, engagement, role=role, time_zone=body.time_zone)
    return Done(message=f"The {role}'s time zone is {body.time_zone}.")


@router.get("/engagements/{engagement_id}/messages", response_model=list[ChatOut])
def read_chat(engagement_id: int, preparer: CurrentPreparer, db: SessionDep) -> list[ChatOut]:
    """The chat with the client, oldest first."""
    return chat_of(db, work.engagement_of(db, preparer, engagement_id).id or 0)


@router.post("/engagements/{engagement_id}/messages", response_model=ChatOut, status_code=201)
def post_chat(engagement_id: int, body: ChatIn, ctx: PreparerCtx) -> ChatOut:
    """Write to the client."""
    engagement = work.engagement_of(ctx.db, ctx.preparer, engagement_id)
    return work.post_chat(ctx, engagement, body.body)


# The firm's settings, message wording and preparers (/api/firm/...): administrators change them.
router.include_router(firm.router)
router.include_router(retention.router)


# ---- client hub: roll over (services/rollover.py) --------------------------------------------------------


class RolloverIn(BaseModel):
    invite: bool = Field(False, description="send each person the link by the channel last used")


class RolloverManyIn(RolloverIn):
    ids: list[int] = Field(min_length=1, max_length=rollover.MAX_BULK, description="completed engagements")


class RolledOverOut(BaseModel):
    source_id: int
    engagement: EngagementOut
    invited: list[str]


class SkippedOut(BaseModel):
    source_id: int
    reason: str


class RolloverManyOut(BaseModel):
    created: list[RolledOverOut]
    skipped: list[SkippedOut]


def _rolled_out(ctx: PreparerCtx, done: rollover.RolledOver) -> RolledOverOut:
    return RolledOverOut(
        source_id=done.source_id,
        engagement=work.engagement_out(ctx.db, done.engagement),
        invited=done.invited,
    )


@router.post(
    "/engagements/rollover",
    response_model=RolloverManyOut,
    status_code=status.HTTP_201_CREATED,
    tags=["clients"],
)
async def roll_over_many(body: RolloverManyIn, ctx: PreparerCtx) -> RolloverManyOut:
    """Roll over several completed engagements: what was created, and what was skipped and why."""
    result = await rollover.roll_over_many(ctx, body.ids, invite=body.invite)
    return RolloverManyOut(
        created=[_rolled_out(ctx, done) for done in result.created],
        skipped=[SkippedOut(source_id=s.source_id, reason=s.reason) for s in result.skipped],
    )


@router.post(
    "/engagements/{engagement_id}/rollover",
    response_model=RolledOverOut,
    status_code=status.HTTP_201_CREATED,
    tags=["clients"],
)
async def roll_over(engagement_id: int, ctx: PreparerCtx, body: RolloverIn | None = None) -> RolledOverOut:
    """Next year's engagement for the same people as a completed one (409 if it exists already)."""
    engagement = work.engagement_of(ctx.db, ctx.preparer, engagement_id)
    done = await rollover.roll_over(ctx, engagement, invite=bool(body and body.invite))
    return _rolled_out(ctx, done)
