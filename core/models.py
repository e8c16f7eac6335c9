"""Database tables. Pipeline state is written only by activities the engagement workflow calls."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Column, Field, SQLModel

from core.enums import Direction, Role

# Constraint names that Alembic revisions can drop by name, the same on every database. They are the names
# PostgreSQL gave the first release's unnamed constraints (`<table>_<columns>_key`, `_fkey`, `_pkey`), so
# a database that release created already carries them; set before any table below is defined.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always hands back aware datetimes, on SQLite as on PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _when(**kwargs: Any) -> Any:
    return Field(sa_column=Column(UTCDateTime(), **kwargs))


def _created() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class Firm(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str
    created_at: datetime = _created()


class Preparer(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    firm_id: int = Field(foreign_key="firm.id", index=True)
    email: str = Field(unique=True)
    name: str
    password_hash: str
    active: bool = True
    # Administrators manage the firm: colleagues (invite, deactivate, administrator or not), the reminder
    # schedule, quiet hours and message wording. Everyone else reads those settings only.
    is_admin: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    created_at: datetime = _created()
    phone: str | None = None  # shown to their clients in the portal's firm contact, when set


class Engagement(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    firm_id: int = Field(foreign_key="firm.id", index=True)
    preparer_id: int = Field(foreign_key="preparer.id", index=True)
    tax_year: int
    created_at: datetime = _created()
    # The certificate of completion, rendered once when the last signature is in and sealed into each
    # signed document; exports reuse these bytes so every copy of the certificate is the same.
    certificate_key: str | None = None
    certificate_sha256: str | None = None
    sealed_at: datetime | None = _when(nullable=True)
    # Retention (core/retention.py): a legal hold keeps an engagement past its retention date until a
    # preparer lifts it; `disposed_at` is set once its documents and personal data are gone.
    legal_hold: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    legal_hold_reason: str | None = None
    legal_hold_by: int | None = None  # the preparer who placed it
    legal_hold_at: datetime | None = _when(nullable=True)
    disposed_at: datetime | None = _when(nullable=True)
    # Signing order on a joint return: the spouse signs a document the taxpayer signs too only after them.
    taxpayer_signs_first: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})

    @property
    def workflow_id(self) -> str:
        return f"engagement-{self.id}"


class Signer(SQLModel, table=True):
    """A person who must sign: the taxpayer and, on a joint return, the spouse."""

    __table_args__ = (
        sa.UniqueConstraint("engagement_id", "role"),
        # The dashboard's Returning badge: earlier returns of a last four under a last name's search word.
        sa.Index("ix_signer_last4_engagement", "ssn_last4_digest", "engagement_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    engagement_id: int = Field(foreign_key="engagement.id", index=True)
    role: Role
    first_name: str
    last_name: str
    ssn_encrypted: bytes = Field(sa_column=Column(sa.LargeBinary, nullable=False))
    ssn_last4_digest: str
    email: str | None = Field(default=None, index=True)
    phone: str | None = Field(default=None, index=True)
    time_zone: str = "America/New_York"
    signature_key: str | None = None
    signature_saved_at: datetime | None = _when(nullable=True)
    signature_method: str | None = None  # how the signature on file was made: drawn, typed or uploaded
    # Date of birth and street address for identity proofing (services.proofing), encrypted like the SSN:
    # JSON {"date_of_birth", "street", "city", "state", "zip"} under the purpose "identity-details".
    identity_details_encrypted: bytes | None = Field(
        default=None, sa_column=Column(sa.LargeBinary, nullable=True)
    )

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


class TaxpayerAccount(SQLModel, table=True):
    """A client's Portal account: one person within a firm, across every return they sign (`AccountLink`).

    `signer_id` is the signer whose invitation created the account (empty once that return was disposed of);
    what the account reaches is its links (`core.client_accounts`).
    """

    id: int | None = Field(default=None, primary_key=True)
    signer_id: int | None = Field(default=None, foreign_key="signer.id", index=True)
    username: str = Field(unique=True)
    password_hash: str
    email: str
    phone: str
    created_at: datetime = _created()
    verified_at: datetime | None = _when(nullable=True)
    verified_channel: str | None = None
    firm_id: int | None = Field(default=None, foreign_key="firm.id", index=True)


class AccountLink(SQLModel, table=True):
    """A signer of one engagement, reached by a client account: at registration, or when a person who
    already has an account accepts another invitation and passes the same identity match."""

    signer_id: int = Field(primary_key=True, foreign_key="signer.id")
    account_id: int = Field(foreign_key="taxpayeraccount.id", index=True)
    engagement_id: int = Field(foreign_key="engagement.id", index=True)
    linked_at: datetime = _created()
    via: str = "registration"  # or "invitation": an existing account added this return


class Document(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("engagement_id", "upload_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    engagement_id: int = Field(foreign_key="engagement.id", index=True)
    direction: Direction
    upload_ref: str  # idempotency: one row per upload, however often the write is retried
    name: str
    content_type: str
    size: int
    pages: int | None = None
    storage_key: str  # the bytes as sent
    sha256: str
    current_key: str  # the latest version: signed copies replace this, never the original
    current_sha256: str
    uploaded_by: str  # "preparer:<id>" or "taxpayer:<role>"
    created_at: datetime = _created()
    signature_boxes: str = "[]"  # JSON list of SignatureBox the preparer placed; empty: fields or default
    sealed_at: datetime | None = _when(nullable=True)  # current_key is then the sealed, locked version
    # An upload its signer marked private: the preparer sees it, the other spouse of a joint return does not.
    private: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    # A corrected copy the preparer sent in its place (after a decline, say): nothing more is signed here.
    replaced_by: int | None = None
    downloaded_at: datetime | None = _when(nullable=True)  # the firm first downloaded the signed copy
    form: str | None = None  # the IRS form it is, read from its text when sent: "8879", "8878" or ""


class Signature(SQLModel, table=True):
    """One row per (document, signer) that must sign; filled in when that signer signs."""

    __table_args__ = (sa.UniqueConstraint("document_id", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(foreign_key="document.id", index=True)
    role: Role
    signed_at: datetime | None = _when(nullable=True)
    sha256_after: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    version_key: str | None = None  # the document as this signature left it; every version is kept
    method: str = Field(default="electronic", sa_column_kwargs={"server_default": "electronic"})
    """"electronic", or "paper": signed by hand, shown by a scan (`scan_document_id`) someone attested."""
    attested_by: str | None = None  # who vouched for a paper signature: "taxpayer:<role>" or "preparer:<id>"
    scan_document_id: int | None = None
    declined_at: datetime | None = _when(nullable=True)
    decline_reason: str | None = None


class ChatMessage(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    engagement_id: int = Field(foreign_key="engagement.id", index=True)
    sender: str  # "preparer" or a signer role
    sender_name: str
    body: str
    created_at: datetime = _created()


class OutboxMessage(SQLModel, table=True):
    """Every message Portico sends; the unique key makes a retried send a no-op."""

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True)
    engagement_id: int | None = Field(default=None, index=True)
    purpose: str
    channel: str
    destination: str
    subject: str
    body_encrypted: bytes = Field(sa_column=Column(sa.LargeBinary, nullable=False))
    backend: str
    status: str = "sending"  # sending → sent | failed | uncertain
    provider_id: str | None = None
    secret_digest: str | None = None
    error: str | None = None
    created_at: datetime = _created()
    sent_at: datetime | None = _when(nullable=True)


class AuditEntry(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    event_key: str | None = Field(default=None, unique=True)
    firm_id: int | None = Field(default=None, index=True)
    engagement_id: int | None = Field(default=None, index=True)
    actor: str  # "preparer:<id>", "taxpayer:<role>", "system"
    action: str
    detail: str = "{}"
    ip: str | None = None
    user_agent: str | None = None
    at: datetime = _created()
    # Hash chain (core/audit_chain.py): filled in order by the sealer, each entry committing to the last.
    chain_seq: int | None = Field(default=None, unique=True)
    prev_hash: str | None = None
    entry_hash: str | None = None


class EngagementStatus(SQLModel, table=True):
    """The dashboard's projection of the workflow, written by the workflow's own activity."""

    __table_args__ = (
        sa.Index("ix_status_firm_stage_since", "firm_id", "stage", "waiting_since"),
        sa.Index("ix_status_firm_activity", "firm_id", "last_activity_at"),
        # The preparer dashboard (services/dashboard.py): one index per sortable column, firm first and the
        # engagement id last, so every page is an index range scan however the table is sorted; and the
        # two filters it offers (stage, preparer) with the default sort.
        sa.Index("ix_status_firm_id", "firm_id", "engagement_id"),
        sa.Index("ix_status_firm_name", "firm_id", "taxpayer_name", "engagement_id"),
        sa.Index("ix_status_firm_year", "firm_id", "tax_year", "engagement_id"),
        sa.Index("ix_status_firm_waiting_on", "firm_id", "waiting_on", "engagement_id"),
        sa.Index("ix_status_firm_since", "firm_id", "waiting_since", "engagement_id"),
        sa.Index("ix_status_firm_reminders", "firm_id", "reminders_sent", "engagement_id"),
        sa.Index("ix_status_firm_activity_id", "firm_id", "last_activity_at", "engagement_id"),
        sa.Index("ix_status_firm_stage_activity", "firm_id", "stage", "last_activity_at", "engagement_id"),
        sa.Index("ix_status_firm_stage_waiting", "firm_id", "stage", "waiting_since", "engagement_id"),
        sa.Index(
            "ix_status_firm_preparer_activity", "firm_id", "preparer_id", "last_activity_at", "engagement_id"
        ),
        sa.Index("ix_status_firm_preparer_stage", "firm_id", "preparer_id", "stage"),  # the counts, filtered
    )

    engagement_id: int = Field(primary_key=True, foreign_key="engagement.id")
    firm_id: int = Field(index=True)
    preparer_id: int = Field(index=True)
    tax_year: int
    taxpayer_name: str
    spouse_name: str | None = None
    stage: str
    waiting_on: str | None = None
    waiting_since: datetime | None = _when(nullable=True)
    reminders_sent: int = 0
    needs_attention: bool = False
    last_activity_at: datetime | None = _when(nullable=True)
    version: int = 0  # the workflow's change counter: an older write never overwrites a newer one
    detail: str = "{}"


class ProjectionVersion(SQLModel, table=True):
    """How many times a firm's dashboard projection changed (`EngagementStatus` rows and the search words):
    bumped in the same transaction as each write (`core.projection_version`), so an API process can keep
    the dashboard pages it computed for as long as the number stays the same (`services.dashboard`)."""

    firm_id: int = Field(primary_key=True, foreign_key="firm.id")
    version: int = Field(default=0, sa_type=sa.BigInteger)


class WebSession(SQLModel, table=True):
    id_hash: str = Field(primary_key=True)
    kind: str  # "preparer" or "taxpayer"
    subject_id: int = Field(index=True)
    created_at: datetime = _created()
    last_seen_at: datetime = _created()
    ip: str | None = None
    user_agent: str | None = None


class TrustedDevice(SQLModel, table=True):
    """A browser a taxpayer asked Portico to remember; the cookie holds a random token, this row its hash."""

    token_hash: str = Field(primary_key=True)
    account_id: int = Field(foreign_key="taxpayeraccount.id", index=True)
    created_at: datetime = _created()
    expires_at: datetime = _when(nullable=False)
    last_used_at: datetime = _created()
    ip: str | None = None
    user_agent: str | None = None


class LoginCode(SQLModel, table=True):
    """A one-time code for a login from a browser Portico does not know. Account security, not pipeline
    state: the API writes it. Wrong tries are summed over an account's recent codes, so asking for a new
    code does not reset them."""

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="taxpayeraccount.id", index=True)
    attempt_hash: str = Field(index=True)  # the pending login (its session row) this code belongs to
    channel: str
    code_digest: str
    created_at: datetime = _created()
    expires_at: datetime = _when(nullable=False)
    used_at: datetime | None = _when(nullable=True)
    wrong_tries: int = 0


# ---- preparer workspace: MFA, firm settings, search, imports (services/preparer_*.py) ------------


class PreparerMfa(SQLModel, table=True):
    """A preparer's authenticator (TOTP). The secret is encrypted; `enrolled_at` is set once a code from
    the app proved the enrolment, and from then on every login needs a code."""

    preparer_id: int = Field(primary_key=True, foreign_key="preparer.id")
    secret_encrypted: bytes = Field(sa_column=Column(sa.LargeBinary, nullable=False))
    created_at: datetime = _created()
    enrolled_at: datetime | None = _when(nullable=True)
    last_used_step: int = 0  # the newest TOTP time step accepted: a code is never accepted twice
    failed_attempts: int = 0
    locked_until: datetime | None = _when(nullable=True)


class RecoveryCode(SQLModel, table=True):
    """One-time recovery codes, shown once at enrolment; only their keyed digests are kept."""

    id: int | None = Field(default=None, primary_key=True)
    preparer_id: int = Field(foreign_key="preparer.id", index=True)
    code_digest: str
    created_at: datetime = _created()
    used_at: datetime | None = _when(nullable=True)


class PreparerInvite(SQLModel, table=True):
    """A colleague invited to the firm: the link (its token hashed here) lets them choose a password."""

    id: int | None = Field(default=None, primary_key=True)
    firm_id: int = Field(foreign_key="firm.id", index=True)
    email: str = Field(index=True)
    name: str
    token_hash: str = Field(unique=True)
    invited_by: int = Field(foreign_key="preparer.id")
    created_at: datetime = _created()
    expires_at: datetime = _when(nullable=False)
    accepted_at: datetime | None = _when(nullable=True)


class FirmSettings(SQLModel, table=True):
    """A firm's own reminder schedule, quiet hours and time zone; new engagements start with them."""

    firm_id: int = Field(primary_key=True, foreign_key="firm.id")
    time_zone: str = "America/New_York"
    invite_reminder_days: int = 2
    invite_reminders_max: int = 3
    invite_expires_days: int = 14
    verify_reminder_hours: int = 1
    signature_reminder_first_days: int = 2
    signature_reminder_interval_days: int = 3
    signature_reminders_max: int = 4
    quiet_hours_start: int = 21
    quiet_hours_end: int = 8
    updated_at: datetime = _created()
    updated_by: int | None = None
    # Completed engagements are kept this many years, then disposed of (core/retention.py); never fewer
    # than the three the IRS asks for the e-signature record of Form 8879.
    retention_years: int = Field(default=3, sa_column_kwargs={"server_default": "3"})
    # The firm as its clients reach it, shown in the portal's firm contact.
    address: str | None = None
    phone: str | None = None
    email: str | None = None
    hours: str | None = None  # e.g. "Mon-Fri 9-5; Saturdays in March and April 10-2"
    # Identity proofing before a remote signature (services.proofing): which provider asks the questions,
    # and which forms need it ("8879", "8878", "other"; comma-separated). None: the installation's
    # (PORTICO_PROOFING_PROVIDER, PORTICO_PROOFING_FORMS).
    proofing_provider: str | None = None
    proofing_forms: str | None = None


