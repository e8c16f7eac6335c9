"""A worker process for the benchmarks: Portico's real worker (`build_worker`) or the bare baseline.

`python -m bench.worker_proc --mode real|bare [--max-cached-workflows N]`, settings from PORTICO_*.
Prints the ready marker once polling, stops gracefully on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from bench.child import READY, settings_from_env


def _raise_workflow_cache(size: int) -> None:
    """build_worker keeps the SDK's default cache (1,000 workflows); P5 needs every engagement cached."""
    import worker.main as worker_main

    class CachedWorker(Worker):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("max_cached_workflows", size)
            import os

            if os.environ.get("BENCH_RUNNER") == "passthrough":
                from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

                kwargs["workflow_runner"] = SandboxedWorkflowRunner(
                    restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
                )
            if os.environ.get("BENCH_RUNNER") == "unsandboxed":
                from temporalio.worker import UnsandboxedWorkflowRunner

                kwargs["workflow_runner"] = UnsandboxedWorkflowRunner()
            super().__init__(*args, **kwargs)

    worker_main.Worker = CachedWorker  # type: ignore[misc]


async def build(mode: str, cache: int | None) -> Worker:
    settings = settings_from_env()
    if mode == "bare":
        from bench.bare import BareEngagement, bare_noop

        client = await Client.connect(settings.temporal_address)
        return Worker(
            client, task_queue=settings.task_queue, workflows=[BareEngagement], activities=[bare_noop]
        )
    from core.context import Resources
    from workflows.client import connect

    if cache is not None:
        _raise_workflow_cache(cache)
    from worker.main import build_worker

    resources = Resources.from_settings(settings, create=False)
    return build_worker(await connect(settings, resources.cipher), resources)


async def main(mode: str, cache: int | None) -> None:
    worker = await build(mode, cache)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with worker:
        print(READY, flush=True)
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["real", "bare"], default="real")
    parser.add_argument("--max-cached-workflows", type=int, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(args.mode, args.max_cached_workflows))
