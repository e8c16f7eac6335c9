"""Declining a document, signing it on paper, sending a corrected copy, and the firm's download.

- `signature.method`: "electronic" (every signature before this revision) or "paper"; a paper signature
  names who attested it and the uploaded scan that shows it.
- `signature.declined_at` / `decline_reason`: a signer declined to sign this document, and why.
- `document.replaced_by`: the corrected copy sent in this document's place.
- `document.downloaded_at`: when the firm first downloaded the signed copy.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of the model type (core.models.UTCDateTime is a TypeDecorator over this).
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("signature", schema=None) as batch_op:
        batch_op.add_column(sa.Column("method", sa.String(), server_default="electronic", nullable=False))
        batch_op.add_column(sa.Column("attested_by", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("scan_document_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("declined_at", UTC_DATETIME, nullable=True))
        batch_op.add_column(sa.Column("decline_reason", sa.String(), nullable=True))
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replaced_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("downloaded_at", UTC_DATETIME, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.drop_column("downloaded_at")
        batch_op.drop_column("replaced_by")
    with op.batch_alter_table("signature", schema=None) as batch_op:
        batch_op.drop_column("decline_reason")
        batch_op.drop_column("declined_at")
        batch_op.drop_column("scan_document_id")
        batch_op.drop_column("attested_by")
        batch_op.drop_column("method")
