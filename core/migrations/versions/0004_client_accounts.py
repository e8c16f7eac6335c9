"""Client accounts: one account per person within a firm, reaching any number of engagement signers.

- `accountlink` (signer, account, engagement, when, how): what an account reaches. Every existing account
  gets the link to the signer it was registered for; no two accounts are ever merged.
- `taxpayeraccount.signer_id` is no longer unique nor required: it stays as the signer whose invitation
  created the account, until that return is disposed of; `taxpayeraccount.firm_id` says whose client the
  person is (filled in from that signer).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of the model type (core.models.UTCDateTime is a TypeDecorator over this).
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "accountlink",
        sa.Column("signer_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("engagement_id", sa.Integer(), nullable=False),
        sa.Column("linked_at", UTC_DATETIME, nullable=False),
        sa.Column("via", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["taxpayeraccount.id"], name=op.f("accountlink_account_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["engagement_id"], ["engagement.id"], name=op.f("accountlink_engagement_id_fkey")
        ),
        sa.ForeignKeyConstraint(["signer_id"], ["signer.id"], name=op.f("accountlink_signer_id_fkey")),
        sa.PrimaryKeyConstraint("signer_id", name=op.f("accountlink_pkey")),
    )
    op.create_index(op.f("ix_accountlink_account_id"), "accountlink", ["account_id"], unique=False)
    op.create_index(op.f("ix_accountlink_engagement_id"), "accountlink", ["engagement_id"], unique=False)
    op.execute(
        "INSERT INTO accountlink (signer_id, account_id, engagement_id, linked_at, via) "
        "SELECT a.signer_id, a.id, s.engagement_id, a.created_at, 'registration' "
        "FROM taxpayeraccount a JOIN signer s ON s.id = a.signer_id"
    )
    with op.batch_alter_table("taxpayeraccount") as batch:
        batch.drop_constraint("taxpayeraccount_signer_id_key", type_="unique")
        batch.alter_column("signer_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("firm_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("taxpayeraccount_firm_id_fkey"), "firm", ["firm_id"], ["id"])
    op.create_index(op.f("ix_taxpayeraccount_signer_id"), "taxpayeraccount", ["signer_id"], unique=False)
    op.create_index(op.f("ix_taxpayeraccount_firm_id"), "taxpayeraccount", ["firm_id"], unique=False)
    op.execute(
        "UPDATE taxpayeraccount SET firm_id = (SELECT e.firm_id FROM signer s "
        "JOIN engagement e ON e.id = s.engagement_id WHERE s.id = taxpayeraccount.signer_id)"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_taxpayeraccount_firm_id"), table_name="taxpayeraccount")
    op.drop_index(op.f("ix_taxpayeraccount_signer_id"), table_name="taxpayeraccount")
    with op.batch_alter_table("taxpayeraccount") as batch:
        batch.drop_constraint("taxpayeraccount_firm_id_fkey", type_="foreignkey")
        batch.drop_column("firm_id")
        batch.alter_column("signer_id", existing_type=sa.Integer(), nullable=False)
        batch.create_unique_constraint("taxpayeraccount_signer_id_key", ["signer_id"])
    op.drop_index(op.f("ix_accountlink_engagement_id"), table_name="accountlink")
    op.drop_index(op.f("ix_accountlink_account_id"), table_name="accountlink")
    op.drop_table("accountlink")
