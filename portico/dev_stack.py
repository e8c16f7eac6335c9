"""The development stack `portico up` runs: the Temporal dev server (its data in the data folder), one
worker and the API, each its own process, stopped together."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import typer

from core.config import Settings

# The dev server runs one history shard whose transfer queue it polls at most 20 times a second by
# default, so every activity and workflow task would wait up to ~50 ms to be dispatched: a Sign click
# spends most of its time there. Lifting the limit costs nothing when idle (the queue is also woken by
# notifications; the limit only caps polling).
DEV_SERVER_FLAGS = (
    "--log-level",
    "warn",
    "--dynamic-config-value",
    "history.transferProcessorMaxPollRPS=1000",
)


def start(settings: Settings) -> list[subprocess.Popen[bytes]]:
    temporal = shutil.which("temporal", path=str(Path(sys.executable).parent)) or shutil.which("temporal")
    if temporal is None:
        typer.echo("The `temporal` binary is missing: install Portico with `make run`.", err=True)
        raise typer.Exit(1)
    host, _, port = settings.temporal_address.partition(":")
    server = subprocess.Popen(
        [
            temporal,
            "server",
            "start-dev",
            "--ip",
            host,
            "--port",
            port or "7233",
            "--ui-port",
            str(settings.temporal_ui_port),
            "--namespace",
            settings.temporal_namespace,
            "--db-filename",
            str(settings.data_dir / "temporal.db"),
            *DEV_SERVER_FLAGS,
        ]
    )
    _wait_for_port(host, int(port or 7233), server)
    me = [sys.executable, "-m", "portico.cli"]
    return [server, subprocess.Popen([*me, "worker"]), subprocess.Popen([*me, "api"])]


def _wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Temporal dev server exited with code {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the Temporal dev server did not open {host}:{port} within {timeout:.0f}s")


def supervise(processes: list[subprocess.Popen[bytes]]) -> None:
    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    # Both, explicitly: a shell that starts us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        typer.echo("A Portico process stopped unexpectedly; shutting down the rest.", err=True)
    except KeyboardInterrupt:
        typer.echo("\nStopping Portico…")
    finally:
        for process in reversed(processes):  # API first, the Temporal server last
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in reversed(processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
