"""Where one workflow update's time went, read from the workflow's own history (server timestamps)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle


@dataclass(frozen=True)
class UpdateSpan:
    update_id: str
    seconds: float
    """Accepted → completed, inside the engine."""
    activities: dict[str, float]
    """Activity type → seconds from started to completed (the worker running it)."""


def _at(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime()


async def update_spans(handle: WorkflowHandle, prefix: str) -> list[UpdateSpan]:
    """Every update whose id starts with `prefix`, with the activities scheduled while it ran."""
    history = await handle.fetch_history()
    events = list(history.events)
    accepted: dict[str, int] = {}
    spans = []
    for index, event in enumerate(events):
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            update_id = (
                event.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
            )
            accepted[update_id] = index
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            update_id = event.workflow_execution_update_completed_event_attributes.meta.update_id
            if update_id.startswith(prefix) and update_id in accepted:
                start = accepted[update_id]
                seconds = (_at(event) - _at(events[start])).total_seconds()
                spans.append(UpdateSpan(update_id, seconds, _activities(events, start, index)))
    return spans


def _activities(events: list[HistoryEvent], start: int, stop: int) -> dict[str, float]:
    names: dict[int, str] = {}
    began: dict[int, datetime] = {}
    spent: dict[str, float] = {}
    for event in events[start:stop]:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            names[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            began[event.activity_task_started_event_attributes.scheduled_event_id] = _at(event)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            scheduled = event.activity_task_completed_event_attributes.scheduled_event_id
            if scheduled in names and scheduled in began:
                name = names[scheduled]
                spent[name] = spent.get(name, 0.0) + (_at(event) - began[scheduled]).total_seconds()
    return spent
