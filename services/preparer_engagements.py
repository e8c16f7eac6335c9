"""What a preparer does to an engagement, shared by the JSON API (`api/routes/preparer.py`) and the
workspace pages (`web/preparer/`): each rule is written once here.

Firm isolation starts at `engagement_of`: every engagement, document, message and audit entry a preparer
reaches is found through an engagement of their own firm. Whatever changes the pipeline (invite,
documents, cancel, unlock) is a workflow update, exactly as the API always did; the rest (chat,
downloads, views) is recorded in the audit log here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload

from activities.types import DocumentSpec
from core import audit, notifications
from core.context import Resources
from core.crypto import sha256_hex
from core.identity import (
    InvalidContact,
    contact_digest,
    mask_email,
    mask_phone,
    normalise_email,
    normalise_phone,
)
from core.models import (
    AccountLink,
    Document,
    Engagement,
    EngagementStatus,
    Preparer,
    Signer,
    TaxpayerAccount,
    utcnow,
)
from esign import pdfsign, places
from esign.boxes import SignatureBox, page_boxes, parse_signature_boxes
from esign.signature_page import append_signature_page as signature_page_of
from services import (
    Refusal,
    ServiceError,
    engagements,
    parsing,
    placement_templates,
    upload_checks,
    workflow_calls,
)
from services.context import PreparerContext
from services.documents import add_chat, documents_of, owned_document, safe_filename
from services.engagements import add_search_terms, create_engagement
from services.schemas import (
    ChatOut,
    EngagementCreate,
    EngagementOut,
    InviteOut,
    SignerOut,
    StatusOut,
)
from workflows.engagement import EngagementWorkflow
from workflows.types import Cancel, ChangeContact, InviteResult, SendDocuments, SendInvite, Unlock

WHO_SIGNS = {"taxpayer": ["taxpayer"], "spouse": ["spouse"], "both": ["taxpayer", "spouse"], "none": []}
# Documents that name both spouses on a joint return (Form 8879, the 1040, "the return"), by file name;
# web/static/preparer.js checks the same pattern before the form is sent.
NAMES_BOTH_SPOUSES = re.compile(r"8879|1040|return", re.IGNORECASE)
LINK_SENT = "The link has successfully been sent!"
TRANSFER_COMPLETED = "Transfer Completed - Documents are now on Customer Portal"


def engagement_of(db: Session, preparer: Preparer, engagement_id: int) -> Engagement:
    """The engagement, only if it belongs to the preparer's firm; 404 otherwise (no hint it exists)."""
    engagement = db.exec(
        select(Engagement).where(Engagement.id == engagement_id, Engagement.firm_id == preparer.firm_id)
    ).first()
    if engagement is None:
        raise ServiceError(Refusal.NOT_FOUND, "No such engagement.")
    return engagement


# ---- create ----------------------------------------------------------------------------------------------


async def create(
    ctx: PreparerContext,
    body: EngagementCreate,
    *,
    detail: dict[str, str] | None = None,
    owner: Preparer | None = None,
) -> Engagement:
    """Creates the engagement (for `owner`, a preparer of the same firm, or the one acting)."""
    engagement = await create_engagement(ctx.db, ctx.client, ctx.resources, owner or ctx.preparer, body)
    audit.record(
        ctx.db,
        action="engagement.create",
        actor=ctx.actor,
        firm_id=ctx.firm_id,
        engagement_id=engagement.id,
        detail=detail,
    )
    ctx.db.commit()
    return engagement


# ---- invite ----------------------------------------------------------------------------------------------


async def invite(
    ctx: PreparerContext,
    engagement: Engagement,
    *,
    role: str,
    channel: str,
    destination: str | None = None,
) -> InviteOut:
    """Sends (or re-sends, or re-issues after expiry) the portal link; the workflow decides."""
    digest = None
    if destination:
        try:
            digest = contact_digest(ctx.resources.cipher, channel, destination)
        except InvalidContact as exc:
            raise ServiceError(Refusal.INVALID, str(exc)) from exc
    result: InviteResult = await workflow_calls.update(
        ctx.client,
        engagement.id or 0,
        EngagementWorkflow.send_invite,
        SendInvite(role=role, channel=channel, actor=ctx.actor, destination_digest=digest),
    )
    message = LINK_SENT
    if result.scheduled_for:
        message = "It is night where the client lives: the text goes out at 8:00 their time."
    return InviteOut(
        message=message, masked_destination=result.masked_destination, scheduled_for=result.scheduled_for
    )


