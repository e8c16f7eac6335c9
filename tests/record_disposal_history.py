"""Records a history of the daily disposal workflow, for the replay test in test_workflows/test_retention.py.

    .venv/bin/python tests/record_disposal_history.py tests/histories/disposal

Writes `daily_run.json` unless it exists (a history stands for runs already in production: never
re-record it, see tests/histories/README.md). The run is started as the Schedule starts it (by name, no
argument) on the time-skipping test server, with in-memory activities: two pages of due engagements, one
disposed of already, one whose disposal fails; payloads are encrypted with the fixed test key of replay_key.
"""

from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from record_histories import history_text
from replay_key import history_converter
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.disposal import DisposeRequest, DisposeResult, ExpiredEngagements, ExpiredQuery
from workflows.disposal import DisposalSummary, DisposalWorkflow

BIN = Path(sys.executable).parent
WORKFLOW_ID = "retention-disposal-2026-12-05T03:17:00Z"  # as the Schedule names its runs
FILE = "daily_run.json"
PAGES = {0: ExpiredEngagements([11, 12], next_after=40), 40: ExpiredEngagements([41, 42], next_after=None)}


@activity.defn(name="expired_engagements")
def expired_engagements(query: ExpiredQuery) -> ExpiredEngagements:
    return PAGES[query.after_id]


@activity.defn(name="dispose_engagement")
def dispose_engagement(req: DisposeRequest) -> DisposeResult:
    if req.engagement_id == 42:
        raise ApplicationError("storage refused the delete", non_retryable=True)
    return DisposeResult(req.engagement_id, "already_disposed" if req.engagement_id == 12 else "disposed", 3)


async def record(path: Path) -> DisposalSummary:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=history_converter(), test_server_existing_path=str(BIN / "temporal-test-server")
    )
    try:
        async with Worker(
            env.client,
            task_queue="disposal-history",
            workflows=[DisposalWorkflow],
            activities=[expired_engagements, dispose_engagement],
            activity_executor=ThreadPoolExecutor(2),
        ):
            handle = await env.client.start_workflow(
                "DisposalWorkflow", id=WORKFLOW_ID, task_queue="disposal-history", result_type=DisposalSummary
            )
            summary = await handle.result()
            path.write_text(history_text(await handle.fetch_history()))
            return summary
    finally:
        await env.shutdown()


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE
    if path.exists():
        print(f"{path} exists: left alone")
        return
    summary = asyncio.run(record(path))
    print(f"recorded {path}: {summary}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
