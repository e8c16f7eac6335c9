"""Identity proofing before a remote signature (IRS Pub 1345 for Forms 8879 and 8878).

- `signer.identity_details_encrypted`: date of birth and street address the provider needs, encrypted;
  none for existing signers (the preparer enters them on the engagement page).
- `document.form`: "8879", "8878" or "" as read from a document's text when sent; none for documents sent
  before this revision (their file name decides, `services.proofing.form_of`).
- `firmsettings.proofing_provider` and `firmsettings.proofing_forms`: none for every firm, which means the
  installation's settings (by default the `dev` provider, and Forms 8879 and 8878).
- `identitycheck`: each set of questions a signer was asked, its outcome and the provider's reference.
- `identityunlock`: a preparer's audited "one more set" after the sets ran out.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the model types (see 0001).
UTC_DATETIME = sa.DateTime(timezone=True)
ROLE = sa.Enum("TAXPAYER", "SPOUSE", name="role", create_type=False)


def upgrade() -> None:
    with op.batch_alter_table("signer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("identity_details_encrypted", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.add_column(sa.Column("form", sa.String(), nullable=True))
    with op.batch_alter_table("firmsettings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("proofing_provider", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("proofing_forms", sa.String(), nullable=True))
    op.create_table(
        "identitycheck",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("engagement_id", sa.Integer(), nullable=False),
        sa.Column("role", ROLE, nullable=False),
        sa.Column("set_number", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("check_id", sa.String(), nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.Column("answered_at", UTC_DATETIME, nullable=True),
        sa.Column("reference_id", sa.String(), nullable=True),
        sa.Column("ip", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["engagement_id"], ["engagement.id"], name=op.f("identitycheck_engagement_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("identitycheck_pkey")),
        sa.UniqueConstraint(
            "engagement_id",
            "role",
            "set_number",
            name=op.f("identitycheck_engagement_id_role_set_number_key"),
        ),
    )
    op.create_index(op.f("ix_identitycheck_engagement_id"), "identitycheck", ["engagement_id"], unique=False)
    op.create_table(
        "identityunlock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("engagement_id", sa.Integer(), nullable=False),
        sa.Column("role", ROLE, nullable=False),
        sa.Column("preparer_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["engagement_id"], ["engagement.id"], name=op.f("identityunlock_engagement_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["preparer_id"], ["preparer.id"], name=op.f("identityunlock_preparer_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("identityunlock_pkey")),
    )
    op.create_index(
        op.f("ix_identityunlock_engagement_id"), "identityunlock", ["engagement_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_identityunlock_engagement_id"), table_name="identityunlock")
    op.drop_table("identityunlock")
    op.drop_index(op.f("ix_identitycheck_engagement_id"), table_name="identitycheck")
    op.drop_table("identitycheck")
    with op.batch_alter_table("firmsettings", schema=None) as batch_op:
        batch_op.drop_column("proofing_forms")
        batch_op.drop_column("proofing_provider")
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.drop_column("form")
    with op.batch_alter_table("signer", schema=None) as batch_op:
        batch_op.drop_column("identity_details_encrypted")
