"""Signature places: a firm's templates of places per form, and its own signature labels.

- `placementtemplate`: the places a preparer saved for one form, with the form's fingerprint (page
  geometry and the first page's printed words) that finds it again next time.
- `signaturelabel`: the firm's own label texts per signer, looked for when places are found.

Both start empty; no existing row changes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of the model type (core.models.UTCDateTime is a TypeDecorator over this).
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "placementtemplate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("geometry", sa.String(), nullable=False),
        sa.Column("words", sa.String(), nullable=False),
        sa.Column("places", sa.String(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["firm_id"], ["firm.id"], name=op.f("placementtemplate_firm_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("placementtemplate_pkey")),
    )
    op.create_index(op.f("ix_placementtemplate_firm_id"), "placementtemplate", ["firm_id"], unique=False)
    op.create_table(
        "signaturelabel",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["firm_id"], ["firm.id"], name=op.f("signaturelabel_firm_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("signaturelabel_pkey")),
        sa.UniqueConstraint("firm_id", "role", "text", name=op.f("signaturelabel_firm_id_role_text_key")),
    )
    op.create_index(op.f("ix_signaturelabel_firm_id"), "signaturelabel", ["firm_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_signaturelabel_firm_id"), table_name="signaturelabel")
    op.drop_table("signaturelabel")
    op.drop_index(op.f("ix_placementtemplate_firm_id"), table_name="placementtemplate")
    op.drop_table("placementtemplate")
