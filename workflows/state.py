"""Everything an engagement workflow knows, in one dataclass, and the questions it answers.

Pure: no Temporal calls, no clock (the workflow passes `now` in), so every rule here is a unit test away.
The workflow mutates it in its handlers; validators (`workflows/validators.py`) only read it.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field, replace
from datetime import datetime

from core.enums import Channel, Role, Stage
from core.progress import Progress, SignerProgress
from workflows.types import (
    DocumentStatus,
    EngagementInput,
    EngagementState,
    LinkAccount,
    Register,
    Schedule,
    SignerProfile,
    SignerStatus,
)

# Who an engagement waits on, besides its signers.
PREPARER = "preparer"
SYSTEM = "system"  # every signature is in: Portico seals and completes by itself


@dataclass
class PipelineState:
    inp: EngagementInput
    created_at: datetime
    profiles: dict[str, SignerProfile]
    signers: dict[str, SignerStatus]
    documents: dict[int, DocumentStatus] = field(default_factory=dict)
    signing_in_progress: set[tuple[int, str]] = field(default_factory=set)
    """(document, role) signatures accepted and being applied: a second click is refused meanwhile."""
    attention: str | None = None
    attention_since: datetime | None = None
    cancelled: bool = False
    completed: bool = False
    finalising: bool = False
    """Every signature is in and sealing has begun: nothing may add work to sign any more."""
    documents_sent_at: datetime | None = None
    last_signed_at: datetime | None = None
    signature_round: int = 0
    """Bumped by each send of documents: the reminders of an earlier round stop."""
    version: int = 0
    """The projection's change counter: one more for every recorded transition."""
    code_digests: dict[str, str | None] = field(default_factory=dict)
    """Keyed digest of each signer's current one-time code; kept out of the status query."""

    @classmethod
    def start(cls, inp: EngagementInput, now: datetime) -> PipelineState:
        return cls(
            inp=inp,
            created_at=now,
            profiles={p.role: p for p in inp.signers},
            signers={p.role: SignerStatus(role=p.role) for p in inp.signers},
        )

    @property
    def schedule(self) -> Schedule:
        return self.inp.schedule

    @property
    def closed(self) -> bool:
        return self.cancelled or self.completed

    # ---- where the engagement stands -------------------------------------------------------------

    @property
    def stage(self) -> Stage:
        if self.cancelled:
            return Stage.CANCELLED
        if self.completed:
            return Stage.COMPLETED
        if self.declined_documents():  # the preparer corrects the document or takes it on paper
            return Stage.DECLINED
        stage = self.main_stage
        # An expired link says more than "needs attention": both wait on the preparer, this one says why.
        if self.attention is not None and stage != Stage.EXPIRED:
            return Stage.NEEDS_ATTENTION
        return stage

    @property
    def main_stage(self) -> Stage:
        """The furthest step, ignoring side outcomes; the taxpayer's progress leads the early steps."""
        if self.documents:
            if self.all_signed():
                return Stage.SIGNED
            if any(doc.signed_roles for doc in self.live_documents()):
                return Stage.SIGNING
            return Stage.DOCUMENTS_SENT
        return self.step_of(Role.TAXPAYER)

    def step_of(self, role: str) -> Stage:
        """How far one signer has come on their own (one of `core.progress.SIGNER_STEPS`)."""
        signer = self.signers[role]
        if signer.verified_at is not None:
            return Stage.VERIFIED
        if signer.registered_at is not None:
            return Stage.REGISTERED
        if signer.invite_expired:
            return Stage.EXPIRED
        if signer.invite_seq > 0:
            return Stage.INVITED
        return Stage.CREATED

    def step_since(self, role: str) -> datetime | None:
        signer = self.signers[role]
        return {
            Stage.VERIFIED: signer.verified_at,
            Stage.REGISTERED: signer.registered_at,
            Stage.EXPIRED: signer.invited_at,
            Stage.INVITED: signer.invited_at,
        }.get(self.step_of(role))

    def waiting(self) -> tuple[str | None, datetime | None]:
        """Who must act next ("preparer", "taxpayer", "spouse", "taxpayer, spouse", "system"), since when."""
        if self.closed:
            return None, None
        declined = self.declined_documents()
        if declined:
            return PREPARER, min(doc.declined_at or self.created_at for doc in declined)
        if self.attention is not None:
            return PREPARER, self.attention_since
        taxpayer = self.signers[Role.TAXPAYER]
        stage = self.main_stage
        if stage in (Stage.CREATED, Stage.EXPIRED):
            return PREPARER, taxpayer.invited_at or self.created_at
        if stage == Stage.INVITED:
            return Role.TAXPAYER, taxpayer.invited_at
        if stage == Stage.REGISTERED:
            return Role.TAXPAYER, taxpayer.registered_at
        if stage == Stage.VERIFIED:
            return PREPARER, taxpayer.verified_at
        if stage == Stage.SIGNED:
            return SYSTEM, self.last_signed_at
        owing = self.roles_owing_signatures()
        if any(self.signers[role].invite_seq == 0 for role in owing):
            return PREPARER, self.documents_sent_at  # the spouse must be invited before they can sign
        if self.inp.taxpayer_signs_first:  # a spouse whose turn has not come is not the one waited on
            owing = [role for role in owing if self.has_turn(role)] or owing
        return ", ".join(owing), self.last_signed_at or self.documents_sent_at

    def live_documents(self) -> list[DocumentStatus]:
        """Every document sent, less those a corrected copy replaced."""
        return [doc for doc in self.documents.values() if doc.live]

    def declined_documents(self) -> list[DocumentStatus]:
        return [doc for doc in self.live_documents() if doc.declined]

    def all_signed(self) -> bool:
        needed = [doc for doc in self.live_documents() if doc.required_roles]
        return bool(needed) and all(doc.fully_signed for doc in needed)

    def roles_owing_signatures(self) -> list[str]:
        """Who must still sign something; a signer who declined a document owes nothing on it until the
        preparer sends a corrected copy (then they owe the copy)."""
        return sorted({r for d in self.documents.values() for r in d.required_roles if d.owes(r)})

    def only_declines_outstanding(self) -> bool:
        """Nothing is owed but signatures that were declined: waiting on the preparer, not on a client."""
        return bool(self.declined_documents()) and not self.roles_owing_signatures()

    def remindable(self) -> list[str]:
        """Who owes a signature and can act on a reminder (an uninvited spouse waits on the preparer, one
        whose turn has not come waits on the taxpayer)."""
        return [
            role
            for role in self.roles_owing_signatures()
            if self.signers[role].verified_at is not None and self.has_turn(role)
        ]

    def waits_for(self, doc: DocumentStatus, role: str) -> str | None:
        """Whose signature `role` waits for on `doc` before signing it (the engagement's signing order),
        or None when it is their turn."""
        if (
            self.inp.taxpayer_signs_first
            and role == Role.SPOUSE
            and Role.TAXPAYER in doc.required_roles
            and Role.TAXPAYER not in doc.signed_roles
        ):
            return Role.TAXPAYER
        return None

    def has_turn(self, role: str) -> bool:
        """`role` may sign something now: a document they owe that waits for nobody else first."""
        return any(doc.owes(role) and self.waits_for(doc, role) is None for doc in self.documents.values())

    def tries_left(self, role: str) -> int:
        """Wrong one-time codes the signer may still enter before only the preparer can unlock them."""
        return max(self.schedule.code_max_failures - self.signers[role].code_failures, 0)

    def locked_out(self, role: str) -> bool:
        return self.signers[role].registration_locked or self.tries_left(role) == 0

    @property
    def reminders_sent(self) -> int:
        return sum(s.reminders_sent for s in self.signers.values())

    def identity_matches(self, req: Register | LinkAccount) -> bool:
        """Registration's check: the identity digest and at least one contact match the return."""
        profile = self.profiles[req.role]
        contact_ok = any(
            mine is not None and hmac.compare_digest(mine, given)
            for mine, given in (
                (profile.email_digest, req.email_digest),
                (profile.phone_digest, req.phone_digest),
            )
        )
        return hmac.compare_digest(profile.identity_digest, req.identity_digest) and contact_ok

    # ---- what leaves the workflow ----------------------------------------------------------------

    def progress(self) -> Progress:
        """The per-signer record behind the dashboard's step indicator."""
        to_sign = [doc for doc in self.live_documents() if doc.required_roles]
        return Progress(
            signers=[
                SignerProgress(
                    role=Role(role),
                    name=self.profiles[role].display_name,
                    step=self.step_of(role),
                    locked_out=self.locked_out(role),
                    step_since=self.step_since(role),
                )
                for role in self.signers
            ],
            documents=len(self.documents),
            documents_to_sign=len(to_sign),
            documents_signed=sum(doc.fully_signed for doc in to_sign),
        )

    def status(self) -> EngagementState:
        waiting_on, since = self.waiting()
        return EngagementState(
            engagement_id=self.inp.engagement_id,
            stage=self.stage,
            signers=self.signers,
            documents=list(self.documents.values()),
            waiting_on=waiting_on,
            waiting_since=since,
            needs_attention=self.attention,
            reminders_sent=self.reminders_sent,
            version=self.version,
            progress=self.progress(),
        )

    # ---- changes the handlers make ---------------------------------------------------------------

    def change_contact(self, role: str, channel: str, digest: str, masked: str) -> None:
        """The return's email or phone for `role`, corrected: invites and identity matching use it."""
        if channel == Channel.EMAIL:
            self.profiles[role] = replace(self.profiles[role], email_digest=digest, masked_email=masked)
        else:
            self.profiles[role] = replace(self.profiles[role], phone_digest=digest, masked_phone=masked)

    def change_time_zone(self, role: str, time_zone: str) -> None:
        self.profiles[role] = replace(self.profiles[role], time_zone=time_zone)

    def invite(self, role: str, channel: str, now: datetime) -> SignerStatus:
        """A new invitation replaces the last: a fresh link, a fresh count of identity mismatches."""
        signer = self.signers[role]
        signer.invite_seq += 1
        signer.invite_channel = channel
        signer.invited_at = now
        signer.invite_expired = False
        signer.registration_failures = 0
        signer.registration_locked = False
        self.clear_attention()
        return signer

    def registration_mismatch(self, role: str) -> int:
        """Counts a failed registration; returns the attempts left (locked at zero or below)."""
        signer = self.signers[role]
        signer.registration_failures += 1
        left = self.schedule.registration_max_failures - signer.registration_failures
        signer.registration_locked = left <= 0
        return left

    def code_requested(self, role: str, channel: str, now: datetime) -> SignerStatus:
        signer = self.signers[role]
        signer.code_seq += 1
        signer.code_channel = channel
        signer.code_sent_at = now
        signer.code_expires_at = now + self.schedule.code_lifetime
        self.code_digests[role] = None
        return signer

    def unlock(self, role: str) -> None:
        signer = self.signers[role]
        signer.registration_failures = 0
        signer.registration_locked = False
        signer.code_failures = 0
        self.clear_attention()

    def flag(self, reason: str, now: datetime) -> None:
        """Needs the preparer; the first reason (and its time) stands until somebody acts."""
        if self.attention is None:
            self.attention, self.attention_since = reason, now

    def clear_attention(self) -> None:
        self.attention = self.attention_since = None
