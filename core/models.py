"""Database tables. Pipeline state is written only by activities the engagement workflow calls."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Column, Field, SQLModel


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


class Role(StrEnum):
    TAXPAYER = "taxpayer"
    SPOUSE = "spouse"


class Direction(StrEnum):
    TO_CLIENT = "to_client"
    TO_PREPARER = "to_preparer"


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
    created_at: datetime = _created()


class Engagement(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    firm_id: int = Field(foreign_key="firm.id", index=True)
    preparer_id: int = Field(foreign_key="preparer.id", index=True)
    tax_year: int
    created_at: datetime = _created()

    @property
    def workflow_id(self) -> str:
        return f"engagement-{self.id}"


class Signer(SQLModel, table=True):
    """A person who must sign: the taxpayer and, on a joint return, the spouse."""

    __table_args__ = (sa.UniqueConstraint("engagement_id", "role"),)

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

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


class TaxpayerAccount(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    signer_id: int = Field(foreign_key="signer.id", unique=True)
    username: str = Field(unique=True)
    password_hash: str
    email: str
    phone: str
    created_at: datetime = _created()
    verified_at: datetime | None = _when(nullable=True)
    verified_channel: str | None = None


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


class EngagementStatus(SQLModel, table=True):
    """The dashboard's projection of the workflow, written by the workflow's own activity."""

    __table_args__ = (
        sa.Index("ix_status_firm_stage_since", "firm_id", "stage", "waiting_since"),
        sa.Index("ix_status_firm_activity", "firm_id", "last_activity_at"),
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


class WebSession(SQLModel, table=True):
    id_hash: str = Field(primary_key=True)
    kind: str  # "preparer" or "taxpayer"
    subject_id: int = Field(index=True)
    created_at: datetime = _created()
    last_seen_at: datetime = _created()
    ip: str | None = None
    user_agent: str | None = None