class MessageTemplate(SQLModel, table=True):
    """A firm's wording for one message (purpose + channel); absent means Portico's default wording."""

    __table_args__ = (sa.UniqueConstraint("firm_id", "purpose", "channel"),)

    id: int | None = Field(default=None, primary_key=True)
    firm_id: int = Field(foreign_key="firm.id", index=True)
    purpose: str
    channel: str
    subject: str = ""
    body: str
    updated_at: datetime = _created()
    updated_by: int | None = None


class EngagementSearchTerm(SQLModel, table=True):
    """Words the dashboard search matches by prefix: names, email, phone digits of every signer.

    Written with the engagement (identity data, not pipeline state). Bytewise ("C") collation on
    PostgreSQL, as SQLite compares, so `term >= 'smi' AND term < 'smj'` is one index range on both."""

    firm_id: int = Field(primary_key=True)
    term: str = Field(
        sa_column=Column(sa.String().with_variant(sa.String(collation="C"), "postgresql"), primary_key=True)
    )
    engagement_id: int = Field(primary_key=True, foreign_key="engagement.id", index=True)


class ImportBatch(SQLModel, table=True):
    """One run of a CSV import: who, which file, and what it did."""

    id: int | None = Field(default=None, primary_key=True)
    firm_id: int = Field(foreign_key="firm.id", index=True)
    preparer_id: int = Field(foreign_key="preparer.id")
    file_name: str
    file_sha256: str
    rows: int = 0
    created: int = 0
    skipped: int = 0
    source: str = "web"  # "web" or "cli"
    created_at: datetime = _created()
    finished_at: datetime | None = _when(nullable=True)


