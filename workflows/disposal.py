"""The disposal workflow: once a day (a Temporal Schedule, see worker/schedules.py) it disposes of every
engagement past its firm's retention period that is not on legal hold.

Deterministic: it only asks activities. The moment it judges expiry by (`as_of`) is fixed when the day's
run starts and carried through continue-as-new, so a long list is worked through in several runs of
bounded history. An engagement whose disposal keeps failing is left for the next day's run (the
disposal itself is resumable: see core/retention.py); the others go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.disposal import DisposalActivities, DisposeRequest, ExpiredQuery
    from core.retention import DISPOSED

DISPOSAL_SCHEDULE_ID = "retention-disposal"
"""The Schedule's id and the prefix of its workflows' ids (each run adds its start time)."""
DISPOSALS_PER_RUN = 500
"""Engagements disposed of before the run continues as new, keeping its history small."""
FAILURES_KEPT = 100

RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
# A disposal that fails five times in a row waits for tomorrow's run rather than holding up the others.
DISPOSE_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=5)


@dataclass(frozen=True)
class DisposalInput:
    """Empty when the Schedule starts a run; filled in when a run continues as new."""

    as_of: datetime | None = None
    after_id: int = 0
    disposed: int = 0
    skipped: int = 0
    failed: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class DisposalSummary:
    as_of: datetime
    disposed: int
    """Engagements disposed of by this day's run."""
    skipped: int
    """Listed but not disposed: placed on hold, or disposed by another run, in the meantime."""
    failed: list[int]
    """Engagements whose disposal failed every attempt today (at most FAILURES_KEPT of them)."""


@workflow.defn
class DisposalWorkflow:
    @workflow.run
    async def run(self, inp: DisposalInput | None = None) -> DisposalSummary:
        inp = inp or DisposalInput()
        as_of = inp.as_of or workflow.now()
        after, disposed, skipped, failed = inp.after_id, inp.disposed, inp.skipped, list(inp.failed)
        handled = 0
        while True:
            page = await workflow.execute_activity_method(
                DisposalActivities.expired_engagements,
                ExpiredQuery(as_of, after),
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RETRY,
            )
            for engagement_id in page.engagement_ids:
                result = await self._dispose(engagement_id)
                if result == DISPOSED:
                    disposed += 1
                elif result is not None:
                    skipped += 1
                elif len(failed) < FAILURES_KEPT:
                    failed.append(engagement_id)
                handled += 1
            if page.next_after is None:
                break
            after = page.next_after
            if handled >= DISPOSALS_PER_RUN or workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(DisposalInput(as_of, after, disposed, skipped, failed))
        return DisposalSummary(as_of, disposed, skipped, failed)

    async def _dispose(self, engagement_id: int) -> str | None:
        """What the disposal did (core.retention's outcome), or None when it failed every attempt."""
        try:
            done = await workflow.execute_activity_method(
                DisposalActivities.dispose_engagement,
                DisposeRequest(engagement_id, workflow.now()),
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(minutes=1),  # it beats before each blob it deletes
                retry_policy=DISPOSE_RETRY,
            )
        except ActivityError:
            workflow.logger.warning(
                "disposing of engagement %s failed; the next run tries again", engagement_id
            )
            return None
        return done.result
