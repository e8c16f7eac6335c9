"""Creating an engagement (rows first, then its workflow: a repeated start is harmless) and correcting a
signer's time zone."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, delete
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from core import audit, projection_version
from core.actor import Actor
from core.config import Settings
from core.context import Resources
from core.enums import Stage
from core.identity import contact_digest, identity_digest, mask_email, mask_phone
from core.models import (
    Engagement,
    EngagementSearchTerm,
    EngagementStatus,
    FirmSettings,
    Preparer,
    Role,
    Signer,
)
from services import Refusal, ServiceError, proofing, workflow_calls
from services.dashboard import all_terms, search_terms
from services.schemas import EngagementCreate, SignerIn, known_time_zone
from workflows import workflow_id
from workflows.engagement import EngagementWorkflow
from workflows.types import ChangeTimeZone, EngagementInput, Schedule, SignerProfile


def schedule_from(settings: Settings) -> Schedule:
    fields = Schedule.__dataclass_fields__
    return Schedule(**{name: getattr(settings, name) for name in fields})


def schedule_for(db: Session, settings: Settings, firm_id: int) -> Schedule:
    """The installation's schedule with the firm's own reminder timings and quiet hours on top."""
    base = schedule_from(settings)
    firm = db.get(FirmSettings, firm_id)
    if firm is None:
        return base
    return Schedule(
        **{
            **base.__dict__,
            "invite_reminder_interval": timedelta(days=firm.invite_reminder_days),
            "invite_reminders_max": firm.invite_reminders_max,
            "invite_expires_after": timedelta(days=firm.invite_expires_days),
            "verify_reminder_after": timedelta(hours=firm.verify_reminder_hours),
            "signature_reminder_first": timedelta(days=firm.signature_reminder_first_days),
            "signature_reminder_interval": timedelta(days=firm.signature_reminder_interval_days),
            "signature_reminders_max": firm.signature_reminders_max,
            "quiet_hours_start": firm.quiet_hours_start,
            "quiet_hours_end": firm.quiet_hours_end,
        }
    )


def _signer_row(resources: Resources, engagement_id: int, role: Role, data: SignerIn) -> Signer:
    details = None
    if data.address is not None:  # both or neither: SignerIn checks
        address = data.address
        details = proofing.checked_details(
            data.date_of_birth, address.street, address.city, address.state, address.zip
        ).encrypt(resources.cipher)
    return Signer(
        identity_details_encrypted=details,
        engagement_id=engagement_id,
        role=role,
        first_name=data.first_name.strip(),
        last_name=data.last_name.strip(),
        ssn_encrypted=resources.cipher.encrypt_text(data.ssn, "ssn"),
        ssn_last4_digest=resources.cipher.digest("ssn-last4", data.ssn[-4:]),
        email=data.email,
        phone=data.phone,
        time_zone=data.time_zone,
    )


def profile_of(resources: Resources, signer: Signer, ssn: str) -> SignerProfile:
    cipher = resources.cipher
    return SignerProfile(
        role=signer.role.value,
        display_name=signer.full_name,
        time_zone=signer.time_zone,
        identity_digest=identity_digest(cipher, signer.last_name, ssn[-4:]),
        email_digest=contact_digest(cipher, "email", signer.email) if signer.email else None,
        phone_digest=contact_digest(cipher, "sms", signer.phone) if signer.phone else None,
        masked_email=mask_email(signer.email) if signer.email else None,
        masked_phone=mask_phone(signer.phone) if signer.phone else None,
    )


def add_search_terms(db: Session, signer: Signer) -> None:
    """The signer's words as they are now (a confirmed new email or phone) join the engagement's search
    terms, in the caller's transaction. The earlier ones stay: the preparer still has the address they
    entered on the return and searches by it, and a word is not owned by one signer (a couple shares a
    surname, often an email or a phone), so removing one could hide the engagement from its other signer."""
    engagement = db.get(Engagement, signer.engagement_id)
    terms = search_terms(signer.first_name, signer.last_name, signer.email, signer.phone)
    if engagement is None or not terms:
        return
    rows = [{"firm_id": engagement.firm_id, "term": t, "engagement_id": signer.engagement_id} for t in terms]
    # Words it already has are skipped in SQL, so two changes at once on one engagement cannot collide.
    dialect = postgresql if db.get_bind().dialect.name == "postgresql" else sqlite
    db.exec(dialect.insert(EngagementSearchTerm).values(rows).on_conflict_do_nothing())
    projection_version.bump(db, engagement.firm_id)


async def create_engagement(
    db: Session, client: Client, resources: Resources, preparer: Preparer, data: EngagementCreate
) -> Engagement:
    engagement = Engagement(
        firm_id=preparer.firm_id,
        preparer_id=preparer.id or 0,
        tax_year=data.tax_year,
        taxpayer_signs_first=data.taxpayer_signs_first and data.spouse is not None,  # only a joint return
    )
    db.add(engagement)
    db.flush()
    people = [(Role.TAXPAYER, data.taxpayer)] + ([(Role.SPOUSE, data.spouse)] if data.spouse else [])
    signers = [
        (_signer_row(resources, engagement.id or 0, role, person), person.ssn) for role, person in people
    ]
    for row, _ in signers:
        db.add(row)
    # The dashboard searches these words (names, email, phone digits); identity data, not pipeline state.
    contacts = [(row.first_name, row.last_name, row.email, row.phone) for row, _ in signers]
    for term in all_terms(contacts):
        db.add(EngagementSearchTerm(firm_id=engagement.firm_id, term=term, engagement_id=engagement.id or 0))
    projection_version.bump(db, engagement.firm_id)
    db.commit()
    inp = EngagementInput(
        engagement_id=engagement.id or 0,
        firm_id=engagement.firm_id,
        preparer_id=engagement.preparer_id,
        tax_year=engagement.tax_year,
        signers=[profile_of(resources, row, ssn) for row, ssn in signers],
        schedule=schedule_for(db, resources.settings, engagement.firm_id),
        taxpayer_signs_first=engagement.taxpayer_signs_first,
    )
    try:
        await client.start_workflow(
            EngagementWorkflow.run,
            inp,
            id=workflow_id(engagement.id or 0, resources.settings.workflow_id_prefix),
            task_queue=resources.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    except Exception:
        # Without its workflow the engagement could never move: take the rows back, the caller retries.
        db.exec(delete(EngagementSearchTerm).where(col(EngagementSearchTerm.engagement_id) == engagement.id))
        for row, _ in signers:
            db.delete(row)
        db.delete(engagement)
        db.commit()
        raise
    return engagement


async def change_time_zone(
    db: Session, client: Client, *, engagement: Engagement, signer: Signer, time_zone: str, actor: Actor
) -> bool:
    """Moves a signer to another time zone; answers whether anything changed (a second click does not).

    While the engagement runs, the workflow takes the change (quiet hours for reminders and texts follow it)
    and records it; once it is completed or cancelled only the times the portal shows depend on it, so
    the row changes here, with its audit entry."""
    if not known_time_zone(time_zone):
        raise ServiceError(Refusal.INVALID, "Choose a time zone from the list.", "time_zone")
    if time_zone == signer.time_zone:
        return False
    status = db.get(EngagementStatus, engagement.id)
    if status is not None and status.stage in (Stage.COMPLETED, Stage.CANCELLED):
        audit.record(
            db,
            action="time_zone.changed",
            actor=actor,
            firm_id=engagement.firm_id,
            engagement_id=engagement.id,
            detail={"role": signer.role.value, "from": signer.time_zone, "to": time_zone},
        )
    else:
        await workflow_calls.update(
            client,
            engagement.id or 0,
            EngagementWorkflow.change_time_zone,
            ChangeTimeZone(role=signer.role.value, time_zone=time_zone, actor=actor),
        )
    signer.time_zone = time_zone
    db.add(signer)
    db.commit()
    return True