async def change_contact(
    ctx: PreparerContext, engagement: Engagement, *, role: str, channel: str, value: str
) -> str:
    """Corrects the return's email or phone for `role` before the link goes out; answers the new
    contact, normalised. The workflow decides (it refuses once the signer has an account) and keeps the
    new digest for invitations and the identity match; the return's row follows, and the change is in
    the audit log (the workflow records it)."""
    signer = _signer_of(ctx.db, engagement, role)
    try:
        if channel == "email":
            new = normalise_email(value)
            masked = mask_email(new)
        elif channel == "sms":
            new = normalise_phone(value)
            masked = mask_phone(new)
        else:
            raise ServiceError(Refusal.INVALID, "Choose phone or email.", "channel")
    except InvalidContact:
        what = "an email address, like name@example.com" if channel == "email" else "a US phone number"
        raise ServiceError(Refusal.INVALID, f"Enter {what}.", "destination") from None
    if new == (signer.email if channel == "email" else signer.phone):
        return new  # nothing to correct
    await workflow_calls.update(
        ctx.client,
        engagement.id or 0,
        EngagementWorkflow.change_contact,
        ChangeContact(
            role=role,
            channel=channel,
            digest=contact_digest(ctx.resources.cipher, channel, new),
            masked=masked,
            actor=ctx.actor,
        ),
    )
    if channel == "email":
        signer.email = new
    else:
        signer.phone = new
    ctx.db.add(signer)
    add_search_terms(ctx.db, signer)
    ctx.db.commit()
    return new


# ---- documents -------------------------------------------------------------------------------------------


@dataclass
class OutgoingFile:
    upload: StarletteUpload
    who: str  # a key of WHO_SIGNS
    boxes: str = ""  # JSON places (esign.boxes), optional: Portico finds them when none are given
    signature_page: bool = False  # the preparer asked for a signature page to be appended


async def send_documents(
    ctx: PreparerContext,
    engagement: Engagement,
    files: list[OutgoingFile],
    *,
    message: str = "",
    replaces: int | None = None,
) -> list[int]:
    """Checks and stores every PDF, then asks the workflow to publish them; nothing is left behind when
    any file or the workflow refuses. `message`: the firm's words to the client on this delivery, shown
    to them once (not pipeline state: written here, once the workflow accepted the documents).
    `replaces`: the one file is a corrected copy of that document (after a decline, say)."""
    if not files:
        raise ServiceError(Refusal.INVALID, "Choose at least one PDF.", "files")
    if len(message.strip()) > notifications.MAX_FIRM_MESSAGE:
        raise ServiceError(
            Refusal.INVALID, "Keep the message to your client under 2,000 characters.", "message"
        )
    resources = ctx.resources
    specs: list[DocumentSpec] = []
    try:
        for item in files:
            specs.append(await _store_pdf(resources, item, engagement.firm_id))
    except BaseException:
        _forget(resources, specs)
        raise
    try:
        ids: list[int] = await workflow_calls.update(
            ctx.client,
            engagement.id or 0,
            EngagementWorkflow.send_documents,
            SendDocuments(documents=specs, actor=ctx.actor, replaces=replaces),
            update_id=_send_id(specs, replaces),
        )
    except ServiceError as exc:
        # Only a refusal is final. After a timeout or an outage the workflow may already have accepted
        # the documents, and deleting their files then would leave documents nobody can sign.
        if exc.kind is Refusal.CONFLICT:
            _forget(resources, specs)
        raise
    if not _published(resources, specs):
        _forget(resources, specs)  # a repeat of an earlier send: the workflow answered with that one's
    if message.strip():
        notifications.firm_message(ctx.db, engagement.id or 0, ids, message)
        ctx.db.commit()
    return ids


def one_signer_joint_documents(files: list[OutgoingFile], joint: bool) -> list[str]:
    """On a joint return, the documents that name both spouses but would be signed by only one of them:
    the spouse of a joint 8879 left out is easy to miss, so the pages ask before sending these."""
    if not joint:
        return []
    return [
        safe_filename(item.upload.filename or "")
        for item in files
        if item.who in ("taxpayer", "spouse") and NAMES_BOTH_SPOUSES.search(item.upload.filename or "")
    ]


