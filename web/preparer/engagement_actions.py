"""What a preparer does on the engagement pages. Each handler checks the firm, calls the same service as
the JSON API (pipeline changes are workflow updates there), then redirects with a notice or shows the
refusal on the page (`EngagementAction` does the checking and the answering)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Form, Request, Response
from sqlmodel import Session
from starlette.datastructures import UploadFile
from temporalio.client import Client

from core.context import Resources
from core.models import Engagement
from services import Refusal, ServiceError, paper, proofing
from services import preparer_engagements as work
from services.context import PreparerContext
from services.documents import download
from services.preparer_settings import firm_settings
from services.schemas import InviteOut
from web.preparer.engagement_pages import (
    engagement_page,
    new_engagement_values,
    new_page,
    own_engagement,
    validate_new,
)
from web.preparer.rendering import CurrentWorkspace, Workspace, WorkspaceContext, render
from web.security import check_csrf
from web.toolkit import is_htmx, see_other

router = APIRouter(
    prefix="/preparer/engagements", include_in_schema=False, dependencies=[Depends(check_csrf)]
)
MAX_DOCUMENTS = 20
T = TypeVar("T")


@dataclass(frozen=True)
class EngagementAction:
    """What every action on one engagement needs: the request, who is acting (as the page knows them and
    as the services take them), and how to answer: back to the engagement page with a notice, or the
    page again with the refusal shown at an anchor."""

    request: Request
    ws: Workspace
    ctx: PreparerContext

    @property
    def db(self) -> Session:
        return self.ctx.db

    @property
    def resources(self) -> Resources:
        return self.ctx.resources

    @property
    def client(self) -> Client:
        return self.ctx.client

    def own(self, engagement_id: int) -> Engagement:
        """The engagement, when it is the preparer's firm's (404 otherwise)."""
        return own_engagement(self.db, self.ws, engagement_id)

    async def refused(self, engagement: Engagement, error: str, error_at: str, status_code: int) -> Response:
        return await engagement_page(
            self.request,
            self.ws,
            self.db,
            self.resources,
            self.client,
            engagement,
            error=error,
            error_at=error_at,
            status_code=status_code,
        )

    def done(self, engagement: Engagement, then: str) -> Response:
        """`then`: the notice and anchor after the engagement's URL, e.g. `?m=cancelled` or `#chat`."""
        return see_other(f"/preparer/engagements/{engagement.id}{then}")

    async def run(
        self,
        engagement: Engagement,
        step: Callable[[], Awaitable[T]],
        *,
        error_at: str,
        then: str | Callable[[T], str],
    ) -> Response:
        """Does `step`; a refusal (ServiceError) shows on the page at `error_at`, else on to `then`."""
        try:
            result = await step()
        except ServiceError as exc:
            return await self.refused(engagement, str(exc.detail), error_at, exc.status_code)
        return self.done(engagement, then(result) if callable(then) else then)


def engagement_action(request: Request, ws: CurrentWorkspace, ctx: WorkspaceContext) -> EngagementAction:
    return EngagementAction(request, ws, ctx)


ActionDep = Annotated[EngagementAction, Depends(engagement_action)]


@router.post("/new")
async def create_engagement(request: Request, ws: CurrentWorkspace, ctx: WorkspaceContext) -> Response:
    values = new_engagement_values(await request.form())
    body, errors = validate_new(values, firm_settings(ctx.db, ws.preparer.firm_id).time_zone)
    if body is None:
        return new_page(request, ws, values, errors, status_code=422)
    try:
        engagement = await work.create(ctx, body)
    except ServiceError as exc:
        return new_page(request, ws, values, form_error=str(exc.detail), status_code=exc.status_code)
    except Exception:  # Temporal unreachable: create_engagement took its rows back
        return new_page(
            request,
            ws,
            values,
            form_error="Portico is busy; nothing was created. Try again shortly.",
            status_code=503,
        )
    return see_other(f"/preparer/engagements/{engagement.id}?m=created")


@router.post("/{engagement_id}/invite")
async def invite(
    engagement_id: int,
    act: ActionDep,
    role: Annotated[str, Form()] = "taxpayer",
    channel: Annotated[str, Form()] = "",
) -> Response:
    engagement = act.own(engagement_id)
    if role not in ("taxpayer", "spouse") or channel not in ("email", "sms"):
        return await act.refused(engagement, "Choose phone or email.", f"invite-{role}", 422)

    return await act.run(
        engagement,
        lambda: work.invite(act.ctx, engagement, role=role, channel=channel),
        error_at=f"invite-{role}",
        then=sent_notice(role, channel),
    )


