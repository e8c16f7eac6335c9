"""An API process for the benchmarks, served exactly as `portico api` serves (portico/serving.py).

`python -m bench.serve [--workers N] [--bare]`: Portico's app (settings from the PORTICO_* variables the
parent set, logs as production writes them), or with `--bare` P0's baseline, a bare FastAPI app with
the same /healthz route under the same server settings.
"""

from __future__ import annotations

import argparse

from bench.child import settings_from_env
from portico.serving import APP_FACTORY, ServeOptions, serve

BARE_APP = "bench.serve:bare_app"


def bare_app() -> object:
    """FastAPI with nothing but the route: no middleware, no lifespan, no logging set up."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:  # the same route as Portico's (portico/app.py)
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--bare", action="store_true")
    args = parser.parse_args()
    settings = settings_from_env()
    options = ServeOptions("127.0.0.1", settings.api_port, args.workers, settings.log_level)
    serve(BARE_APP if args.bare else APP_FACTORY, options)


if __name__ == "__main__":
    main()
