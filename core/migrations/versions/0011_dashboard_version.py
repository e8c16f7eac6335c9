"""The dashboard's projection version, and the index the Returning badge looks earlier returns up by.

- `projectionversion`: one number per firm that moves with every change to its dashboard rows
  (`core.projection_version`); none for any firm yet, which reads as 0 until its first change.
- `ix_signer_last4_engagement` on `signer (ssn_last4_digest, engagement_id)`: the badge's lookup of a
  page's last fours among the returns filed under their last names (services/dashboard.py).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "projectionversion",
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["firm_id"], ["firm.id"], name=op.f("projectionversion_firm_id_fkey")),
        sa.PrimaryKeyConstraint("firm_id", name=op.f("projectionversion_pkey")),
    )
    op.create_index(
        "ix_signer_last4_engagement", "signer", ["ssn_last4_digest", "engagement_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_signer_last4_engagement", table_name="signer")
    op.drop_table("projectionversion")
