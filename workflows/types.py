"""Inputs and outputs of the engagement workflow: its start input, updates, signals and status query.

Dataclasses only (no heavy imports): they are loaded inside the workflow sandbox. Add fields with
defaults so running workflows keep decoding their history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from activities.types import DocumentSpec
from core.actor import Actor
from core.enums import Channel, SignatureStatus, Stage, signature_status
from core.progress import Progress


@dataclass(frozen=True)
class Schedule:
    """Reminder and expiry timings, fixed when the engagement starts (settings may change later)."""

    invite_reminder_interval: timedelta = timedelta(days=2)
    invite_reminders_max: int = 3
    invite_expires_after: timedelta = timedelta(days=14)
    verify_reminder_after: timedelta = timedelta(hours=1)
    verify_reminders_max: int = 1
    signature_reminder_first: timedelta = timedelta(days=2)
    signature_reminder_interval: timedelta = timedelta(days=3)
    signature_reminders_max: int = 4
    quiet_hours_start: int = 21
    quiet_hours_end: int = 8
    code_lifetime: timedelta = timedelta(minutes=10)
    code_max_failures: int = 5
    code_resend_cooldown: timedelta = timedelta(seconds=30)
    registration_max_failures: int = 5


@dataclass(frozen=True)
class SignerProfile:
    """What the workflow knows of a signer: masked contacts and keyed digests, never the raw values."""

    role: str
    display_name: str
    time_zone: str
    identity_digest: str
    email_digest: str | None = None
    phone_digest: str | None = None
    masked_email: str | None = None
    masked_phone: str | None = None

    def digest_for(self, channel: str) -> str | None:
        return self.email_digest if channel == Channel.EMAIL else self.phone_digest

    def masked(self, channel: str) -> str | None:
        return self.masked_email if channel == Channel.EMAIL else self.masked_phone


@dataclass(frozen=True)
class EngagementInput:
    engagement_id: int
    firm_id: int
    preparer_id: int
    tax_year: int
    signers: list[SignerProfile]
    schedule: Schedule = field(default_factory=Schedule)
    taxpayer_signs_first: bool = False
    """Signing order: the spouse signs a document the taxpayer signs too only once the taxpayer has."""


# ---- updates -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendInvite:
    role: str
    channel: str
    actor: Actor
    destination_digest: str | None = None  # when given, must be the contact on the return


@dataclass(frozen=True)
class ChangeContact:
    """The preparer corrects a signer's email or phone on the return before they register: invitations
    go there, and registration matches against it from then on."""

    role: str
    channel: str
    digest: str  # keyed digest of the new contact, as SignerProfile keeps it
    masked: str  # the new contact, masked
    actor: Actor


@dataclass(frozen=True)
class ChangeTimeZone:
    """A signer's time zone, corrected by the preparer or by the signer: reminders and texts respect quiet
    hours there from now on, and the portal shows times in it."""

    role: str
    time_zone: str  # an IANA name, checked against the zone database before it is asked
    actor: Actor


@dataclass(frozen=True)
class InviteResult:
    invite_seq: int
    masked_destination: str
    scheduled_for: datetime | None = None  # set when quiet hours hold a text back


@dataclass(frozen=True)
class Register:
    role: str
    invite_seq: int
    identity_digest: str
    email_digest: str
    phone_digest: str
    username: str
    password_hash: str
    email: str
    phone: str
    actor: Actor


@dataclass(frozen=True)
class LinkAccount:
    """A person who already has a Client Portal account accepts this invitation: signed in (password, and a
    code on a new browser), they pass the same identity match as registration, and the account reaches
    this return too. The contacts are the account's own, proved when it was verified."""

    role: str
    invite_seq: int
    identity_digest: str
    email_digest: str
    phone_digest: str
    account_id: int
    actor: Actor


@dataclass(frozen=True)
class RegisterResult:
    ok: bool
    account_id: int | None = None
    attempts_left: int = 0
    locked: bool = False


