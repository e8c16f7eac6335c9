"""How `portico api` serves: `--workers N` processes on one port, each with a metrics port of its own, and a
log that tells of failed and slow requests at INFO and of every request only at DEBUG."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from soak_stack import free_port, wait_for_port
from starlette.types import Receive, Scope, Send
from temporalio.testing import WorkflowEnvironment

from core.logs import configure_logging
from portico import observability
from portico.observability import RequestTelemetry

pytestmark = pytest.mark.e2e


@pytest.fixture
def two_workers(
    tmp_path: Path, master_key: str, dev_server: WorkflowEnvironment
) -> Iterator[tuple[int, int]]:
    """`portico api --workers 2` on a fresh database: (its port, its first metrics port)."""
    env = {
        **os.environ,
        "PORTICO_ENVIRONMENT": "development",
        "PORTICO_DATA_DIR": str(tmp_path / "var"),
        "PORTICO_DATABASE_URL": f"sqlite:///{tmp_path / 'portico.db'}",
        "PORTICO_ENCRYPTION_KEY": master_key,
        "PORTICO_TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
    }
    metrics = free_pair()
    env["PORTICO_METRICS_PORT"] = str(metrics)
    subprocess.run(
        [sys.executable, "-m", "portico.cli", "db", "upgrade"], env=env, check=True, capture_output=True
    )
    port = free_port()
    log = (tmp_path / "api.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "portico.cli", "api", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process)
        yield port, metrics
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def free_pair() -> int:
    """A free port whose next one is free too: each serving process takes the first free metrics port from
    PORTICO_METRICS_PORT on, so the second takes the next one unless something else took it meanwhile."""
    for _ in range(50):
        first = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", first + 1))
            except OSError:
                continue
        return first
    raise RuntimeError("no two free ports in a row")


def listener_pid(port: int) -> int:
    """The process listening on 127.0.0.1:`port`, read from /proc: the socket's inode, then whose fd it is."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{inode}]")
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            links = {os.readlink(fd) for fd in fd_dir.iterdir()}
        except OSError:  # a process that ended meanwhile, or one that is not ours to read
            continue
        if links & inodes:
            return int(fd_dir.parent.name)
    raise AssertionError(f"no process listens on {port}")


def test_two_workers_answer_on_one_port_with_a_metrics_port_each(two_workers: tuple[int, int]) -> None:
    port, metrics = two_workers
    deadline = time.monotonic() + 60
    answered: dict[int, str] = {}
    while time.monotonic() < deadline and len(answered) < 2:
        # The first free ports from PORTICO_METRICS_PORT on: another program may hold the next one.
        for each in range(metrics, metrics + 4):
            try:
                answered[each] = httpx.get(f"http://127.0.0.1:{each}/metrics", timeout=2).text
            except httpx.HTTPError:
                time.sleep(0.2)
    assert len(answered) == 2, f"metrics answered on {sorted(answered)} only"
    # Two processes, not one answering twice: each metrics port is held by a process of its own. (Their start
    # times are no proof: two processes forked together report the same one.)
    owners = {each: listener_pid(each) for each in answered}
    assert len(set(owners.values())) == 2, owners
    for _ in range(20):
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert health.status_code == 200 and health.json() == {"status": "ok"}


async def _answer(status: int, scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _request(app: RequestTelemetry) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        await http.get("/portal")


def _request_lines(stream: io.StringIO) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if line["logger"] == "portico.http"]  # not httpx's own


@pytest.mark.parametrize("status", [200, 404])
async def test_an_answered_request_is_logged_at_debug_only(status: int) -> None:
    stream = io.StringIO()
    handler = configure_logging("json", "INFO", stream)
    try:
        await _request(RequestTelemetry(lambda s, r, w: _answer(status, s, r, w)))
        assert _request_lines(stream) == []
        logging.getLogger().setLevel("DEBUG")
        await _request(RequestTelemetry(lambda s, r, w: _answer(status, s, r, w)))
        [line] = _request_lines(stream)
        assert line["level"] == "DEBUG" and line["status"] == status and line["route"] == "<unmatched>"
    finally:
        logging.getLogger().removeHandler(handler)


async def test_a_failed_or_slow_request_is_logged_at_info(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    handler = configure_logging("json", "INFO", stream)
    try:
        await _request(RequestTelemetry(lambda s, r, w: _answer(503, s, r, w)))
        monkeypatch.setattr(observability, "SLOW_REQUEST_SECONDS", 0.0)
        await _request(RequestTelemetry(lambda s, r, w: _answer(200, s, r, w)))
        lines = _request_lines(stream)
        assert [(line["level"], line["status"]) for line in lines] == [("INFO", 503), ("INFO", 200)]
    finally:
        logging.getLogger().removeHandler(handler)
