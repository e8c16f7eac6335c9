"""The Temporal Schedules Portico runs: the daily disposal of engagements past their retention period.

Every worker makes sure of them when it starts: created if missing, else updated to this code's
definition, so several workers starting together, or a restart, leave exactly one Schedule per id.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from core.config import Settings
from workflows.disposal import DISPOSAL_SCHEDULE_ID, DisposalWorkflow

log = logging.getLogger("portico.worker")

DISPOSAL_TIME = ScheduleCalendarSpec(hour=[ScheduleRange(3)], minute=[ScheduleRange(17)], comment="daily")
"""Every day at 03:17 UTC: a quiet hour for US firms."""


def disposal_schedule_id(settings: Settings) -> str:
    return f"{settings.workflow_id_prefix}{DISPOSAL_SCHEDULE_ID}"


def disposal_schedule(settings: Settings) -> Schedule:
    return Schedule(
        # No arguments: a run the Schedule starts gets an empty DisposalInput. (Arguments would be
        # encrypted bound to the Schedule's id, which differs from each run's workflow id.)
        action=ScheduleActionStartWorkflow(
            DisposalWorkflow.__name__,
            id=disposal_schedule_id(settings),
            task_queue=settings.task_queue,
            execution_timeout=timedelta(days=1),
        ),
        spec=ScheduleSpec(calendars=[DISPOSAL_TIME]),
        # One run at a time; a day missed while Temporal was down is caught up once, not once per day.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
    )


async def ensure_disposal_schedule(client: Client, settings: Settings) -> str:
    """Creates the daily disposal Schedule, or brings an existing one up to date; returns its id."""
    schedule_id = disposal_schedule_id(settings)
    schedule = disposal_schedule(settings)
    try:
        await client.create_schedule(schedule_id, schedule)
        log.info("created the daily disposal schedule %s", schedule_id)
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(replace)
    return schedule_id
