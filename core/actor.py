"""Who did something, and from where. Light enough to travel through the workflow sandbox."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """Enough about a person's request for the audit log and the IRS e-signature record."""

    kind: str  # "preparer", "taxpayer", "system"
    id: str = ""
    ip: str | None = None
    user_agent: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}" if self.id else self.kind


SYSTEM = Actor(kind="system")
