"""Inputs and outputs of the engagement workflow, its updates and its activities.

Dataclasses only (no heavy imports): they are loaded inside the workflow sandbox. Add fields with
defaults so running workflows keep decoding their history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from core.actor import Actor


class Stage(StrEnum):
    CREATED = "created"
    INVITED = "invited"
    REGISTERED = "registered"
    VERIFIED = "verified"
    DOCUMENTS_SENT = "documents_sent"
    SIGNING = "signing"
    SIGNED = "signed"
    COMPLETED = "completed"
    NEEDS_ATTENTION = "needs_attention"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


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


# ---- updates -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendInvite:
    role: str
    channel: str
    actor: Actor
    destination_digest: str | None = None  # when given, must be the contact on the return


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
class DocumentSpec:
    """A PDF the preparer uploaded to storage; only its key and metadata travel through Temporal."""

    upload_ref: str
    storage_key: str
    name: str
    sha256: str
    size: int
    pages: int
    required_roles: list[str] = field(default_factory=list)
    signature_boxes: list[SignatureBox] = field(default_factory=list)  # where the preparer wants stamps


@dataclass(frozen=True)
class SendDocuments:
    documents: list[DocumentSpec]
    actor: Actor


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
class SignResult:
    document_id: int
    role: str
    signed_at: datetime
    sha256: str


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

    @property
    def fully_signed(self) -> bool:
        return set(self.required_roles) <= set(self.signed_roles)


@dataclass
class EngagementState:
    engagement_id: int
    stage: str
    signers: dict[str, SignerStatus]
    documents: list[DocumentStatus]
    waiting_on: str | None
    waiting_since: datetime | None
    needs_attention: str | None
    reminders_sent: int
    version: int


# ---- activities ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEvent:
    action: str
    actor: Actor
    at: datetime
    detail: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Transition:
    """One change of the engagement: the projection row as it now stands, plus what happened."""

    workflow_id: str
    engagement_id: int
    firm_id: int
    version: int
    stage: str
    waiting_on: str | None
    waiting_since: datetime | None
    reminders_sent: int
    needs_attention: bool
    last_activity_at: datetime
    event: AuditEvent
    detail: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MessageRequest:
    """Ask to send one message. The activity looks up the destination and renders the text."""

    idempotency_key: str
    engagement_id: int
    recipient: str  # a signer role, or "preparer"
    channel: str
    purpose: str  # "invite", "invite_reminder", "code", "verify_reminder", "documents_ready", ...
    invite_seq: int = 0
    reminder_number: int = 0


@dataclass(frozen=True)
class MessageResult:
    status: str  # "sent", "uncertain" (a crash mid-send: not repeated), "failed"
    secret_digest: str | None = None  # for codes: the keyed digest of the code that went out


@dataclass(frozen=True)
class CreateAccount:
    engagement_id: int
    role: str
    username: str
    password_hash: str
    email: str
    phone: str


@dataclass(frozen=True)
class MarkVerified:
    account_id: int
    channel: str
    at: datetime


@dataclass(frozen=True)
class PublishDocuments:
    engagement_id: int
    documents: list[DocumentSpec]
    uploaded_by: str


@dataclass(frozen=True)
class StoreSignatureImage:
    engagement_id: int
    role: str
    image_key: str
    at: datetime


@dataclass(frozen=True)
class SignRequest:
    engagement_id: int
    document_id: int
    role: str
    actor: Actor
    at: datetime


@dataclass(frozen=True)
class SignatureBox:
    """A rectangle the preparer drew for one signer's stamp, in PDF points from the page's lower left."""

    role: str
    page: int  # 1 = first page
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class SealDocuments:
    """Append the certificate of completion to every signed document and lock it against changes."""

    engagement_id: int
    at: datetime  # the certificate's "completed at"; audit entries after it stay out of the certificate


@dataclass(frozen=True)
class SealResult:
    document_ids: list[int]
    certificate_sha256: str