class ImportedRow(SQLModel, table=True):
    """The stable key of each imported return (firm + tax year + keyed SSN digest): importing the same
    row again finds it here and creates nothing."""

    __table_args__ = (sa.UniqueConstraint("firm_id", "row_key"),)

    id: int | None = Field(default=None, primary_key=True)
    firm_id: int = Field(foreign_key="firm.id")
    row_key: str
    batch_id: int = Field(foreign_key="importbatch.id", index=True)
    engagement_id: int | None = Field(default=None, foreign_key="engagement.id")


class ThrottleState(SQLModel, table=True):
    """Attempts per account or per IP on login, registration, code request and code entry (`core.throttle`).

    Kept in the database so every API process sees the same counts; `key_hash` is a SHA-256 of the key.
    """

    scope: str = Field(primary_key=True)  # e.g. "taxpayer-login:account", "taxpayer-login:ip"
    key_hash: str = Field(primary_key=True)
    attempts: int = 0
    last_attempt_at: datetime = _created()
    next_allowed_at: datetime | None = _when(nullable=True)


class Disposal(SQLModel, table=True):
    """What is left of an engagement once its documents and personal data are disposed of: that it
    existed, when it closed, when it went, how much went, and the audit chain's head before it went.

    Written when the disposal starts (`disposed_at` empty) and finished when it ends, so a disposal cut
    short is found and completed, and its counts are those of the engagement as it was."""

    engagement_id: int = Field(primary_key=True, foreign_key="engagement.id")
    firm_id: int = Field(index=True)
    tax_year: int
    stage: str  # completed or cancelled
    completed_at: datetime = _when(nullable=False)
    retention_years: int
    started_at: datetime = _when(nullable=False)
    disposed_at: datetime | None = _when(nullable=True)
    documents: int = 0
    signatures: int = 0
    signers: int = 0
    chat_messages: int = 0
    outbox_messages: int = 0
    certificate_sha256: str | None = None  # which certificate of completion existed, without its content
    audit_anchor: str | None = None  # `SEQ:LINK` of the audit chain when the disposal started


