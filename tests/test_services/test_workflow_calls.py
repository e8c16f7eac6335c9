"""Asking the workflow: a status query that fails on the worker is a refusal the pages step around."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowQueryFailedError, WorkflowQueryRejectedError

from services import Refusal, ServiceError, workflow_calls


class Failing:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def query(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        WorkflowQueryFailedError("the status query raised on the worker"),
        WorkflowQueryRejectedError(WorkflowExecutionStatus.TERMINATED),
    ],
)
async def test_a_failed_status_query_is_a_refusal_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    monkeypatch.setattr(workflow_calls, "handle_for", lambda client, engagement_id: Failing(error))
    with pytest.raises(ServiceError) as refused:
        await workflow_calls.query_status(object(), 7)  # type: ignore[arg-type]
    assert refused.value.kind is Refusal.UNAVAILABLE
