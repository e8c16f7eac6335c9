"""The API process for the benchmarks: `create_app` under uvicorn on loopback, like `portico api`.

The access log is off (a proxy in front logs requests in production); everything else is as shipped.
"""

from __future__ import annotations

import logging

import uvicorn

from api.app import create_app
from bench.child import settings_from_env


def main() -> None:
    settings = settings_from_env()
    logging.basicConfig(level=logging.WARNING)
    uvicorn.run(
        create_app(settings),
        host="127.0.0.1",
        port=settings.api_port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