def _send_id(specs: list[DocumentSpec], replaces: int | None = None) -> str:
    """The same files with the same signers make the same update id, so a send repeated after an outage
    or a double click (whose first attempt Temporal may still deliver) joins the first instead of
    putting a second copy up for signature."""
    content = [(s.sha256, s.name, sorted(s.required_roles), repr(s.signature_boxes)) for s in specs]
    if replaces is not None:
        content.append(("replaces", str(replaces), [], ""))
    return "documents-" + hashlib.sha256(repr(content).encode()).hexdigest()[:32]


def _published(resources: Resources, specs: list[DocumentSpec]) -> bool:
    refs = [spec.upload_ref for spec in specs]
    with Session(resources.engine) as db:
        return db.exec(select(Document.id).where(col(Document.upload_ref).in_(refs))).first() is not None


def _forget(resources: Resources, specs: list[DocumentSpec]) -> None:
    for spec in specs:
        resources.store.delete(spec.storage_key)


@dataclass(frozen=True)
class CheckedPdf:
    data: bytes  # with the signature page, when one was appended
    pages: int
    problem: str | None
    places: list[SignatureBox]
    form: str = ""


def _checked_for_sending(
    name: str,
    data: bytes,
    limit: int,
    roles: list[str],
    given: list[SignatureBox],
    labels: dict[str, list[str]],
    signature_page: bool,
) -> CheckedPdf:
    """The PDF checked for signing (why it can't be sent: scripts, as for clients) and each signer's places:
    those given, else found on the form; a signer with none gets the appended signature page, when the
    preparer asked for it, else the PDF is refused. CPU-heavy: run through `services.parsing`."""
    pages = pdfsign.check_pdf_for_sending(data, limit, roles=roles, boxes=page_boxes(given))
    problem = upload_checks.pdf_problem(data)
    if problem is not None:
        return CheckedPdf(data, pages, problem, [])
    found = list(given) if given else places.find_places(data, roles, labels)
    places.check_layout(found)
    missing = places.unplaced(data, roles, found)
    form = places.irs_form(data, name)
    if missing and signature_page:
        data, extra = signature_page_of(data, missing, name)
        return CheckedPdf(data, pages + 1, None, [*found, *extra], form)
    if missing:
        raise pdfsign.PdfRejected(
            f"Portico found no signature line for the {' or the '.join(missing)}. "
            "Place their signature on the page, or choose to append a signature page."
        )
    return CheckedPdf(data, pages, None, found, form)


async def _places_for(
    resources: Resources, firm_id: int, data: bytes, roles: list[str]
) -> tuple[list[SignatureBox], dict[str, list[str]]]:
    """The places of the firm's saved template for this form, if one matches, and the firm's own signature
    labels per signer for the finder. A template is used only when it places every signer's signature
    (else the finder finds them all); the form's fingerprint is read in the parsing pool, as the PDF is
    not checked yet (a PDF it can't read gets the send's own refusal, in the send's words)."""
    with Session(resources.engine) as db:
        labels = placement_templates.firm_labels_for(placement_templates.labels_of(db, firm_id), roles)
        if not roles or not placement_templates.has_templates(db, firm_id):
            return [], labels
    try:
        shape = await parsing.in_process("The PDF", placement_templates.form_shape, data)
    except Exception:
        return [], labels
    with Session(resources.engine) as db:
        template = placement_templates.matching_template(db, firm_id, shape)
        places = placement_templates.template_places(template, roles) if template is not None else []
    if {box.role for box in places if box.kind == "signature"} != set(roles):
        return [], labels
    return places, labels


