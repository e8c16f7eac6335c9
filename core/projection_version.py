"""Each firm's dashboard projection version: one number that changes whenever the firm's dashboard could.

Every write to what the dashboard reads (`EngagementStatus` rows, `EngagementSearchTerm` words) calls
`bump` in its own transaction, so the new number commits with the change or not at all. A reader takes the
number first and its data after: the data is then at least as new as the number says, and whatever it
keeps under that number is right until the number moves (`services.dashboard`).

One row per firm, written as an upsert: no firm needs a row before its first change (`current` answers 0).
"""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from core.models import ProjectionVersion


def bump(session: Session, firm_id: int) -> None:
    """The firm's dashboard data changes in this transaction."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = ProjectionVersion.__table__  # type: ignore[attr-defined]
    statement = dialect.insert(table).values(firm_id=firm_id, version=1)
    session.execute(
        statement.on_conflict_do_update(index_elements=["firm_id"], set_={"version": table.c.version + 1})
    )


def current(session: Session, firm_id: int) -> int:
    found = session.exec(
        select(ProjectionVersion.version).where(col(ProjectionVersion.firm_id) == firm_id)
    ).first()
    return found or 0
