"""Today's engagement workflow replays every recorded history in tests/histories/ without nondeterminism.

Each history stands for engagements already running in production: when a change makes the workflow issue
other commands for the same events (another activity, a timer moved, steps reordered), replaying it fails
here, and the change belongs behind `workflow.patched` (see tests/histories/README.md).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from record_histories import SCENARIOS
from replay_key import history_converter
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows import workflow_id
from workflows.engagement import EngagementWorkflow

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
RECORDED = sorted(HISTORIES.glob("*.json"))
RECORDED_NAMESPACE = "default"


async def with_workflow_id(history: WorkflowHistory) -> WorkflowHistory:
    """A history file does not name its workflow: the id is the business key of the engagement it started."""
    started = history.events[0].workflow_execution_started_event_attributes
    (inp,) = await history_converter().decode(started.input.payloads, [dict])
    return dataclasses.replace(history, workflow_id=workflow_id(inp["engagement_id"]))


def test_every_scenario_is_recorded() -> None:
    assert RECORDED, f"no recorded histories in {HISTORIES}"
    missing = sorted(set(SCENARIOS) - {path.stem for path in RECORDED})
    assert not missing, f"record them: python tests/record_histories.py tests/histories {' '.join(missing)}"


@pytest.mark.parametrize("path", RECORDED, ids=lambda path: path.stem)
async def test_workflow_replays_recorded_history(path: Path) -> None:
    history = await with_workflow_id(WorkflowHistory.from_json("", path.read_text()))
    # Payloads are bound to namespace + workflow id (workflows/client.py): replay in the namespace the
    # recorder ran in (the test server's), or histories recorded since the binding would not decode.
    replayer = Replayer(
        workflows=[EngagementWorkflow], namespace=RECORDED_NAMESPACE, data_converter=history_converter()
    )
    await replayer.replay_workflow(history)  # raises on nondeterminism
