"""The whole stack as separate, killable processes: a Temporal dev server persisted to a file, a worker and
the API (uvicorn), all on one data folder with a file database. Used by the crash soak and the API fuzzer."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with code {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {timeout:.0f}s")


class Stack:
    """Start, SIGKILL and restart each part; `kills` counts the kills per part."""

    def __init__(self, data_dir: Path, *, environment: str = "test") -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.temporal_port = free_port()
        self.api_port = free_port()
        self.logs = data_dir / "logs"
        self.logs.mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            "PORTICO_ENVIRONMENT": environment,
            "PORTICO_DATA_DIR": str(data_dir),
            "PORTICO_DATABASE_URL": f"sqlite:///{data_dir / 'portico.db'}",
            "PORTICO_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "PORTICO_TASK_QUEUE": f"soak-{uuid.uuid4().hex[:8]}",
            "PORTICO_TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
            "PORTICO_PUBLIC_URL": f"http://127.0.0.1:{self.api_port}",
            # The soak crashes processes mid-signature; identity proofing is not what it tests.
            "PORTICO_PROOFING_FORMS": "",
        }
        self.processes: dict[str, subprocess.Popen[bytes] | None] = {
            "temporal": None,
            "worker": None,
            "api": None,
        }
        self.kills: Counter[str] = Counter()
        self.starts: Counter[str] = Counter()
        self.migrated = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        process = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.processes[name] = process
        self.starts[name] += 1
        return process

    def migrate(self) -> None:
        """What the compose file's `migrate` service does: the API and worker refuse an older schema."""
        if not self.migrated:
            subprocess.run(
                [sys.executable, "-m", "portico.cli", "db", "upgrade"],
                env=self.env,
                check=True,
                capture_output=True,
            )
            self.migrated = True

    def start(self, name: str) -> None:
        if name == "temporal":
            process = self._spawn(
                "temporal",
                [
                    str(BIN / "temporal"),
                    "server",
                    "start-dev",
                    "--ip",
                    "127.0.0.1",
                    "--port",
                    str(self.temporal_port),
                    "--headless",
                    "--db-filename",
                    str(self.data_dir / "temporal.db"),
                    "--log-level",
                    "error",
                    "--dynamic-config-value",
                    "frontend.enableUpdateWorkflowExecution=true",
                ],
            )
            wait_for_port(self.temporal_port, process)
        elif name == "worker":
            self.migrate()
            self._spawn("worker", [sys.executable, "-m", "portico.cli", "worker"])
        elif name == "api":
            self.migrate()
            process = self._spawn(
                "api",
                [
                    sys.executable,
                    "-m",
                    "portico.cli",
                    "api",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.api_port),
                ],
            )
            wait_for_port(self.api_port, process)
            self.wait_healthy()
        else:  # pragma: no cover
            raise ValueError(name)

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the API did not become healthy")

    def start_all(self) -> None:
        for name in ("temporal", "worker", "api"):
            self.start(name)

    def kill(self, name: str) -> None:
        process = self.processes[name]
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL)
        process.wait()
        self.kills[name] += 1

    def restart(self, name: str, pause: float = 0.0) -> None:
        self.kill(name)
        time.sleep(pause)
        self.start(name)

    def alive(self, name: str) -> bool:
        process = self.processes[name]
        return process is not None and process.poll() is None

    def stop(self) -> None:
        for name in ("api", "worker", "temporal"):
            process = self.processes[name]
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