@dataclass(frozen=True)
class RequestCode:
    role: str
    channel: str
    actor: Actor


@dataclass(frozen=True)
class CodeSent:
    masked_destination: str
    expires_at: datetime
    resend_after: datetime


@dataclass(frozen=True)
class VerifyCode:
    role: str
    code_digest: str
    actor: Actor


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    reason: str = ""  # "", "wrong", "expired", "used", "locked"
    tries_left: int = 0


@dataclass(frozen=True)
class SendDocuments:
    documents: list[DocumentSpec]
    actor: Actor
    replaces: int | None = None
    """A corrected copy of this document (one declined, say): the one document sent takes its place, and
    what was signed or declined on the old one no longer counts."""


@dataclass(frozen=True)
class SaveSignature:
    role: str
    image_key: str
    actor: Actor


@dataclass(frozen=True)
class SignDocument:
    role: str
    document_id: int
    actor: Actor


@dataclass(frozen=True)
class DeclineDocument:
    """A signer will not sign this document as it is; the reason goes to the preparer."""

    role: str
    document_id: int
    reason: str
    actor: Actor


@dataclass(frozen=True)
class SignOnPaper:
    """Signatures made by hand: the client uploads the scan of their own, or the preparer attests the
    signatures a scan shows. `scan_document_id` is that upload."""

    document_id: int
    roles: list[str]
    scan_document_id: int
    actor: Actor


@dataclass(frozen=True)
class Cancel:
    actor: Actor
    reason: str = ""


@dataclass(frozen=True)
class Unlock:
    role: str
    actor: Actor


@dataclass(frozen=True)
class ClientActivity:
    """A fact worth showing on the dashboard (an upload, a chat message); signalled, not answered."""

    role: str
    what: str
    actor: Actor


# ---- query ---------------------------------------------------------------------------------------


@dataclass
class SignerStatus:
    role: str
    invite_seq: int = 0
    invite_channel: str | None = None
    invited_at: datetime | None = None
    invite_expired: bool = False
    registration_failures: int = 0
    registration_locked: bool = False
    registered_at: datetime | None = None
    account_id: int | None = None
    verified_at: datetime | None = None
    code_seq: int = 0
    code_channel: str | None = None
    code_sent_at: datetime | None = None
    code_expires_at: datetime | None = None
    code_failures: int = 0
    signature_on_file: bool = False
    reminders_sent: int = 0


@dataclass
class DocumentStatus:
    document_id: int
    name: str
    required_roles: list[str]
    signed_roles: list[str] = field(default_factory=list)
    paper_roles: list[str] = field(default_factory=list)  # of signed_roles: those signed on paper
    declined: dict[str, str] = field(default_factory=dict)  # role -> the reason they gave
    declined_at: datetime | None = None
    replaced_by: int | None = None  # the corrected copy sent in its place

    @property
    def fully_signed(self) -> bool:
        return set(self.required_roles) <= set(self.signed_roles)

    @property
    def live(self) -> bool:
        """Still to be signed or signed: not replaced by a corrected copy."""
        return self.replaced_by is None

    def owes(self, role: str) -> bool:
        """`role` must still sign this document and has not declined it."""
        return (
            self.live
            and role in self.required_roles
            and role not in self.signed_roles
            and role not in self.declined
        )

    @property
    def signature_status(self) -> SignatureStatus | None:
        return signature_status(
            len(self.required_roles),
            len(set(self.signed_roles) & set(self.required_roles)),
            declined=bool(self.declined),
            on_paper=bool(self.paper_roles),
            replaced=not self.live,
        )


@dataclass
class EngagementState:
    engagement_id: int
    stage: Stage
    signers: dict[str, SignerStatus]
    documents: list[DocumentStatus]
    waiting_on: str | None
    waiting_since: datetime | None
    needs_attention: str | None
    reminders_sent: int
    version: int
    progress: Progress = field(default_factory=Progress)
