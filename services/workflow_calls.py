"""Asking the engagement workflow, and turning its refusals into errors a person understands."""

from __future__ import annotations

import weakref
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from services import Refusal, ServiceError
from workflows import workflow_id
from workflows.engagement import EngagementWorkflow
from workflows.types import EngagementState

R = TypeVar("R")

UPDATE_TIMEOUT = timedelta(seconds=30)
_MESSAGES_SHOWN_AS_IS = {"InvalidRequest", "UsernameTaken"}
BUSY = "Portico is busy; try again shortly."


_PREFIXES: weakref.WeakKeyDictionary[Client, str] = weakref.WeakKeyDictionary()


def use_workflow_prefix(client: Client, prefix: str) -> None:
    """Remembers the installation's workflow-id prefix for every call made with this client."""
    _PREFIXES[client] = prefix


def workflow_prefix(client: Client) -> str:
    return _PREFIXES.get(client, "")


def handle_for(client: Client, engagement_id: int) -> WorkflowHandle[EngagementWorkflow, Any]:
    return client.get_workflow_handle_for(
        EngagementWorkflow.run, workflow_id(engagement_id, workflow_prefix(client))
    )


async def update(
    client: Client,
    engagement_id: int,
    method: Any,
    arg: Any,
    *,
    result_type: type[R] | None = None,
    update_id: str | None = None,
) -> Any:
    """Runs a workflow update; a rejection becomes a conflict in the workflow's own words."""
    handle = handle_for(client, engagement_id)
    try:
        return await handle.execute_update(method, arg, id=update_id, rpc_timeout=UPDATE_TIMEOUT)
    except WorkflowUpdateFailedError as exc:
        raise _refusal(exc.cause) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.DEADLINE_EXCEEDED:
            raise ServiceError(
                Refusal.TIMED_OUT,
                "This is taking longer than it should; check again in a minute before retrying.",
            ) from exc
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise ServiceError(Refusal.CONFLICT, "This engagement is closed.") from exc
        raise ServiceError(Refusal.UNAVAILABLE, BUSY) from exc


async def query_status(client: Client, engagement_id: int) -> EngagementState:
    """The workflow's own view; a query that cannot be answered (the server or the worker unreachable, the
    query failing on a worker) is a refusal pages can show or step around, never a 500."""
    try:
        return await handle_for(client, engagement_id).query(EngagementWorkflow.status)
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as exc:
        raise ServiceError(Refusal.UNAVAILABLE, BUSY) from exc


def _refusal(cause: BaseException | None) -> ServiceError:
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError) and cause.type in _MESSAGES_SHOWN_AS_IS:
        return ServiceError(Refusal.CONFLICT, cause.message)
    return ServiceError(Refusal.FAILED, "Something went wrong on our side; nothing was changed.")
