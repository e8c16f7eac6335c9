"""Retention and disposal: a firm's retention period, legal holds, and the record of each disposal.

- `firmsettings.retention_years` (3 for every existing firm: the IRS's three years for Form 8879);
- `engagement.legal_hold` (false for every existing engagement) with who placed it, when and why, and
  `engagement.disposed_at`;
- the `disposal` table: the minimum record that an engagement's documents and personal data went.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-11
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of the model type (core.models.UTCDateTime is a TypeDecorator over this).
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("firmsettings") as batch:
        batch.add_column(sa.Column("retention_years", sa.Integer(), server_default="3", nullable=False))
    with op.batch_alter_table("engagement") as batch:
        batch.add_column(sa.Column("legal_hold", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("legal_hold_reason", sa.String(), nullable=True))
        batch.add_column(sa.Column("legal_hold_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("legal_hold_at", UTC_DATETIME, nullable=True))
        batch.add_column(sa.Column("disposed_at", UTC_DATETIME, nullable=True))
    op.create_table(
        "disposal",
        sa.Column("engagement_id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("tax_year", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(), nullable=False),
        sa.Column("completed_at", UTC_DATETIME, nullable=False),
        sa.Column("retention_years", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("disposed_at", UTC_DATETIME, nullable=True),
        sa.Column("documents", sa.Integer(), nullable=False),
        sa.Column("signatures", sa.Integer(), nullable=False),
        sa.Column("signers", sa.Integer(), nullable=False),
        sa.Column("chat_messages", sa.Integer(), nullable=False),
        sa.Column("outbox_messages", sa.Integer(), nullable=False),
        sa.Column("certificate_sha256", sa.String(), nullable=True),
        sa.Column("audit_anchor", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["engagement_id"], ["engagement.id"], name=op.f("disposal_engagement_id_fkey")
        ),
        sa.PrimaryKeyConstraint("engagement_id", name=op.f("disposal_pkey")),
    )
    op.create_index(op.f("ix_disposal_firm_id"), "disposal", ["firm_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_disposal_firm_id"), table_name="disposal")
    op.drop_table("disposal")
    with op.batch_alter_table("engagement") as batch:
        batch.drop_column("disposed_at")
        batch.drop_column("legal_hold_at")
        batch.drop_column("legal_hold_by")
        batch.drop_column("legal_hold_reason")
        batch.drop_column("legal_hold")
    with op.batch_alter_table("firmsettings") as batch:
        batch.drop_column("retention_years")
