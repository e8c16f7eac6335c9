"""Activities of the disposal workflow: which engagements are past retention, and disposing of one.

Thin over `core.retention`, which does the work and makes it idempotent and resumable. Synchronous:
SQL and storage run on the worker's thread pool. The request and result types are plain dataclasses the
workflow sandbox can load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session
from temporalio import activity

from core import audit_chain, retention
from core.context import Resources


@dataclass(frozen=True)
class ExpiredQuery:
    """Engagements due for disposal at `now`, with ids above `after_id`."""

    now: datetime
    after_id: int = 0
    scan: int = 200


@dataclass(frozen=True)
class ExpiredEngagements:
    engagement_ids: list[int]
    next_after: int | None = None
    """Where the next page starts; None when this was the last."""


@dataclass(frozen=True)
class DisposeRequest:
    engagement_id: int
    at: datetime


@dataclass(frozen=True)
class DisposeResult:
    engagement_id: int
    result: str
    """`disposed`, `already_disposed`, `on_hold`, `not_due` or `missing` (core.retention)."""
    blobs_deleted: int = 0


class DisposalActivities:
    def __init__(self, resources: Resources) -> None:
        self.r = resources

    def all(self) -> list[Callable[..., Any]]:
        return [self.expired_engagements, self.dispose_engagement]

    @activity.defn(name="expired_engagements")
    def expired_engagements(self, query: ExpiredQuery) -> ExpiredEngagements:
        with Session(self.r.engine) as session:
            page = retention.expired_page(session, query.now, query.after_id, query.scan)
        return ExpiredEngagements(page.engagement_ids, page.next_after)

    @activity.defn(name="dispose_engagement")
    def dispose_engagement(self, req: DisposeRequest) -> DisposeResult:
        outcome = retention.dispose(
            self.r.engine,
            self.r.store,
            audit_chain.chain_key(self.r.cipher),
            req.engagement_id,
            req.at,
            heartbeat=activity.heartbeat,
        )
        return DisposeResult(outcome.engagement_id, outcome.result, outcome.blobs_deleted)


__all__ = ["DisposalActivities", "DisposeRequest", "DisposeResult", "ExpiredEngagements", "ExpiredQuery"]
