"""Retention and disposal: how long a closed engagement is kept, and disposing of it afterwards.

The IRS asks for the e-signature record of Form 8879 to be kept three years; the FTC Safeguards Rule
(16 CFR 314.4(c)(6)) asks for customer information to be disposed of once it is no longer needed. So an
engagement is kept `FirmSettings.retention_years` (at least `MINIMUM_YEARS`) after it closed (completed,
or cancelled), unless a preparer placed a legal hold on it; then `dispose` deletes its documents (every
stored version, the signature images and the certificate) and its personal data (signers, accounts and
their sessions, chat, message destinations and bodies, search terms), and keeps a `Disposal` row and an
audit entry that say it happened.

Every document blob has its own data key, wrapped by the master key and stored with the blob, so deleting
the blob deletes its key: there is no per-engagement key to shred instead. The audit log is kept as it is
(its hash chain must hold, and it is the e-signature record's evidence); it holds no SSN and no document.

`dispose` is idempotent and resumable: it records the start (with the counts of what is about to go),
deletes the blobs (deleting a missing blob is a no-op), then removes the rows and marks the engagement
disposed in one transaction. Cut short anywhere, the next call finishes it; after that it does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from core import audit, audit_chain, projection_version
from core.actor import SYSTEM
from core.enums import Stage
from core.models import (
    AccountLink,
    ChatMessage,
    Disposal,
    Document,
    Engagement,
    EngagementSearchTerm,
    EngagementStatus,
    EsignConsent,
    FirmSettings,
    IdentityCheck,
    IdentityUnlock,
    ImportedRow,
    LoginCode,
    OutboxMessage,
    Signature,
    Signer,
    TaxpayerAccount,
    TrustedDevice,
    WebSession,
)
from core.storage import DocumentStore

MINIMUM_YEARS = 3
"""The IRS's three years for the e-signature record of Form 8879: no firm setting goes below it."""
MAXIMUM_YEARS = 30
DEFAULT_YEARS = 3
CLOSED_STAGES = (Stage.COMPLETED, Stage.CANCELLED)
DISPOSED_ACTION = "engagement.disposed"
HOLD_PLACED_ACTION = "engagement.legal_hold_placed"
HOLD_LIFTED_ACTION = "engagement.legal_hold_lifted"


# ---- when -----------------------------------------------------------------------------------------------


def add_years(when: datetime, years: int) -> datetime:
    """The same day and time `years` later (or earlier); 29 February becomes the 28th in other years."""
    try:
        return when.replace(year=when.year + years)
    except ValueError:
        return when.replace(year=when.year + years, day=28)


def kept_until(closed_at: datetime, years: int) -> datetime:
    """The moment an engagement closed at `closed_at` may be disposed of, kept `years` years."""
    return add_years(closed_at, max(years, MINIMUM_YEARS))


def firm_years(session: Session, firm_id: int) -> int:
    """The firm's retention period, never below the minimum whatever the table says."""
    row = session.get(FirmSettings, firm_id)
    return max(row.retention_years if row is not None else DEFAULT_YEARS, MINIMUM_YEARS)


def closed_at(status: EngagementStatus | None) -> datetime | None:
    """When the engagement completed or was cancelled: its projection's last activity once it closed
    (the workflow writes nothing after that)."""
    if status is None or status.stage not in CLOSED_STAGES:
        return None
    return status.last_activity_at


@dataclass(frozen=True)
class Retention:
    """What the engagement page says about keeping an engagement."""

    years: int
    closed_at: datetime | None
    kept_until: datetime | None
    legal_hold: bool
    hold_reason: str | None
    hold_by: int | None
    hold_at: datetime | None
    disposed_at: datetime | None
    disposal_started: bool


def retention_of(session: Session, engagement: Engagement) -> Retention:
    years = firm_years(session, engagement.firm_id)
    closed = closed_at(session.get(EngagementStatus, engagement.id))
    disposal = session.get(Disposal, engagement.id)
    if disposal is not None:
        closed = disposal.completed_at
    return Retention(
        years=years,
        closed_at=closed,
        kept_until=kept_until(closed, years) if closed is not None else None,
        legal_hold=engagement.legal_hold,
        hold_reason=engagement.legal_hold_reason,
        hold_by=engagement.legal_hold_by,
        hold_at=engagement.legal_hold_at,
        disposed_at=engagement.disposed_at,
        disposal_started=disposal is not None,
    )


# ---- which -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpiredPage:
    engagement_ids: list[int]
    next_after: int | None
    """Where the next page starts (an engagement id); None when every engagement was looked at."""


