"""Roll over: next year's engagement for the same people as a completed one, in one click or many.

The new engagement is made through the one create path (`preparer_engagements.create`: rows, then its
workflow), from the completed one's signers: names, the SSN decrypted from its ciphertext, email, phone
and time zone. Nothing else carries over (documents, signatures, chat belong to their year). The people
keep their client account: the new invitation recognises it (`services.returning_clients`), and they add
the return to it after sign-in and the identity match.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, select

from core import audit
from core.crypto import Cipher
from core.enums import Stage
from core.models import Engagement, EngagementStatus, OutboxMessage, Preparer, Signer
from services import Refusal, ServiceError, clients, proofing
from services import preparer_engagements as work
from services.context import PreparerContext
from services.schemas import AddressIn, EngagementCreate, SignerIn

MAX_BULK = 200
NOT_COMPLETED = "Only a completed engagement can be rolled over; this one is {stage}."


@dataclass(frozen=True)
class RolledOver:
    source_id: int
    engagement: Engagement
    invited: list[str] = field(default_factory=list)  # roles invited at once, e.g. ["taxpayer"]


@dataclass(frozen=True)
class Skipped:
    source_id: int
    reason: str


@dataclass
class BulkResult:
    created: list[RolledOver] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def _people(ctx: PreparerContext, engagement: Engagement) -> list[Signer]:
    return [s for s, _ in work.signers_of(ctx.db, engagement)]


def existing_next_year(ctx: PreparerContext, engagement: Engagement) -> Engagement | None:
    """The taxpayer's engagement for the year after `engagement`'s, if the firm already has one."""
    taxpayer = next((s for s in _people(ctx, engagement) if s.role.value == "taxpayer"), None)
    if taxpayer is None:
        return None
    year = engagement.tax_year + 1
    for _, other in clients.same_person(ctx.db, ctx.resources.cipher, ctx.firm_id, taxpayer):
        if other.tax_year == year and other.disposed_at is None:
            return other
    return None


def _lock_source(ctx: PreparerContext, engagement: Engagement) -> None:
    """Holds last year's engagement row (SELECT … FOR UPDATE on PostgreSQL; SQLite ignores it) so a second
    roll over, from another API process, waits and then finds next year's engagement made."""
    ctx.db.exec(select(Engagement.id).where(Engagement.id == engagement.id).with_for_update()).first()


def _refusal(ctx: PreparerContext, engagement: Engagement) -> str | None:
    """Why this engagement cannot be rolled over now, or None."""
    status = ctx.db.get(EngagementStatus, engagement.id)
    stage = status.stage if status else Stage.CREATED
    if stage != Stage.COMPLETED or engagement.disposed_at is not None:
        return NOT_COMPLETED.format(stage=stage.replace("_", " "))
    already = existing_next_year(ctx, engagement)
    if already is not None:
        return (
            f"The {engagement.tax_year + 1} engagement for these clients already exists "
            f"(engagement #{already.id})."
        )
    return None


def _body(ctx: PreparerContext, engagement: Engagement) -> EngagementCreate:
    cipher = ctx.resources.cipher
    people = {
        s.role.value: SignerIn(
            first_name=s.first_name,
            last_name=s.last_name,
            ssn=cipher.decrypt_text(s.ssn_encrypted, "ssn"),
            email=s.email,
            phone=s.phone,
            time_zone=s.time_zone,
            **_identity_details(cipher, s),
        )
        for s in _people(ctx, engagement)
    }
    return EngagementCreate(
        tax_year=engagement.tax_year + 1,
        taxpayer=people["taxpayer"],
        spouse=people.get("spouse"),
        taxpayer_signs_first=engagement.taxpayer_signs_first,  # the couple's order holds next year too
    )


def _identity_details(cipher: Cipher, signer: Signer) -> dict[str, Any]:
    """The date of birth and address for identity proofing carry over to next year's return."""
    details = proofing.details_of(cipher, signer)
    if details is None:
        return {}
    address = AddressIn(street=details.street, city=details.city, state=details.state, zip=details.zip)
    return {"date_of_birth": details.date_of_birth, "address": address}


def last_channels(ctx: PreparerContext, engagement: Engagement) -> dict[str, str]:
    """By role, the channel the last invitation to that person went by ("email" or "sms")."""
    messages = ctx.db.exec(
        select(OutboxMessage.channel, OutboxMessage.destination)
        .where(OutboxMessage.engagement_id == engagement.id, OutboxMessage.purpose == "invite")
        .order_by(col(OutboxMessage.id))
    ).all()
    channels: dict[str, str] = {}
    for signer in _people(ctx, engagement):
        for channel, destination in messages:
            if destination in (signer.email, signer.phone):
                channels[signer.role.value] = channel
    return channels


async def roll_over(ctx: PreparerContext, engagement: Engagement, *, invite: bool = False) -> RolledOver:
    """Creates next year's engagement for the people of a completed one (audited on both); with `invite`,
    sends each person the link by the channel their last invitation used. A double click creates one."""
    # Within one process the check and the new rows' commit have no await between them; across API
    # processes (PostgreSQL) the source row's lock makes a second roll over wait, then find it made.
    _lock_source(ctx, engagement)
    reason = _refusal(ctx, engagement)
    if reason is not None:
        raise ServiceError(Refusal.CONFLICT, reason)
    owner = ctx.db.get(Preparer, engagement.preparer_id)  # last year's preparer keeps the client
    new = await work.create(
        ctx,
        _body(ctx, engagement),
        detail={"rolled_over_from": str(engagement.id)},
        owner=owner if owner is not None and owner.active else None,
    )
    audit.record(
        ctx.db,
        action="engagement.rolled_over",
        actor=ctx.actor,
        firm_id=ctx.firm_id,
        engagement_id=engagement.id,
        detail={"to": new.id, "tax_year": new.tax_year},
    )
    ctx.db.commit()
    invited: list[str] = []
    if invite:
        for role, channel in last_channels(ctx, engagement).items():
            await work.invite(ctx, new, role=role, channel=channel)
            invited.append(role)
    return RolledOver(engagement.id or 0, new, invited)


async def roll_over_many(
    ctx: PreparerContext, engagement_ids: list[int], *, invite: bool = False
) -> BulkResult:
    """Rolls over each engagement it can and says why it skipped the others. Every id must be the firm's:
    one that is not refuses the whole request, before anything is created."""
    ids = list(dict.fromkeys(engagement_ids))
    if not ids:
        raise ServiceError(Refusal.INVALID, "Choose at least one completed engagement.", "ids")
    if len(ids) > MAX_BULK:
        raise ServiceError(Refusal.INVALID, f"Roll over at most {MAX_BULK} engagements at once.", "ids")
    engagements = [work.engagement_of(ctx.db, ctx.preparer, i) for i in ids]
    result = BulkResult()
    for engagement in engagements:
        try:
            result.created.append(await roll_over(ctx, engagement, invite=invite))
        except ServiceError as exc:
            if exc.kind is not Refusal.CONFLICT:
                raise
            result.skipped.append(Skipped(engagement.id or 0, exc.message))
    return result