def sent_notice(role: str, channel: str) -> Callable[[InviteOut], str]:
    def notice(result: InviteOut) -> str:
        sent = f"link-sent-{role}-{channel}" if result.scheduled_for is None else "link-scheduled"
        return f"?m={sent}#signer-{role}"

    return notice


@router.post("/{engagement_id}/contact")
async def correct_contact_and_invite(
    engagement_id: int,
    act: ActionDep,
    role: Annotated[str, Form()] = "taxpayer",
    channel: Annotated[str, Form()] = "",
    destination: Annotated[str, Form(max_length=254)] = "",
) -> Response:
    """The address on the return was wrong: correct it (audited, and registration matches against it),
    then send the portal link there."""
    engagement = act.own(engagement_id)
    if role not in ("taxpayer", "spouse") or channel not in ("email", "sms"):
        return await act.refused(engagement, "Choose phone or email.", f"invite-{role}", 422)

    async def correct_and_send() -> InviteOut:
        new = await work.change_contact(act.ctx, engagement, role=role, channel=channel, value=destination)
        return await work.invite(act.ctx, engagement, role=role, channel=channel, destination=new)

    return await act.run(
        engagement, correct_and_send, error_at=f"invite-{role}", then=sent_notice(role, channel)
    )


@router.post("/{engagement_id}/time-zone")
async def change_time_zone(
    engagement_id: int,
    act: ActionDep,
    role: Annotated[str, Form()] = "taxpayer",
    time_zone: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    engagement = act.own(engagement_id)

    async def change() -> bool:
        return await work.change_time_zone(act.ctx, engagement, role=role, time_zone=time_zone)

    done = f"?m=zone-{role}#signer-{role}"
    return await act.run(engagement, change, error_at=f"zone-{role}", then=done)


@router.post("/{engagement_id}/documents")
async def send_documents(engagement_id: int, act: ActionDep) -> Response:
    engagement = act.own(engagement_id)
    form = await act.request.form(max_files=act.resources.settings.max_files_per_request)
    files = []
    for index in range(MAX_DOCUMENTS):
        upload = form.get(f"file-{index}")
        if isinstance(upload, UploadFile) and upload.filename:
            files.append(
                work.OutgoingFile(
                    upload,
                    str(form.get(f"who-{index}", "taxpayer")),
                    # The placement editor's places (web/static/placement.js); empty: Portico finds them.
                    boxes=str(form.get(f"boxes-{index}") or "")[:100_000],
                    signature_page=bool(form.get(f"signature_page-{index}")),
                )
            )
    joint = any(signer.role.value == "spouse" for signer, _ in work.signers_of(act.db, engagement))
    one_signer = work.one_signer_joint_documents(files, joint)
    if one_signer and not form.get("one_signer_confirmed"):
        names = ", ".join(one_signer)
        message = (
            f"{names}: a joint return needs both spouses' signatures, but only one would be asked to sign."
            " Choose Both, or tick the confirmation, then choose the files again."
        )
        return await act.refused(engagement, message, "documents-one-signer", 422)
    return await act.run(
        engagement,
        lambda: work.send_documents(act.ctx, engagement, files, message=str(form.get("message") or "")),
        error_at="documents",
        then="?m=transfer-completed#documents",
    )


@router.post("/{engagement_id}/documents/{document_id}/replace")
async def send_corrected_copy(engagement_id: int, document_id: int, act: ActionDep) -> Response:
    """A corrected copy in place of a document not fully signed (one a client declined, say)."""
    engagement = act.own(engagement_id)
    form = await act.request.form(max_files=1)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await act.refused(engagement, "Choose the corrected PDF.", f"fix-{document_id}", 422)
    outgoing = [work.OutgoingFile(upload, str(form.get("who") or "both"))]
    return await act.run(
        engagement,
        lambda: work.send_documents(act.ctx, engagement, outgoing, replaces=document_id),
        error_at=f"fix-{document_id}",
        then="?m=corrected#documents",
    )


@router.post("/{engagement_id}/documents/{document_id}/paper")
async def record_paper_signature(engagement_id: int, document_id: int, act: ActionDep) -> Response:
    """The firm holds a hand-signed copy: these signers signed on paper, as the scan shows."""
    engagement = act.own(engagement_id)
    form = await act.request.form(max_files=1)
    scan = form.get("scan")
    if not isinstance(scan, UploadFile) or not scan.filename:
        return await act.refused(engagement, "Choose the scan of the signed copy.", f"fix-{document_id}", 422)
    roles = [str(role) for role in form.getlist("roles")]
    return await act.run(
        engagement,
        lambda: paper.preparer_attests_paper(act.ctx, engagement, document_id, roles, scan),
        error_at=f"fix-{document_id}",
        then="?m=paper-recorded#documents",
    )


@router.get("/{engagement_id}/documents/{document_id}/download")
def download_document(
    engagement_id: int,
    document_id: int,
    request: Request,
    ws: CurrentWorkspace,
    ctx: WorkspaceContext,
    original: bool = False,
) -> Response:
    engagement = own_engagement(ctx.db, ws, engagement_id)
    doc = work.document_for_download(ctx, engagement, document_id, original=original)
    response = download(ctx.resources.store, doc, original=original)
    if request.query_params.get("save"):
        response.headers["Content-Disposition"] = response.headers["Content-Disposition"].replace(
            "inline", "attachment", 1
        )
    return response


@router.post("/{engagement_id}/messages")
async def send_message(
    engagement_id: int, act: ActionDep, body: Annotated[str, Form(max_length=6000)] = ""
) -> Response:
    engagement = act.own(engagement_id)
    request = act.request
    try:
        work.post_chat(act.ctx, engagement, body)
    except ServiceError as exc:
        if is_htmx(request):
            return render(request, "preparer/_chat_error.html", {"error": exc.detail})
        return await act.refused(engagement, str(exc.detail), "chat", exc.status_code)
    if is_htmx(request):
        response = render(request, "preparer/_chat_error.html", {"error": None})
        response.headers["HX-Trigger"] = "chat-sent"
        return response
    return act.done(engagement, "#chat")


@router.post("/{engagement_id}/cancel")
async def cancel(
    engagement_id: int, act: ActionDep, reason: Annotated[str, Form(max_length=500)] = ""
) -> Response:
    engagement = act.own(engagement_id)
    return await act.run(
        engagement,
        lambda: work.cancel(act.ctx, engagement, reason=reason),
        error_at="cancel",
        then="?m=cancelled",
    )


@router.post("/{engagement_id}/unlock")
async def unlock(engagement_id: int, act: ActionDep, role: Annotated[str, Form()] = "taxpayer") -> Response:
    engagement = act.own(engagement_id)
    return await act.run(
        engagement,
        lambda: work.unlock(act.ctx, engagement, role=role),
        error_at="status",
        then="?m=unlocked",
    )


# ---- identity proofing (services.proofing) ------------------------------------------------------------


@router.post("/{engagement_id}/identity-details")
async def identity_details(
    engagement_id: int,
    act: ActionDep,
    role: Annotated[str, Form()] = "taxpayer",
    date_of_birth: Annotated[str, Form(max_length=10)] = "",
    street: Annotated[str, Form(max_length=120)] = "",
    city: Annotated[str, Form(max_length=80)] = "",
    state: Annotated[str, Form(max_length=2)] = "",
    zip: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """The date of birth and address the identity questions need, encrypted at rest."""
    engagement = act.own(engagement_id)

    async def save() -> None:
        try:
            born = _date_typed(date_of_birth) if date_of_birth.strip() else None
        except ValueError:
            raise ServiceError(
                Refusal.INVALID, "Enter the date of birth as a date.", "date_of_birth"
            ) from None
        details = proofing.checked_details(born, street, city, state, zip)
        proofing.set_details(act.ctx, engagement, role, details)

    return await act.run(
        engagement, save, error_at=f"identity-{role}", then=f"?m=identity-saved#identity-{role}"
    )


@router.post("/{engagement_id}/identity-unlock")
async def identity_unlock(
    engagement_id: int,
    act: ActionDep,
    role: Annotated[str, Form()] = "taxpayer",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """One more set of identity questions for a signer whose sets ran out; the reason is audited."""
    engagement = act.own(engagement_id)

    async def allow() -> None:
        proofing.unlock(act.ctx, engagement, role=role, reason=reason)

    return await act.run(
        engagement, allow, error_at=f"identity-{role}", then=f"?m=identity-unlocked#identity-{role}"
    )


def _date_typed(text: str) -> dt.date:
    """A date as a US preparer types it (03/09/1984, 3/9/1984) or in ISO form (1984-03-09)."""
    text = text.strip()
    if "/" in text:
        return dt.datetime.strptime(text, "%m/%d/%Y").date()
    return dt.date.fromisoformat(text)