def expired_page(session: Session, now: datetime, after_id: int = 0, scan: int = 200) -> ExpiredPage:
    """Closed engagements past their firm's retention, not on hold, not disposed: ids above `after_id`,
    looking at `scan` candidates at most (past even the shortest retention) in id order."""
    cutoff = add_years(now, -MINIMUM_YEARS)
    rows = session.exec(
        select(EngagementStatus.engagement_id, EngagementStatus.firm_id, EngagementStatus.last_activity_at)
        .join(Engagement, col(Engagement.id) == col(EngagementStatus.engagement_id))
        .where(
            col(EngagementStatus.stage).in_([str(s) for s in CLOSED_STAGES]),
            col(EngagementStatus.last_activity_at) < cutoff,
            col(EngagementStatus.engagement_id) > after_id,
            col(Engagement.legal_hold).is_(False),
            col(Engagement.disposed_at).is_(None),
        )
        .order_by(col(EngagementStatus.engagement_id))
        .limit(scan)
    ).all()
    years: dict[int, int] = {}
    due = []
    for engagement_id, firm_id, last_activity in rows:
        if firm_id not in years:
            years[firm_id] = firm_years(session, firm_id)
        if last_activity is not None and kept_until(last_activity, years[firm_id]) < now:
            due.append(engagement_id)
    next_after = rows[-1][0] if len(rows) == scan else None
    return ExpiredPage(due, next_after)


# ---- disposing ------------------------------------------------------------------------------------------

DISPOSED = "disposed"
ALREADY_DISPOSED = "already_disposed"
ON_HOLD = "on_hold"
NOT_DUE = "not_due"
MISSING = "missing"


@dataclass(frozen=True)
class DisposalOutcome:
    engagement_id: int
    result: str  # one of DISPOSED, ALREADY_DISPOSED, ON_HOLD, NOT_DUE, MISSING
    blobs_deleted: int = 0


def dispose(
    engine: Engine,
    store: DocumentStore,
    chain_key: bytes,
    engagement_id: int,
    at: datetime,
    heartbeat: Callable[[], object] = lambda: None,
) -> DisposalOutcome:
    """Disposes of one engagement if it is due at `at`; finishes one that was started; else nothing."""
    started = _start(engine, chain_key, engagement_id, at)
    if isinstance(started, DisposalOutcome):
        return started
    keys = _blob_keys(engine, engagement_id)
    for key in keys:
        heartbeat()
        store.delete(key)
    _erase(engine, engagement_id, at)
    return DisposalOutcome(engagement_id, DISPOSED, len(keys))


def _locked(session: Session, engagement_id: int) -> Engagement | None:
    """The engagement row, locked until commit (PostgreSQL), so a legal hold and a disposal never cross."""
    return session.exec(select(Engagement).where(Engagement.id == engagement_id).with_for_update()).first()


def _start(engine: Engine, chain_key: bytes, engagement_id: int, at: datetime) -> Disposal | DisposalOutcome:
    """The disposal's record: the one already started, or a new one when the engagement is due now."""
    anchor = audit_chain.anchor(engine, chain_key, at)  # the log as it stood before anything went
    with Session(engine) as session:
        engagement = _locked(session, engagement_id)
        if engagement is None:
            return DisposalOutcome(engagement_id, MISSING)
        if engagement.disposed_at is not None:
            return DisposalOutcome(engagement_id, ALREADY_DISPOSED)
        record = session.get(Disposal, engagement_id)
        if record is not None:  # started before and cut short: finish it
            return record
        if engagement.legal_hold:
            return DisposalOutcome(engagement_id, ON_HOLD)
        years = firm_years(session, engagement.firm_id)
        status = session.get(EngagementStatus, engagement_id)
        closed = closed_at(status)
        if status is None or closed is None or kept_until(closed, years) >= at:
            return DisposalOutcome(engagement_id, NOT_DUE)
        record = Disposal(
            engagement_id=engagement_id,
            firm_id=engagement.firm_id,
            tax_year=engagement.tax_year,
            stage=status.stage,
            completed_at=closed,
            retention_years=years,
            started_at=at,
            certificate_sha256=engagement.certificate_sha256,
            audit_anchor=str(anchor) if anchor is not None else None,
        )
        _count_into(session, record)
        session.add(record)
        try:
            session.commit()
        except IntegrityError:  # another worker started it at the same moment: finish theirs
            session.rollback()
            return session.get(Disposal, engagement_id) or DisposalOutcome(engagement_id, NOT_DUE)
        session.refresh(record)
        return record


def _count(session: Session, model: type, *where: object) -> int:
    return int(session.exec(select(func.count()).select_from(model).where(*where)).one())  # type: ignore[arg-type]


def _count_into(session: Session, record: Disposal) -> None:
    """What is about to go, counted before anything does."""
    engagement_id = record.engagement_id
    documents = select(Document.id).where(Document.engagement_id == engagement_id)
    record.documents = _count(session, Document, Document.engagement_id == engagement_id)
    record.signatures = _count(session, Signature, col(Signature.document_id).in_(documents))
    record.signers = _count(session, Signer, Signer.engagement_id == engagement_id)
    record.chat_messages = _count(session, ChatMessage, ChatMessage.engagement_id == engagement_id)
    record.outbox_messages = _count(session, OutboxMessage, OutboxMessage.engagement_id == engagement_id)


