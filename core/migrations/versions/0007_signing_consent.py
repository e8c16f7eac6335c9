"""Ways to sign and consent to sign electronically.

- `signer.signature_method`: how the signature on file was made (drawn, typed, uploaded). A signature
  saved before this revision was drawn (the portal had no other way), so those rows say `drawn`.
- `esignconsent`: each client account's consent to sign electronically (ESIGN Act §101(c)): the
  disclosure's version and digest, when, and from which address and browser. Starts empty.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of the model type (core.models.UTCDateTime is a TypeDecorator over this).
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("signer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signature_method", sa.String(), nullable=True))
    signer = sa.table(
        "signer", sa.column("signature_key", sa.String()), sa.column("signature_method", sa.String())
    )
    op.execute(signer.update().where(signer.c.signature_key.is_not(None)).values(signature_method="drawn"))
    op.create_table(
        "esignconsent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("text_sha256", sa.String(), nullable=False),
        sa.Column("agreed_at", UTC_DATETIME, nullable=False),
        sa.Column("ip", sa.String(), nullable=True),
        sa.Column("user_agent", sa.String(), nullable=True),
        sa.Column("withdrawn_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("esignconsent_pkey")),
    )
    op.create_index(op.f("ix_esignconsent_account_id"), "esignconsent", ["account_id"], unique=False)
    op.create_index(op.f("ix_esignconsent_firm_id"), "esignconsent", ["firm_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_esignconsent_firm_id"), table_name="esignconsent")
    op.drop_index(op.f("ix_esignconsent_account_id"), table_name="esignconsent")
    op.drop_table("esignconsent")
    with op.batch_alter_table("signer", schema=None) as batch_op:
        batch_op.drop_column("signature_method")
