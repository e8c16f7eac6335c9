"""What the engagement workflow does to the world, through its activities: messages, records, flags, waits.

One `Effects` per workflow run, holding its `PipelineState` and the tasks it runs beside the handlers.
Every activity is called by reference (its class method), under the name histories already carry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.engagement import EngagementActivities
    from activities.types import AuditEvent, MessageRequest, MessageResult, Transition
    from core.actor import SYSTEM, Actor
    from core.enums import Channel
    from core.quiet_hours import next_allowed_send
    from workflows.state import PREPARER, PipelineState

# A crashed worker's activity is retried only when its start-to-close timeout lapses: keep them short
# (each is idempotent, so an early retry under load costs nothing but time).
QUICK = timedelta(seconds=20)
SIGNING = timedelta(seconds=30)
RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
ACTS = EngagementActivities


class Effects:
    def __init__(self, state: PipelineState) -> None:
        self.state = state
        self._tasks: set[asyncio.Task[Any]] = set()
        # Projection/audit writes an update answered before (see sign_document); finalising waits for them.
        self._records_in_flight: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Runs a timer or send beside the handlers; kept referenced so it is not collected mid-wait."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def quiet(self) -> bool:
        return workflow.all_handlers_finished() and not self._records_in_flight

    # ---- time ------------------------------------------------------------------------------------

    def send_time(self, role: str, channel: str) -> datetime:
        """Now, or for a text in the signer's quiet hours, the morning."""
        if channel != Channel.SMS:
            return workflow.now()
        schedule = self.state.schedule
        return next_allowed_send(
            workflow.now(),
            self.state.profiles[role].time_zone,
            schedule.quiet_hours_start,
            schedule.quiet_hours_end,
        )

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - workflow.now()).total_seconds()
        if delay > 0:
            await workflow.sleep(delay)

    async def wait(self, done: Callable[[], bool], timeout: timedelta) -> bool:
        """True when `done` became true (or the engagement closed) before `timeout`."""
        try:
            await workflow.wait_condition(lambda: done() or self.state.closed, timeout=timeout)
        except TimeoutError:
            return False
        return True

    # ---- messages --------------------------------------------------------------------------------

    async def remind(
        self,
        role: str,
        channel: str,
        purpose: str,
        number: int,
        moved_on: Callable[[], bool],
        *,
        invite_seq: int = 0,
        key_suffix: str = "",
    ) -> None:
        await self.sleep_until(self.send_time(role, channel))
        if moved_on() or self.state.closed:  # the person acted while the text waited for morning
            return
        key = f"{purpose}:{role}:{invite_seq or key_suffix}:{number}"
        await self.message(role, channel, purpose, key=key, invite_seq=invite_seq, reminder_number=number)
        self.state.signers[role].reminders_sent += 1
        await self.record(
            f"reminder.{purpose}", SYSTEM, {"role": role, "number": str(number), "channel": channel}
        )

    async def message(
        self,
        recipient: str,
        channel: str,
        purpose: str,
        *,
        key: str,
        invite_seq: int = 0,
        reminder_number: int = 0,
    ) -> MessageResult:
        request = MessageRequest(
            idempotency_key=f"{workflow.info().workflow_id}:{key}",
            engagement_id=self.state.inp.engagement_id,
            recipient=recipient,
            channel=channel,
            purpose=purpose,
            invite_seq=invite_seq,
            reminder_number=reminder_number,
        )
        return await workflow.execute_activity_method(
            ACTS.send_message, request, start_to_close_timeout=QUICK, retry_policy=RETRY
        )

    async def flag(self, reason: str) -> None:
        """Needs the preparer: recorded, and the preparer is told by email."""
        self.state.flag(reason, workflow.now())
        await self.record("engagement.needs_attention", SYSTEM, {"reason": reason})
        await self.message(PREPARER, Channel.EMAIL, "needs_attention", key=f"attention:{self.state.version}")

    # ---- the projection and the audit log --------------------------------------------------------

    async def record(self, action: str, actor: Actor, detail: dict[str, str] | None = None) -> None:
        await self._write(self._transition(action, actor, detail))

    def record_soon(self, action: str, actor: Actor, detail: dict[str, str] | None = None) -> None:
        """`record` without waiting for the write; the version and stage are taken now."""
        task = asyncio.create_task(self._write(self._transition(action, actor, detail)))
        self._records_in_flight.add(task)
        task.add_done_callback(self._records_in_flight.discard)

    def _transition(self, action: str, actor: Actor, detail: dict[str, str] | None) -> Transition:
        state = self.state
        state.version += 1
        waiting_on, since = state.waiting()
        now = workflow.now()
        return Transition(
            workflow_id=workflow.info().workflow_id,
            engagement_id=state.inp.engagement_id,
            firm_id=state.inp.firm_id,
            version=state.version,
            stage=state.stage,
            waiting_on=waiting_on,
            waiting_since=since,
            reminders_sent=state.reminders_sent,
            needs_attention=state.attention is not None,
            last_activity_at=now,
            event=AuditEvent(action=action, actor=actor, at=now, detail=detail or {}),
            progress=state.progress(),
        )

    async def _write(self, transition: Transition) -> None:
        await workflow.execute_activity_method(
            ACTS.record_transition, transition, start_to_close_timeout=QUICK, retry_policy=RETRY
        )