def _blob_keys(engine: Engine, engagement_id: int) -> list[str]:
    """Every stored blob of the engagement: each document as sent and as it now stands, every signed
    version, the signature images and the certificate of completion."""
    with Session(engine) as session:
        keys: set[str | None] = set()
        for document in session.exec(select(Document).where(Document.engagement_id == engagement_id)):
            keys.update((document.storage_key, document.current_key))
            for signature in session.exec(select(Signature).where(Signature.document_id == document.id)):
                keys.add(signature.version_key)
        for signer in session.exec(select(Signer).where(Signer.engagement_id == engagement_id)):
            keys.add(signer.signature_key)
        engagement = session.get(Engagement, engagement_id)
        if engagement is not None:
            keys.add(engagement.certificate_key)
    return sorted(key for key in keys if key)


def _erase(engine: Engine, engagement_id: int, at: datetime) -> None:
    """The personal data and the document rows go, the record stays: one transaction."""
    with Session(engine) as session:
        engagement = _locked(session, engagement_id)
        record = session.get(Disposal, engagement_id)
        if engagement is None or record is None or engagement.disposed_at is not None:
            return
        documents = select(Document.id).where(Document.engagement_id == engagement_id)
        signers = select(Signer.id).where(Signer.engagement_id == engagement_id)
        linked = select(AccountLink.account_id).where(AccountLink.engagement_id == engagement_id)
        elsewhere = select(AccountLink.account_id).where(AccountLink.engagement_id != engagement_id)
        # An account that reaches another return (the person's later years) stays, without this one.
        accounts = list(
            session.exec(
                select(TaxpayerAccount.id).where(
                    col(TaxpayerAccount.id).in_(linked), col(TaxpayerAccount.id).not_in(elsewhere)
                )
            )
        )
        session.execute(delete(AccountLink).where(col(AccountLink.engagement_id) == engagement_id))
        session.execute(
            update(TaxpayerAccount).where(col(TaxpayerAccount.signer_id).in_(signers)).values(signer_id=None)
        )
        session.execute(delete(Signature).where(col(Signature.document_id).in_(documents)))
        session.execute(delete(Document).where(col(Document.engagement_id) == engagement_id))
        session.execute(delete(TrustedDevice).where(col(TrustedDevice.account_id).in_(accounts)))
        session.execute(delete(LoginCode).where(col(LoginCode.account_id).in_(accounts)))
        session.execute(delete(EsignConsent).where(col(EsignConsent.account_id).in_(accounts)))
        session.execute(
            delete(WebSession).where(
                col(WebSession.kind) == "taxpayer", col(WebSession.subject_id).in_(accounts)
            )
        )
        session.execute(delete(TaxpayerAccount).where(col(TaxpayerAccount.id).in_(accounts)))
        session.execute(delete(Signer).where(col(Signer.engagement_id) == engagement_id))
        session.execute(delete(ChatMessage).where(col(ChatMessage.engagement_id) == engagement_id))
        # Identity proofing: where each set was asked from, and why a preparer allowed another.
        session.execute(delete(IdentityCheck).where(col(IdentityCheck.engagement_id) == engagement_id))
        session.execute(delete(IdentityUnlock).where(col(IdentityUnlock.engagement_id) == engagement_id))
        # The ledger row stays (its idempotency key, status and times); to whom and what it said goes.
        session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.engagement_id) == engagement_id)
            .values(destination="", subject="", body_encrypted=b"", secret_digest=None, error=None)
        )
        session.execute(
            delete(EngagementSearchTerm).where(col(EngagementSearchTerm.engagement_id) == engagement_id)
        )
        session.execute(delete(ImportedRow).where(col(ImportedRow.engagement_id) == engagement_id))
        session.execute(delete(EngagementStatus).where(col(EngagementStatus.engagement_id) == engagement_id))
        projection_version.bump(session, engagement.firm_id)
        engagement.certificate_key = None
        engagement.disposed_at = at
        record.disposed_at = at
        session.add(engagement)
        session.add(record)
        audit.record(
            session,
            action=DISPOSED_ACTION,
            actor=SYSTEM,
            firm_id=engagement.firm_id,
            engagement_id=engagement_id,
            detail={
                "closed_at": record.completed_at.isoformat(),
                "retention_years": record.retention_years,
                "documents": record.documents,
                "signatures": record.signatures,
                "signers": record.signers,
                "chat_messages": record.chat_messages,
                "outbox_messages": record.outbox_messages,
            },
            event_key=f"{DISPOSED_ACTION}:{engagement_id}",
            at=at,
        )
        session.commit()
