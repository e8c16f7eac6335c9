"""Activities of the engagement workflow: every database write and outside effect it needs.

Each one is idempotent: a retried activity finds its earlier effect (by unique key) and returns it.
They are synchronous and run on the worker's thread pool, so SQL and pyHanko never block the loop.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from pyhanko.sign import signers
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select, update
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import signing
from activities.types import (
    AccountToLink,
    CreateAccount,
    DeclineRecord,
    MarkVerified,
    MessageRequest,
    MessageResult,
    PaperSignature,
    PublishDocuments,
    SealDocuments,
    SealResult,
    SignRequest,
    SignResult,
    StoreSignatureImage,
    Transition,
)
from core import audit, notifications, projection_version
from core.account_emails import emails_of
from core.client_accounts import account_of_signer, link_signer
from core.context import Resources
from core.crypto import sha256_hex
from core.enums import Channel, Stage
from core.models import (
    Direction,
    Document,
    Engagement,
    EngagementStatus,
    Firm,
    Preparer,
    Role,
    Signature,
    Signer,
    TaxpayerAccount,
)
from core.tokens import InvitePayload, make_invite_token
from esign import pdfsign
from esign.boxes import boxes_json
from messaging.delivery import MessageBackend, OutgoingMessage
from messaging.outbox import Outbox
from messaging.wording import MessageContext, Wording, render, saved_wording


def code_digest(resources: Resources, engagement_id: int, role: str, code: str) -> str:
    """The keyed digest the workflow compares; the API computes the same from what the person typed."""
    return resources.cipher.digest(f"otp:{engagement_id}:{role}", code.strip())


class EngagementActivities:
    def __init__(
        self, resources: Resources, pdf_signer: signers.SimpleSigner, backends: dict[str, MessageBackend]
    ) -> None:
        self.r = resources
        self.pdf_signer = pdf_signer
        self.outbox = Outbox(resources, backends)

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.record_transition,
            self.send_message,
            self.create_account,
            self.link_account,
            self.mark_verified,
            self.publish_documents,
            self.store_signature_image,
            self.sign_document,
            self.record_decline,
            self.record_paper_signature,
            self.seal_documents,
        ]

    # ---- projection and audit ----------------------------------------------------------------

    @activity.defn(name="record_transition")
    def record_transition(self, t: Transition) -> None:
        with Session(self.r.engine) as session:
            if session.get(EngagementStatus, t.engagement_id) is None:
                session.add(self._new_status(session, t.engagement_id))
                try:
                    session.flush()  # the insert first: the bump's statement would flush it outside this try
                    projection_version.bump(session, t.firm_id)
                    session.commit()
                except IntegrityError:  # another transition created it first
                    session.rollback()
            # Conditional on the version, in SQL: two transitions racing can never put an older one last.
            session.execute(
                update(EngagementStatus)
                .where(col(EngagementStatus.engagement_id) == t.engagement_id)
                .where(col(EngagementStatus.version) < t.version)
                .values(
                    stage=t.stage,
                    waiting_on=t.waiting_on,
                    waiting_since=t.waiting_since,
                    reminders_sent=t.reminders_sent,
                    needs_attention=t.needs_attention,
                    last_activity_at=t.last_activity_at,
                    version=t.version,
                    detail=t.projection().to_json(),
                )
            )
            projection_version.bump(session, t.firm_id)
            audit.record(
                session,
                action=t.event.action,
                actor=t.event.actor,
                firm_id=t.firm_id,
                engagement_id=t.engagement_id,
                detail=dict(t.event.detail),
                event_key=f"{t.workflow_id}:{t.version}",
                at=t.event.at,
            )
            if t.stage == Stage.COMPLETED:  # the client hears of it (once, whatever retries)
                engagement = _get(session, Engagement, t.engagement_id)
                notifications.return_completed(session, t.engagement_id, engagement.tax_year)
            session.commit()

    def _new_status(self, session: Session, engagement_id: int) -> EngagementStatus:
        engagement = _get(session, Engagement, engagement_id)
        names = {
            s.role: s.full_name
            for s in session.exec(select(Signer).where(Signer.engagement_id == engagement_id))
        }
        return EngagementStatus(
            engagement_id=engagement_id,
            firm_id=engagement.firm_id,
            preparer_id=engagement.preparer_id,
            tax_year=engagement.tax_year,
            taxpayer_name=names.get(Role.TAXPAYER, ""),
            spouse_name=names.get(Role.SPOUSE),
            stage=Stage.CREATED,
        )

    # ---- messages ------------------------------------------------------------------------------

    @activity.defn(name="send_message")
    def send_message(self, req: MessageRequest) -> MessageResult:
        sent = self.outbox.send(
            req.idempotency_key, req.engagement_id, req.purpose, lambda session: self._compose(session, req)
        )
        return MessageResult(sent.status, sent.secret_digest)

    def _compose(self, session: Session, req: MessageRequest) -> tuple[OutgoingMessage, str | None]:
        engagement = _get(session, Engagement, req.engagement_id)
        firm = _get(session, Firm, engagement.firm_id)
        public = self.r.settings.public_url.rstrip("/")
        wording: Wording | None = None  # the firm's own, for client messages it reworded
        if req.recipient == "preparer":
            preparer = _preparer_to_tell(session, engagement)
            to, name = preparer.email, preparer.name
            label = self._label(session, engagement)
            ctx = MessageContext(
                firm.name,
                name,
                req.channel,
                link=f"{public}/engagements/{engagement.id}",
                engagement_label=label,
            )
        else:
            signer = _signer(session, req.engagement_id, req.recipient)
            contact = signer.email if req.channel == Channel.EMAIL else signer.phone
            if not contact:
                raise ApplicationError(f"no {req.channel} contact for {req.recipient}", non_retryable=True)
            to = contact
            link = f"{public}/portal"
            if req.purpose in ("invite", "invite_reminder"):
                token = make_invite_token(
                    self.r.cipher.derive_key("invite-token"),
                    InvitePayload(req.engagement_id, req.recipient, req.invite_seq),
                )
                link = f"{public}/invite/{token}"
            ctx = MessageContext(
                firm.name,
                signer.first_name,
                req.channel,
                link=link,
                reminder_number=req.reminder_number,
                code_minutes=int(self.r.settings.code_lifetime.total_seconds() // 60),
            )
            wording = saved_wording(session, engagement.firm_id, req.purpose, req.channel)
        digest = None
        if req.purpose == "code":
            code = f"{secrets.randbelow(1_000_000):06d}"
            ctx = MessageContext(**{**ctx.__dict__, "code": code})
            digest = code_digest(self.r, req.engagement_id, req.recipient, code)
        rendered = render(req.purpose, ctx, wording)
        return OutgoingMessage(req.channel, to, rendered.subject, rendered.body), digest  # type: ignore[arg-type]

    def _label(self, session: Session, engagement: Engagement) -> str:
        taxpayer = _signer(session, engagement.id or 0, Role.TAXPAYER)
        return f"{taxpayer.full_name} ({engagement.tax_year})"

    # ---- accounts --------------------------------------------------------------------------------

    @activity.defn(name="create_account")
    def create_account(self, req: CreateAccount) -> int:
        with Session(self.r.engine) as session:
            signer = _signer(session, req.engagement_id, req.role)
            existing = account_of_signer(session, signer.id or 0)
            if existing is not None:  # a retry of this very registration
                return existing.id or 0
            engagement = _get(session, Engagement, req.engagement_id)
            account = TaxpayerAccount(
                signer_id=signer.id or 0,
                firm_id=engagement.firm_id,
                username=req.username,
                password_hash=req.password_hash,
                email=req.email,
                phone=req.phone,
            )
            session.add(account)
            try:
                session.flush()
                link_signer(session, account, signer, via="registration")
                session.commit()
            except IntegrityError as exc:
                raise ApplicationError(
                    "That user name is taken. Choose another.", type="UsernameTaken", non_retryable=True
                ) from exc
            return account.id or 0

    @activity.defn(name="link_account")
    def link_account(self, req: AccountToLink) -> None:
        """The returning client's account reaches this return's signer too (a retry is harmless)."""
        with Session(self.r.engine) as session:
            signer = _signer(session, req.engagement_id, req.role)
            account = _get(session, TaxpayerAccount, req.account_id)
            try:
                link_signer(session, account, signer, via="invitation")
            except ValueError as exc:  # the validator saw no account on this signer: a race lost
                taken = "An account already exists for this invitation."
                raise ApplicationError(taken, type="InvalidRequest", non_retryable=True) from exc
            session.commit()

    @activity.defn(name="mark_verified")
    def mark_verified(self, req: MarkVerified) -> None:
        with Session(self.r.engine) as session:
            account = _get(session, TaxpayerAccount, req.account_id)
            if account.verified_at is None:
                account.verified_at, account.verified_channel = req.at, req.channel
                session.add(account)
                emails_of(session, account)  # its email becomes a verified sign-in address
                session.commit()

    # ---- documents and signatures ------------------------------------------------------------------

    @activity.defn(name="publish_documents")
    def publish_documents(self, req: PublishDocuments) -> list[int]:
        ids = []
        roles_to_sign: set[str] = set()
        with Session(self.r.engine) as session:
            for spec in req.documents:
                roles_to_sign.update(spec.required_roles)
                doc = session.exec(
                    select(Document).where(
                        Document.engagement_id == req.engagement_id, Document.upload_ref == spec.upload_ref
                    )
                ).first()
                if doc is None:
                    doc = Document(
                        engagement_id=req.engagement_id,
                        direction=Direction.TO_CLIENT,
                        upload_ref=spec.upload_ref,
                        name=spec.name,
                        content_type="application/pdf",
                        size=spec.size,
                        pages=spec.pages,
                        storage_key=spec.storage_key,
                        sha256=spec.sha256,
                        current_key=spec.storage_key,
                        current_sha256=spec.sha256,
                        uploaded_by=req.uploaded_by,
                        signature_boxes=boxes_json(spec.signature_boxes),
                        form=spec.form,
                    )
                    session.add(doc)
                    session.flush()
                    for role in spec.required_roles:
                        session.add(Signature(document_id=doc.id or 0, role=Role(role)))
                ids.append(doc.id or 0)
            if req.replaces is not None:  # the corrected copy takes the old one's place
                old = _get(session, Document, req.replaces)
                old.replaced_by = ids[0]
                session.add(old)
            # In the same transaction as the documents: a retry finds both, and writes neither again.
            notifications.documents_published(session, req.engagement_id, ids, roles_to_sign)
            session.commit()
        return ids

    @activity.defn(name="store_signature_image")
    def store_signature_image(self, req: StoreSignatureImage) -> None:
        with Session(self.r.engine) as session:
            signer = _signer(session, req.engagement_id, req.role)
            signer.signature_key, signer.signature_saved_at = req.image_key, req.at
            session.add(signer)
            session.commit()

    @activity.defn(name="sign_document")
    def sign_document(self, req: SignRequest) -> SignResult:
        with Session(self.r.engine) as session:
            doc = _get(session, Document, req.document_id)
            signature = session.exec(
                select(Signature).where(Signature.document_id == req.document_id, Signature.role == req.role)
            ).one()
            if signature.signed_at is not None:  # already done by an earlier attempt
                return SignResult(
                    req.document_id, req.role, signature.signed_at, signature.sha256_after or ""
                )
            signer = _signer(session, req.engagement_id, req.role)
            image = self.r.store.get(signer.signature_key) if signer.signature_key else None
            base_key = doc.current_key
            try:
                signed = pdfsign.sign_pdf(
                    self.r.store.get(base_key),
                    self.pdf_signer,
                    field_name=req.role.capitalize(),
                    signer_name=signer.full_name,
                    visible=signing.visible_signature(image, signer, doc, req.at),
                    timestamper=signing.timestamper(self.r.settings),
                    reserve_certificate_page=True,  # the page the seal fills in; see esign/seal.py
                )
            except ValueError as exc:  # the document itself is the problem (pyHanko's errors too): no retry
                raise ApplicationError(str(exc), type="UnsignableDocument", non_retryable=True) from exc
            signed = signing.with_validation_info(self.r.settings, self.pdf_signer, signed)  # B-LT
            key = self.r.store.new_key("signed")
            self.r.store.put(key, signed)
            digest = sha256_hex(signed)
            if signing.claim_signature(session, signature, base_key, key, digest, req):
                return SignResult(req.document_id, req.role, req.at, digest)
            self.r.store.delete(key)  # lost the race: this version is referenced nowhere
            return signing.signed_meanwhile(session, req)

    @activity.defn(name="record_decline")
    def record_decline(self, req: DeclineRecord) -> None:
        with Session(self.r.engine) as session:
            signature = _signature(session, req.document_id, req.role)
            if signature.declined_at is None:  # a retry finds it written
                signature.declined_at, signature.decline_reason = req.at, req.reason
                signature.ip, signature.user_agent = req.actor.ip, req.actor.user_agent
                session.add(signature)
                session.commit()

    @activity.defn(name="record_paper_signature")
    def record_paper_signature(self, req: PaperSignature) -> None:
        """Each role's signature row says signed on paper, when, the scan, and who vouched for it. The
        document's PDF stays as it was: the scan is the signed copy."""
        with Session(self.r.engine) as session:
            for role in req.roles:
                signature = _signature(session, req.document_id, role)
                if signature.signed_at is not None:  # a retry, or signed meanwhile: keep what is there
                    continue
                signature.signed_at, signature.method = req.at, "paper"
                signature.attested_by, signature.scan_document_id = req.actor.label, req.scan_document_id
                signature.ip, signature.user_agent = req.actor.ip, req.actor.user_agent
                signature.declined_at = signature.decline_reason = None
                session.add(signature)
            session.commit()

    # ---- sealing -----------------------------------------------------------------------------------

    @activity.defn(name="seal_documents")
    def seal_documents(self, req: SealDocuments) -> SealResult:
        """Certificate of completion into every signed document, then a signature that locks it."""
        try:
            return signing.seal_engagement(self.r, self.pdf_signer, req, activity.heartbeat)
        except ValueError as exc:
            raise ApplicationError(str(exc), type="UnsealableDocument", non_retryable=True) from exc


