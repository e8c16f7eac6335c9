"""What crosses between the engagement workflow and its activities: requests, results, projection rows.

Dataclasses only (no heavy imports): the workflow sandbox loads them. Add fields with defaults so running
workflows keep decoding their history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from core.actor import Actor
from core.enums import Stage
from core.progress import Progress
from esign.boxes import SignatureBox


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
    form: str = ""  # the IRS form it is ("8879", "8878"), read from its text: identity proofing asks by form


@dataclass(frozen=True)
class SignResult:
    document_id: int
    role: str
    signed_at: datetime
    sha256: str


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
    stage: Stage
    waiting_on: str | None
    waiting_since: datetime | None
    reminders_sent: int
    needs_attention: bool
    last_activity_at: datetime
    event: AuditEvent
    detail: dict[str, str] = field(default_factory=dict)
    """The progress as flat strings, as workflows wrote it before `progress` existed; read, never written."""
    progress: Progress | None = None

    def projection(self) -> Progress:
        """The progress this transition reports, whichever code recorded it."""
        return self.progress if self.progress is not None else Progress.from_mapping(self.detail)


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
class AccountToLink:
    engagement_id: int
    role: str
    account_id: int


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
    replaces: int | None = None  # a corrected copy: the one document published takes this one's place


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
class DeclineRecord:
    """A signer declined to sign a document, and why."""

    engagement_id: int
    document_id: int
    role: str
    reason: str
    actor: Actor
    at: datetime


@dataclass(frozen=True)
class PaperSignature:
    """Signatures made by hand on paper, shown by an uploaded scan, and vouched for by `actor`."""

    engagement_id: int
    document_id: int
    roles: list[str]
    scan_document_id: int
    actor: Actor
    at: datetime


@dataclass(frozen=True)
class SealDocuments:
    """Append the certificate of completion to every signed document and lock it against changes."""

    engagement_id: int
    at: datetime  # the certificate's "completed at"; audit entries after it stay out of the certificate


@dataclass(frozen=True)
class SealResult:
    document_ids: list[int]
    certificate_sha256: str
