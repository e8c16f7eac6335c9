"""How `portico api` serves the app: uvicorn on uvloop and httptools, one process per core when asked.

Each process is a whole app (its own lifespan: database pool, Temporal client, outbox); uvicorn's parent
binds the socket once and the kernel hands each connection to one of them. The processes are spawned,
so each configures logging itself from the settings (`portico.app.production_app`). The per-request log
line is at DEBUG (portico/observability.py): at INFO a busy API spent more time writing its log than
answering.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

WORKERS_ENV = "PORTICO_API_WORKERS"
"""How many processes serve the API; set by `portico api --workers` for the processes it spawns (each
takes one of the metrics ports from PORTICO_METRICS_PORT on)."""
APP_FACTORY = "portico.app:production_app"
THREADS_ENV = "PORTICO_API_THREADS"
DEFAULT_THREADS = 40
"""Threads a serving process runs sync routes and dependencies on (AnyIO's default is 40). Pages are
short database reads and rendering under one GIL: past a few threads, more only take turns with it."""


@dataclass(frozen=True)
class ServeOptions:
    """What `portico api` passes to uvicorn; the benchmark serves its bare baseline app with the same."""

    host: str
    port: int
    workers: int = 1
    log_level: str = "info"

    def uvicorn_kwargs(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "workers": self.workers,
            "loop": "uvloop",  # libuv's event loop: about twice asyncio's own on small requests
            "http": "httptools",  # the C parser (llhttp) instead of h11
            "proxy_headers": False,  # the app reads X-Forwarded-For itself (PORTICO_FORWARDED_ALLOW_IPS)
            "log_level": self.log_level.lower(),
            "log_config": None,  # keep core.logs' JSON handler
            "access_log": False,  # its lines name raw paths; portico/observability.py logs route templates
            "timeout_graceful_shutdown": 10,  # an open /portal/events stream must not hold a restart
        }


def workers_in_use() -> int:
    raw = os.environ.get(WORKERS_ENV, "1")
    return max(1, int(raw)) if raw.isdigit() else 1


def threads_in_use() -> int:
    raw = os.environ.get(THREADS_ENV, "")
    return max(1, int(raw)) if raw.isdigit() else DEFAULT_THREADS


def use_thread_limit(threads: int) -> None:
    """In the serving process's event loop: at most `threads` sync routes and dependencies at once."""
    from anyio import to_thread

    to_thread.current_default_thread_limiter().total_tokens = threads


def serve(target: str, options: ServeOptions) -> None:
    """Runs `target` (a `module:factory` import string) under uvicorn until stopped; blocks."""
    import uvicorn

    os.environ[WORKERS_ENV] = str(options.workers)  # the spawned processes inherit it
    uvicorn.run(target, factory=True, **options.uvicorn_kwargs())
