"""Client hub: more than one email per account, notifications, private uploads, the firm's contact.

- `accountemail`: the addresses an account signs in with; every existing account's email is copied in,
  verified when the account was.
- `notification`: what the portal's bell lists, per account.
- `document.private` (false for every existing document), `preparer.phone` (empty), and the firm's
  `address`, `phone`, `email` and `hours` on `firmsettings` (none yet).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of the model type (core.models.UTCDateTime is a TypeDecorator over this).
UTC_DATETIME = sa.DateTime(timezone=True)
FIRM_CONTACT = ("address", "phone", "email", "hours")


def upgrade() -> None:
    op.create_table(
        "accountemail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("verified_at", UTC_DATETIME, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["taxpayeraccount.id"], name=op.f("accountemail_account_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("accountemail_pkey")),
        sa.UniqueConstraint("account_id", "email", name=op.f("accountemail_account_id_email_key")),
    )
    op.create_index(op.f("ix_accountemail_account_id"), "accountemail", ["account_id"], unique=False)
    op.create_index(op.f("ix_accountemail_email"), "accountemail", ["email"], unique=False)
    op.execute(
        "INSERT INTO accountemail (account_id, email, verified_at, created_at) "
        "SELECT id, email, verified_at, created_at FROM taxpayeraccount WHERE email <> ''"
    )
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("engagement_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("body", sa.String(), nullable=False),
        sa.Column("link", sa.String(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("read_at", UTC_DATETIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["taxpayeraccount.id"], name=op.f("notification_account_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["engagement_id"], ["engagement.id"], name=op.f("notification_engagement_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("notification_pkey")),
    )
    op.create_index(op.f("ix_notification_account_id"), "notification", ["account_id"], unique=False)
    op.create_index(op.f("ix_notification_engagement_id"), "notification", ["engagement_id"], unique=False)
    with op.batch_alter_table("document") as batch:
        batch.add_column(sa.Column("private", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("preparer") as batch:
        batch.add_column(sa.Column("phone", sa.String(), nullable=True))
    with op.batch_alter_table("firmsettings") as batch:
        for name in FIRM_CONTACT:
            batch.add_column(sa.Column(name, sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("firmsettings") as batch:
        for name in reversed(FIRM_CONTACT):
            batch.drop_column(name)
    with op.batch_alter_table("preparer") as batch:
        batch.drop_column("phone")
    with op.batch_alter_table("document") as batch:
        batch.drop_column("private")
    op.drop_index(op.f("ix_notification_engagement_id"), table_name="notification")
    op.drop_index(op.f("ix_notification_account_id"), table_name="notification")
    op.drop_table("notification")
    op.drop_index(op.f("ix_accountemail_email"), table_name="accountemail")
    op.drop_index(op.f("ix_accountemail_account_id"), table_name="accountemail")
    op.drop_table("accountemail")