async def _store_pdf(resources: Resources, item: OutgoingFile, firm_id: int) -> DocumentSpec:
    name = safe_filename(item.upload.filename or "document.pdf")
    if item.who not in WHO_SIGNS:
        raise ServiceError(
            Refusal.INVALID,
            f"{name}: who signs must be taxpayer, spouse, both or none.",
        )
    limit = resources.settings.max_upload_bytes
    data = await item.upload.read(limit + 1)
    roles = WHO_SIGNS[item.who]
    try:
        given = parse_signature_boxes(item.boxes)
        labels: dict[str, list[str]] = {}
        if not given:
            given, labels = await _places_for(resources, firm_id, data, roles)
        checked = await parsing.in_process(
            name, _checked_for_sending, name, data, limit, roles, given, labels, item.signature_page
        )
    except pdfsign.PdfRejected as exc:
        raise ServiceError(Refusal.INVALID, f"{name}: {exc.reason}") from exc
    except ValueError as exc:
        raise ServiceError(Refusal.INVALID, f"{name}: {exc}") from exc
    if checked.problem is not None:
        raise ServiceError(Refusal.INVALID, f"{name}: {checked.problem}")
    data = checked.data
    key = resources.store.new_key("sent")
    await run_in_threadpool(resources.store.put, key, data)  # disk I/O with fsync: off the loop
    digest = sha256_hex(data)
    return DocumentSpec(
        upload_ref=hashlib.sha256(f"{key}:{digest}".encode()).hexdigest()[:32],
        storage_key=key,
        name=name,
        sha256=digest,
        size=len(data),
        pages=checked.pages,
        required_roles=roles,
        signature_boxes=checked.places,
        form=checked.form,
    )


def document_for_download(
    ctx: PreparerContext, engagement: Engagement, document_id: int, *, original: bool = False
) -> Document:
    """The document to download; the first download of a sealed, signed copy makes its status
    "Downloaded by the firm"."""
    doc = owned_document(ctx.db, engagement.id or 0, document_id)
    if not original and doc.sealed_at is not None and doc.downloaded_at is None:
        ctx.db.execute(
            update(Document)
            .where(col(Document.id) == doc.id, col(Document.downloaded_at).is_(None))
            .values(downloaded_at=utcnow())
        )
    audit.record(
        ctx.db,
        action="document.download",
        actor=ctx.actor,
        firm_id=ctx.firm_id,
        engagement_id=engagement.id,
        detail={"document": doc.id},
    )
    ctx.db.commit()
    return doc


# ---- cancel, unlock --------------------------------------------------------------------------------------


async def cancel(ctx: PreparerContext, engagement: Engagement, *, reason: str) -> None:
    await workflow_calls.update(
        ctx.client,
        engagement.id or 0,
        EngagementWorkflow.cancel,
        Cancel(actor=ctx.actor, reason=reason.strip()[:500]),
    )


async def unlock(ctx: PreparerContext, engagement: Engagement, *, role: str) -> None:
    await workflow_calls.update(
        ctx.client, engagement.id or 0, EngagementWorkflow.unlock, Unlock(role=role, actor=ctx.actor)
    )


async def change_time_zone(
    ctx: PreparerContext, engagement: Engagement, *, role: str, time_zone: str
) -> bool:
    """The signer lives elsewhere than the guess: move their reminders' quiet hours and the portal's times."""
    signer = _signer_of(ctx.db, engagement, role)
    return await engagements.change_time_zone(
        ctx.db, ctx.client, engagement=engagement, signer=signer, time_zone=time_zone, actor=ctx.actor
    )


# ---- chat ------------------------------------------------------------------------------------------------


def post_chat(ctx: PreparerContext, engagement: Engagement, body: str) -> ChatOut:
    name = ctx.preparer.name
    sent = add_chat(ctx.db, engagement.id or 0, "preparer", name, body, ctx.actor, ctx.firm_id)
    notifications.preparer_message(ctx.db, engagement.id or 0, name)
    ctx.db.commit()
    return sent


def record_view(ctx: PreparerContext, engagement: Engagement) -> None:
    """Opening an engagement shows personal data: the Safeguards Rule wants access monitored."""
    audit.record(
        ctx.db, action="engagement.viewed", actor=ctx.actor, firm_id=ctx.firm_id, engagement_id=engagement.id
    )
    ctx.db.commit()


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
        link.signer_id: account
        for link, account in db.exec(
            select(AccountLink, TaxpayerAccount)
            .join(TaxpayerAccount, col(TaxpayerAccount.id) == col(AccountLink.account_id))
            .where(col(AccountLink.signer_id).in_(ids))
        )
    }
    return [(s, accounts.get(s.id or 0)) for s in signers]


def _signer_of(db: Session, engagement: Engagement, role: str) -> Signer:
    signer = next((s for s, _ in signers_of(db, engagement) if s.role.value == role), None)
    if signer is None:
        raise ServiceError(Refusal.NOT_FOUND, f"This return has no {role}.")
    return signer


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
        taxpayer_signs_first=engagement.taxpayer_signs_first,
    )