T = TypeVar("T")


def _get(session: Session, model: type[T], ident: int) -> T:
    row = session.get(model, ident)
    if row is None:
        raise ApplicationError(f"{model.__name__} {ident} does not exist", non_retryable=True)
    return row


def _preparer_to_tell(session: Session, engagement: Engagement) -> Preparer:
    """Who hears about an engagement: its preparer while active, else the firm's first active
    administrator. Someone who has left the firm gets no mail about its clients."""
    assigned = _get(session, Preparer, engagement.preparer_id)
    if assigned.active:
        return assigned
    admin = session.exec(
        select(Preparer)
        .where(Preparer.firm_id == engagement.firm_id, col(Preparer.active), col(Preparer.is_admin))
        .order_by(col(Preparer.id))
    ).first()
    if admin is None:  # a firm always keeps an active administrator; refuse rather than mail a leaver
        raise ApplicationError("the firm has no active administrator to tell", non_retryable=True)
    return admin


def _signature(session: Session, document_id: int, role: str) -> Signature:
    signature = session.exec(
        select(Signature).where(Signature.document_id == document_id, Signature.role == role)
    ).first()
    if signature is None:
        raise ApplicationError(f"document {document_id} needs no {role} signature", non_retryable=True)
    return signature


def _signer(session: Session, engagement_id: int, role: str) -> Signer:
    signer = session.exec(
        select(Signer).where(Signer.engagement_id == engagement_id, Signer.role == role)
    ).first()
    if signer is None:
        raise ApplicationError(f"engagement {engagement_id} has no {role}", non_retryable=True)
    return signer


__all__ = ["EngagementActivities", "code_digest"]