class AccountEmail(SQLModel, table=True):
    """An email address a client account signs in with and receives messages at: the one it registered
    with, and each one added later (proved by a code). `verified_at` is set once proved."""

    __table_args__ = (sa.UniqueConstraint("account_id", "email"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="taxpayeraccount.id", index=True)
    email: str = Field(index=True)
    verified_at: datetime | None = _when(nullable=True)
    created_at: datetime = _created()


class Notification(SQLModel, table=True):
    """Something the firm or Portico tells a client account (documents to sign, a message, a return
    complete): the bell's list. Ids only grow, so a reader's cursor is the last id it saw."""

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="taxpayeraccount.id", index=True)
    engagement_id: int | None = Field(default=None, foreign_key="engagement.id", index=True)
    kind: str  # documents_sent, message, signature_needed, completed, firm_message, ...
    title: str
    body: str = ""  # a firm's message shown once (kind firm_message); otherwise empty
    link: str = ""  # the page it opens, e.g. /portal/documents
    created_at: datetime = _created()
    read_at: datetime | None = _when(nullable=True)


class PlacementTemplate(SQLModel, table=True):
    """A firm's saved signature places for one form (say Form 8879 from its tax software), applied again
    to a document whose fingerprint matches: the same pages, sizes and rotations, and nearly the same
    printed words on the first page (`services.placement_templates`)."""

    id: int | None = Field(default=None, primary_key=True)
    firm_id: int = Field(foreign_key="firm.id", index=True)
    name: str
    geometry: str  # page count, then each page's visible size and rotation: "2:612x792r0,612x792r0"
    words: str  # JSON: the first page's words made of letters only, sorted (the form's, not the client's)
    places: str  # JSON list of esign.boxes places, PDF points
    created_at: datetime = _created()
    created_by: int | None = None
    updated_at: datetime = _created()


