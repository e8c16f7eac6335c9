"""A worker process for the benchmarks: Portico's real worker (`build_worker`) or the bare baseline.

`python -m bench.worker_proc --mode real|bare`, settings (cache size included) from PORTICO_*.
Prints the ready marker once polling, stops gracefully on SIGTERM or SIGINT.

Bytecode is kept as the image keeps it: `pip install .` compiles every module when the image is built,
and the workflow sandbox imports `workflows/engagement.py` afresh for every workflow it instantiates. On a
machine that sets PYTHONDONTWRITEBYTECODE (this one does), a worker started from the checkout would
compile that file from source each time instead: about a sixth of the worker's CPU while engagements
start, none of which the shipped worker spends.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from bench.child import READY, settings_from_env


async def build(mode: str) -> Worker:
    settings = settings_from_env()
    if mode == "bare":
        from bench.bare import BareEngagement, bare_noop

        client = await Client.connect(settings.temporal_address)
        return Worker(
            client, task_queue=settings.task_queue, workflows=[BareEngagement], activities=[bare_noop]
        )
    from core.context import Resources
    from worker.main import build_worker
    from workflows.client import connect

    resources = Resources.from_settings(settings, create=False)
    return build_worker(await connect(settings, resources.cipher), resources)


async def main(mode: str) -> None:
    sys.dont_write_bytecode = False  # the checkout's __pycache__ is ignored by git, like any Python's
    worker = await build(mode)
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
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(args.mode))
