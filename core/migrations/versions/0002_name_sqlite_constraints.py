"""Give a first-release SQLite database the constraint names a new one has.

The first release left its primary keys, unique constraints and foreign keys unnamed. PostgreSQL named
them itself (`<table>_<columns>_key`, `_fkey`, `_pkey`: the names the metadata's naming convention now
gives), but SQLite keeps them nameless, so a later revision could not drop one by name. This copies each
table that has a nameless constraint (SQLite's batch mode), naming them by the convention; rows, indexes
and column types are copied as they are. A database created by revision 0001 has names already and is
left alone, as is PostgreSQL.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of core.models.NAMING_CONVENTION as it stood at this revision.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    inspector = sa.inspect(bind)
    for table in inspector.get_table_names():
        if table != "alembic_version" and _has_nameless_constraint(inspector, table):
            with op.batch_alter_table(table, recreate="always", naming_convention=NAMING_CONVENTION):
                pass


def _has_nameless_constraint(inspector: sa.Inspector, table: str) -> bool:
    constraints = [
        inspector.get_pk_constraint(table),
        *inspector.get_unique_constraints(table),
        *inspector.get_foreign_keys(table),
    ]
    return any(c.get("constrained_columns") or c.get("column_names") for c in constraints if not c["name"])


def downgrade() -> None:
    pass  # the names harm nothing in the first release's schema