class SignatureLabel(SQLModel, table=True):
    """A firm's own printed label for a signer's signature line (e.g. "Client signature" for the
    taxpayer), looked for besides the labels of the forms Portico knows."""

    __table_args__ = (sa.UniqueConstraint("firm_id", "role", "text"),)

    id: int | None = Field(default=None, primary_key=True)
    firm_id: int = Field(foreign_key="firm.id", index=True)
    role: str  # taxpayer or spouse
    text: str
    created_at: datetime = _created()
    created_by: int | None = None


class EsignConsent(SQLModel, table=True):
    """A client account's consent to sign electronically (ESIGN Act §101(c)): which version of the firm's
    disclosure it agreed to, when and from where (`services.consent`). A new version of the text asks again.
    Ids without foreign keys, so that disposing of an account (core/retention.py) is not blocked by them."""

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(index=True)
    firm_id: int = Field(index=True)
    version: int
    text_sha256: str  # the disclosure exactly as shown
    agreed_at: datetime = _created()
    ip: str | None = None
    user_agent: str | None = None
    withdrawn_at: datetime | None = _when(nullable=True)


class IdentityCheck(SQLModel, table=True):
    """One set of identity-proofing questions a signer was asked (`services.proofing`): the provider's id of
    the set, and once answered the outcome and the provider's reference. Never the questions or answers."""

    __table_args__ = (sa.UniqueConstraint("engagement_id", "role", "set_number"),)

    id: int | None = Field(default=None, primary_key=True)
    engagement_id: int = Field(foreign_key="engagement.id", index=True)
    role: Role
    set_number: int  # 1, 2, 3 (more after a preparer unlocked another set)
    provider: str
    check_id: str  # the provider's id of the set
    started_at: datetime = _created()
    outcome: str | None = None  # "passed" or "failed"; none while the set is open
    answered_at: datetime | None = _when(nullable=True)
    reference_id: str | None = None  # the provider's reference for the set, kept in the e-signature record
    ip: str | None = None


class IdentityUnlock(SQLModel, table=True):
    """A preparer allowed a signer one more set of questions after the sets ran out, and why (audited)."""

    id: int | None = Field(default=None, primary_key=True)
    engagement_id: int = Field(foreign_key="engagement.id", index=True)
    role: Role
    preparer_id: int = Field(foreign_key="preparer.id")
    reason: str
    at: datetime = _created()
