"""The first release's schema (main at commit 6be0d67, before "One house"), as its create_all made it.

A database that release made is stamped at this revision, not run through it (core.migrations), so this
must stay exactly that schema: tests/test_core/test_migrations.py checks a first-release database against it.
Constraint names are PostgreSQL's defaults for the release's unnamed constraints (the metadata's naming
convention reproduces them), so a PostgreSQL database of that release already carries them.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the model types, not imports: a revision must not change when the models do.
# core.models.UTCDateTime is a TypeDecorator over this; SQLModel stores enum *names* (TAXPAYER); on
# PostgreSQL the two enums are native types, created once by the first table that uses them.
UTC_DATETIME = sa.DateTime(timezone=True)
ROLE = sa.Enum("TAXPAYER", "SPOUSE", name="role")
DIRECTION = sa.Enum("TO_CLIENT", "TO_PREPARER", name="direction")


def upgrade() -> None:
    op.create_table(
        "auditentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_key", sa.String(), nullable=True),
        sa.Column("firm_id", sa.Integer(), nullable=True),
        sa.Column("engagement_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
        sa.Column("ip", sa.String(), nullable=True),
        sa.Column("user_agent", sa.String(), nullable=True),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("chain_seq", sa.Integer(), nullable=True),
        sa.Column("prev_hash", sa.String(), nullable=True),
        sa.Column("entry_hash", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("auditentry_pkey")),
        sa.UniqueConstraint("chain_seq", name=op.f("auditentry_chain_seq_key")),
        sa.UniqueConstraint("event_key", name=op.f("auditentry_event_key_key")),
    )
    op.create_index(op.f("ix_auditentry_engagement_id"), "auditentry", ["engagement_id"], unique=False)
    op.create_index(op.f("ix_auditentry_firm_id"), "auditentry", ["firm_id"], unique=False)
    op.create_table(
        "firm",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("firm_pkey")),
    )
    op.create_table(
        "outboxmessage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(), nullable=False),
        sa.Column("engagement_id", sa.Integer(), nullable=True),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("destination", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("body_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("backend", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("provider_id", sa.String(), nullable=True),
        sa.Column("secret_digest", sa.String(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("sent_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("outboxmessage_pkey")),
        sa.UniqueConstraint("idempotency_key", name=op.f("outboxmessage_idempotency_key_key")),
    )
    op.create_index(op.f("ix_outboxmessage_engagement_id"), "outboxmessage", ["engagement_id"], unique=False)
    op.create_table(
        "throttlestate",
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("key_hash", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt_at", UTC_DATETIME, nullable=False),
        sa.Column("next_allowed_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("scope", "key_hash", name=op.f("throttlestate_pkey")),
    )
    op.create_table(
        "websession",
        sa.Column("id_hash", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("last_seen_at", UTC_DATETIME, nullable=False),
        sa.Column("ip", sa.String(), nullable=True),
        sa.Column("user_agent", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("websession_pkey")),
    )
    op.create_index(op.f("ix_websession_subject_id"), "websession", ["subject_id"], unique=False)
    op.create_table(
        "firmsettings",
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("time_zone", sa.String(), nullable=False),
        sa.Column("invite_reminder_days", sa.Integer(), nullable=False),
        sa.Column("invite_reminders_max", sa.Integer(), nullable=False),
        sa.Column("invite_expires_days", sa.Integer(), nullable=False),
        sa.Column("verify_reminder_hours", sa.Integer(), nullable=False),
        sa.Column("signature_reminder_first_days", sa.Integer(), nullable=False),
        sa.Column("signature_reminder_interval_days", sa.Integer(), nullable=False),
        sa.Column("signature_reminders_max", sa.Integer(), nullable=False),
        sa.Column("quiet_hours_start", sa.Integer(), nullable=False),
        sa.Column("quiet_hours_end", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["firm_id"], ["firm.id"], name=op.f("firmsettings_firm_id_fkey")),
        sa.PrimaryKeyConstraint("firm_id", name=op.f("firmsettings_pkey")),
    )
    op.create_table(
        "messagetemplate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("body", sa.String(), nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["firm_id"], ["firm.id"], name=op.f("messagetemplate_firm_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("messagetemplate_pkey")),
        sa.UniqueConstraint(
            "firm_id", "purpose", "channel", name=op.f("messagetemplate_firm_id_purpose_channel_key")
        ),
    )
    op.create_index(op.f("ix_messagetemplate_firm_id"), "messagetemplate", ["firm_id"], unique=False)
    op.create_table(
        "preparer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["firm_id"], ["firm.id"], name=op.f("preparer_firm_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("preparer_pkey")),
        sa.UniqueConstraint("email", name=op.f("preparer_email_key")),
    )
    op.create_index(op.f("ix_preparer_firm_id"), "preparer", ["firm_id"], unique=False)
    op.create_table(
        "engagement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("preparer_id", sa.Integer(), nullable=False),
        sa.Column("tax_year", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("certificate_key", sa.String(), nullable=True),
        sa.Column("certificate_sha256", sa.String(), nullable=True),
        sa.Column("sealed_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(["firm_id"], ["firm.id"], name=op.f("engagement_firm_id_fkey")),
        sa.ForeignKeyConstraint(["preparer_id"], ["preparer.id"], name=op.f("engagement_preparer_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("engagement_pkey")),
    )
    op.create_index(op.f("ix_engagement_firm_id"), "engagement", ["firm_id"], unique=False)
    op.create_index(op.f("ix_engagement_preparer_id"), "engagement", ["preparer_id"], unique=False)
    op.create_table(
        "importbatch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("preparer_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(), nullable=False),
        sa.Column("file_sha256", sa.String(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(["firm_id"], ["firm.id"], name=op.f("importbatch_firm_id_fkey")),
        sa.ForeignKeyConstraint(["preparer_id"], ["preparer.id"], name=op.f("importbatch_preparer_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("importbatch_pkey")),
    )
    op.create_index(op.f("ix_importbatch_firm_id"), "importbatch", ["firm_id"], unique=False)
    op.create_table(
        "preparerinvite",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("invited_by", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.Column("accepted_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(["firm_id"], ["firm.id"], name=op.f("preparerinvite_firm_id_fkey")),
        sa.ForeignKeyConstraint(["invited_by"], ["preparer.id"], name=op.f("preparerinvite_invited_by_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("preparerinvite_pkey")),
        sa.UniqueConstraint("token_hash", name=op.f("preparerinvite_token_hash_key")),
    )
    op.create_index(op.f("ix_preparerinvite_email"), "preparerinvite", ["email"], unique=False)
    op.create_index(op.f("ix_preparerinvite_firm_id"), "preparerinvite", ["firm_id"], unique=False)
    op.create_table(
        "preparermfa",
        sa.Column("preparer_id", sa.Integer(), nullable=False),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("enrolled_at", UTC_DATETIME, nullable=True),
        sa.Column("last_used_step", sa.Integer(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(["preparer_id"], ["preparer.id"], name=op.f("preparermfa_preparer_id_fkey")),
        sa.PrimaryKeyConstraint("preparer_id", name=op.f("preparermfa_pkey")),
    )
    op.create_table(
        "recoverycode",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("preparer_id", sa.Integer(), nullable=False),
        sa.Column("code_digest", sa.String(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("used_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(["preparer_id"], ["preparer.id"], name=op.f("recoverycode_preparer_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("recoverycode_pkey")),
    )
    op.create_index(op.f("ix_recoverycode_preparer_id"), "recoverycode", ["preparer_id"], unique=False)
    op.create_table(
        "chatmessage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("engagement_id", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(), nullable=False),
        sa.Column("sender_name", sa.String(), nullable=False),
        sa.Column("body", sa.String(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["engagement_id"], ["engagement.id"], name=op.f("chatmessage_engagement_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("chatmessage_pkey")),
    )
    op.create_index(op.f("ix_chatmessage_engagement_id"), "chatmessage", ["engagement_id"], unique=False)
    op.create_table(
        "document",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("engagement_id", sa.Integer(), nullable=False),
        sa.Column("direction", DIRECTION, nullable=False),
        sa.Column("upload_ref", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("content_type", sa.String(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column("storage_key", sa.String(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("current_key", sa.String(), nullable=False),
        sa.Column("current_sha256", sa.String(), nullable=False),
        sa.Column("uploaded_by", sa.String(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("signature_boxes", sa.String(), nullable=False),
        sa.Column("sealed_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["engagement_id"], ["engagement.id"], name=op.f("document_engagement_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("document_pkey")),
        sa.UniqueConstraint(
            "engagement_id", "upload_ref", name=op.f("document_engagement_id_upload_ref_key")
        ),
    )
    op.create_index(op.f("ix_document_engagement_id"), "document", ["engagement_id"], unique=False)
    op.create_table(
        "engagementsearchterm",
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("term", sa.String().with_variant(sa.String(collation="C"), "postgresql"), nullable=False),
        sa.Column("engagement_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["engagement_id"], ["engagement.id"], name=op.f("engagementsearchterm_engagement_id_fkey")
        ),
        sa.PrimaryKeyConstraint("firm_id", "term", "engagement_id", name=op.f("engagementsearchterm_pkey")),
    )
    op.create_index(
        op.f("ix_engagementsearchterm_engagement_id"), "engagementsearchterm", ["engagement_id"], unique=False
    )
    op.create_table(
        "engagementstatus",
        sa.Column("engagement_id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("preparer_id", sa.Integer(), nullable=False),
        sa.Column("tax_year", sa.Integer(), nullable=False),
        sa.Column("taxpayer_name", sa.String(), nullable=False),
        sa.Column("spouse_name", sa.String(), nullable=True),
        sa.Column("stage", sa.String(), nullable=False),
        sa.Column("waiting_on", sa.String(), nullable=True),
        sa.Column("waiting_since", UTC_DATETIME, nullable=True),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.Column("needs_attention", sa.Boolean(), nullable=False),
        sa.Column("last_activity_at", UTC_DATETIME, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["engagement_id"], ["engagement.id"], name=op.f("engagementstatus_engagement_id_fkey")
        ),
        sa.PrimaryKeyConstraint("engagement_id", name=op.f("engagementstatus_pkey")),
    )
    op.create_index(op.f("ix_engagementstatus_firm_id"), "engagementstatus", ["firm_id"], unique=False)
    op.create_index(
        op.f("ix_engagementstatus_preparer_id"), "engagementstatus", ["preparer_id"], unique=False
    )
    op.create_index(
        "ix_status_firm_activity", "engagementstatus", ["firm_id", "last_activity_at"], unique=False
    )
    op.create_index(
        "ix_status_firm_activity_id",
        "engagementstatus",
        ["firm_id", "last_activity_at", "engagement_id"],
        unique=False,
    )
    op.create_index("ix_status_firm_id", "engagementstatus", ["firm_id", "engagement_id"], unique=False)
    op.create_index(
        "ix_status_firm_name", "engagementstatus", ["firm_id", "taxpayer_name", "engagement_id"], unique=False
    )
    op.create_index(
        "ix_status_firm_preparer_activity",
        "engagementstatus",
        ["firm_id", "preparer_id", "last_activity_at", "engagement_id"],
        unique=False,
    )
    op.create_index(
        "ix_status_firm_preparer_stage", "engagementstatus", ["firm_id", "preparer_id", "stage"], unique=False
    )
    op.create_index(
        "ix_status_firm_reminders",
        "engagementstatus",
        ["firm_id", "reminders_sent", "engagement_id"],
        unique=False,
    )
    op.create_index(
        "ix_status_firm_since",
        "engagementstatus",
        ["firm_id", "waiting_since", "engagement_id"],
        unique=False,
    )
    op.create_index(
        "ix_status_firm_stage_activity",
        "engagementstatus",
        ["firm_id", "stage", "last_activity_at", "engagement_id"],
        unique=False,
    )
    op.create_index(
        "ix_status_firm_stage_since", "engagementstatus", ["firm_id", "stage", "waiting_since"], unique=False
    )
    op.create_index(
        "ix_status_firm_stage_waiting",
        "engagementstatus",
        ["firm_id", "stage", "waiting_since", "engagement_id"],
        unique=False,
    )
    op.create_index(
        "ix_status_firm_waiting_on",
        "engagementstatus",
        ["firm_id", "waiting_on", "engagement_id"],
        unique=False,
    )
    op.create_index(
        "ix_status_firm_year", "engagementstatus", ["firm_id", "tax_year", "engagement_id"], unique=False
    )
    op.create_table(
        "importedrow",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("row_key", sa.String(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("engagement_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["batch_id"], ["importbatch.id"], name=op.f("importedrow_batch_id_fkey")),
        sa.ForeignKeyConstraint(
            ["engagement_id"], ["engagement.id"], name=op.f("importedrow_engagement_id_fkey")
        ),
        sa.ForeignKeyConstraint(["firm_id"], ["firm.id"], name=op.f("importedrow_firm_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("importedrow_pkey")),
        sa.UniqueConstraint("firm_id", "row_key", name=op.f("importedrow_firm_id_row_key_key")),
    )
    op.create_index(op.f("ix_importedrow_batch_id"), "importedrow", ["batch_id"], unique=False)
    op.create_table(
        "signer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("engagement_id", sa.Integer(), nullable=False),
        sa.Column("role", ROLE, nullable=False),
        sa.Column("first_name", sa.String(), nullable=False),
        sa.Column("last_name", sa.String(), nullable=False),
        sa.Column("ssn_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("ssn_last4_digest", sa.String(), nullable=False),
        sa.Column("email", sa.String(), nullable=True),
        sa.Column("phone", sa.String(), nullable=True),
        sa.Column("time_zone", sa.String(), nullable=False),
        sa.Column("signature_key", sa.String(), nullable=True),
        sa.Column("signature_saved_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(["engagement_id"], ["engagement.id"], name=op.f("signer_engagement_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("signer_pkey")),
        sa.UniqueConstraint("engagement_id", "role", name=op.f("signer_engagement_id_role_key")),
    )
    op.create_index(op.f("ix_signer_email"), "signer", ["email"], unique=False)
    op.create_index(op.f("ix_signer_engagement_id"), "signer", ["engagement_id"], unique=False)
    op.create_index(op.f("ix_signer_phone"), "signer", ["phone"], unique=False)
    op.create_table(
        "signature",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("role", ROLE, nullable=False),
        sa.Column("signed_at", UTC_DATETIME, nullable=True),
        sa.Column("sha256_after", sa.String(), nullable=True),
        sa.Column("ip", sa.String(), nullable=True),
        sa.Column("user_agent", sa.String(), nullable=True),
        sa.Column("version_key", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"], name=op.f("signature_document_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("signature_pkey")),
        sa.UniqueConstraint("document_id", "role", name=op.f("signature_document_id_role_key")),
    )
    op.create_index(op.f("ix_signature_document_id"), "signature", ["document_id"], unique=False)
    op.create_table(
        "taxpayeraccount",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("signer_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("phone", sa.String(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("verified_at", UTC_DATETIME, nullable=True),
        sa.Column("verified_channel", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["signer_id"], ["signer.id"], name=op.f("taxpayeraccount_signer_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("taxpayeraccount_pkey")),
        sa.UniqueConstraint("signer_id", name=op.f("taxpayeraccount_signer_id_key")),
        sa.UniqueConstraint("username", name=op.f("taxpayeraccount_username_key")),
    )
    op.create_table(
        "logincode",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("attempt_hash", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("code_digest", sa.String(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.Column("used_at", UTC_DATETIME, nullable=True),
        sa.Column("wrong_tries", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["taxpayeraccount.id"], name=op.f("logincode_account_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("logincode_pkey")),
    )
    op.create_index(op.f("ix_logincode_account_id"), "logincode", ["account_id"], unique=False)
    op.create_index(op.f("ix_logincode_attempt_hash"), "logincode", ["attempt_hash"], unique=False)
    op.create_table(
        "trusteddevice",
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.Column("last_used_at", UTC_DATETIME, nullable=False),
        sa.Column("ip", sa.String(), nullable=True),
        sa.Column("user_agent", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["taxpayeraccount.id"], name=op.f("trusteddevice_account_id_fkey")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("trusteddevice_pkey")),
    )
    op.create_index(op.f("ix_trusteddevice_account_id"), "trusteddevice", ["account_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_trusteddevice_account_id"), table_name="trusteddevice")
    op.drop_table("trusteddevice")
    op.drop_index(op.f("ix_logincode_attempt_hash"), table_name="logincode")
    op.drop_index(op.f("ix_logincode_account_id"), table_name="logincode")
    op.drop_table("logincode")
    op.drop_table("taxpayeraccount")
    op.drop_index(op.f("ix_signature_document_id"), table_name="signature")
    op.drop_table("signature")
    op.drop_index(op.f("ix_signer_phone"), table_name="signer")
    op.drop_index(op.f("ix_signer_engagement_id"), table_name="signer")
    op.drop_index(op.f("ix_signer_email"), table_name="signer")
    op.drop_table("signer")
    op.drop_index(op.f("ix_importedrow_batch_id"), table_name="importedrow")
    op.drop_table("importedrow")
    op.drop_index("ix_status_firm_year", table_name="engagementstatus")
    op.drop_index("ix_status_firm_waiting_on", table_name="engagementstatus")
    op.drop_index("ix_status_firm_stage_waiting", table_name="engagementstatus")
    op.drop_index("ix_status_firm_stage_since", table_name="engagementstatus")
    op.drop_index("ix_status_firm_stage_activity", table_name="engagementstatus")
    op.drop_index("ix_status_firm_since", table_name="engagementstatus")
    op.drop_index("ix_status_firm_reminders", table_name="engagementstatus")
    op.drop_index("ix_status_firm_preparer_stage", table_name="engagementstatus")
    op.drop_index("ix_status_firm_preparer_activity", table_name="engagementstatus")
    op.drop_index("ix_status_firm_name", table_name="engagementstatus")
    op.drop_index("ix_status_firm_id", table_name="engagementstatus")
    op.drop_index("ix_status_firm_activity_id", table_name="engagementstatus")
    op.drop_index("ix_status_firm_activity", table_name="engagementstatus")
    op.drop_index(op.f("ix_engagementstatus_preparer_id"), table_name="engagementstatus")
    op.drop_index(op.f("ix_engagementstatus_firm_id"), table_name="engagementstatus")
    op.drop_table("engagementstatus")
    op.drop_index(op.f("ix_engagementsearchterm_engagement_id"), table_name="engagementsearchterm")
    op.drop_table("engagementsearchterm")
    op.drop_index(op.f("ix_document_engagement_id"), table_name="document")
    op.drop_table("document")
    op.drop_index(op.f("ix_chatmessage_engagement_id"), table_name="chatmessage")
    op.drop_table("chatmessage")
    op.drop_index(op.f("ix_recoverycode_preparer_id"), table_name="recoverycode")
    op.drop_table("recoverycode")
    op.drop_table("preparermfa")
    op.drop_index(op.f("ix_preparerinvite_firm_id"), table_name="preparerinvite")
    op.drop_index(op.f("ix_preparerinvite_email"), table_name="preparerinvite")
    op.drop_table("preparerinvite")
    op.drop_index(op.f("ix_importbatch_firm_id"), table_name="importbatch")
    op.drop_table("importbatch")
    op.drop_index(op.f("ix_engagement_preparer_id"), table_name="engagement")
    op.drop_index(op.f("ix_engagement_firm_id"), table_name="engagement")
    op.drop_table("engagement")
    op.drop_index(op.f("ix_preparer_firm_id"), table_name="preparer")
    op.drop_table("preparer")
    op.drop_index(op.f("ix_messagetemplate_firm_id"), table_name="messagetemplate")
    op.drop_table("messagetemplate")
    op.drop_table("firmsettings")
    op.drop_index(op.f("ix_websession_subject_id"), table_name="websession")
    op.drop_table("websession")
    op.drop_table("throttlestate")
    op.drop_index(op.f("ix_outboxmessage_engagement_id"), table_name="outboxmessage")
    op.drop_table("outboxmessage")
    op.drop_table("firm")
    op.drop_index(op.f("ix_auditentry_firm_id"), table_name="auditentry")
    op.drop_index(op.f("ix_auditentry_engagement_id"), table_name="auditentry")
    op.drop_table("auditentry")
    bind = op.get_bind()
    ROLE.drop(bind, checkfirst=True)  # no-ops on SQLite, where the enums are plain strings
    DIRECTION.drop(bind, checkfirst=True)
