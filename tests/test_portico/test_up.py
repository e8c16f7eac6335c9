"""`portico up` (what `make run` starts): the whole stack comes up, stops cleanly, and resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fake_providers import free_port
from journey import TAXPAYER
from preparer_steps import api_login_sync

pytestmark = pytest.mark.e2e


def start_up(data_dir: Path, ports: dict[str, int], *, as_options: bool = False) -> subprocess.Popen[str]:
    """`portico up` on these ports and data folder, set in the environment or (`as_options`) as options."""
    settings = {
        "PORTICO_DATA_DIR": str(data_dir),
        "PORTICO_API_PORT": str(ports["api"]),
        "PORTICO_PUBLIC_URL": f"http://127.0.0.1:{ports['api']}",
        "PORTICO_TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
        "PORTICO_TEMPORAL_UI_PORT": str(ports["ui"]),
    }
    options = [
        *("--port", str(ports["api"]), "--data-dir", str(data_dir)),
        *("--temporal-port", str(ports["temporal"]), "--temporal-ui-port", str(ports["ui"])),
    ]
    env = {name: value for name, value in os.environ.items() if name not in settings}
    env.pop("PORTICO_ENCRYPTION_KEY", None)
    env = {**env, "PORTICO_ENVIRONMENT": "development", **({} if as_options else settings)}
    return subprocess.Popen(
        [sys.executable, "-m", "portico.cli", "up", *(options if as_options else [])],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_ready(base: str, process: subprocess.Popen[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError("portico up did not become ready")


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    output, _ = process.communicate(timeout=40)
    assert process.returncode == 0, output
    return output


def port_is_closed(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_up_starts_everything_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    ports = {"api": free_port(), "temporal": free_port(), "ui": free_port()}
    base = f"http://127.0.0.1:{ports['api']}"
    first = start_up(tmp_path / "var", ports)
    try:
        wait_ready(base, first)
        password = (tmp_path / "var" / "demo-login.txt").read_text().strip()
        with httpx.Client(base_url=base, timeout=30, headers={"sec-fetch-site": "same-origin"}) as http:
            phone = api_login_sync(http, "demo@portico.localhost", password)  # sets up two-step login
            created = http.post("/api/engagements", json={"tax_year": 2025, "taxpayer": TAXPAYER})
            assert created.status_code == 201, created.text
            eid = created.json()["id"]
            assert http.get("/docs").status_code == 200
            assert http.get("/dev/outbox").status_code == 200
    finally:
        output = stop(first)
    assert "Demo login" in output and f"{base}/docs" in output and f"{base}/dev/outbox" in output
    assert all(port_is_closed(port) for port in ports.values())

    # The same stack again, placed by `portico up`'s options (no PORTICO_* settings in the environment).
    second = start_up(tmp_path / "var", ports, as_options=True)
    try:
        wait_ready(base, second)
        assert (tmp_path / "var" / "demo-login.txt").read_text().strip() == password
        with httpx.Client(base_url=base, timeout=30, headers={"sec-fetch-site": "same-origin"}) as http:
            api_login_sync(http, "demo@portico.localhost", password, phone)
            # The engagement's workflow survived the restart: it still takes an invitation.
            invite = http.post(f"/api/engagements/{eid}/invite", json={"channel": "email"})
            assert invite.status_code == 200, invite.text
            for _ in range(100):
                if any(m["purpose"] == "invite" for m in http.get("/api/dev/outbox").json()):
                    break
                time.sleep(0.1)
            else:
                raise AssertionError("the resumed workflow sent no invitation")
            invitation = next(m for m in http.get("/api/dev/outbox").json() if m["purpose"] == "invite")
            assert f"{base}/invite/" in invitation["body"]  # the links follow --port
    finally:
        output = stop(second)
    assert f"Temporal UI   http://127.0.0.1:{ports['ui']}" in output and str(tmp_path / "var") in output


def test_up_help_names_the_options_and_the_settings_they_set() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "portico.cli", "up", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        check=True,
    )
    for option, setting in [
        ("--port", "PORTICO_API_PORT"),
        ("--data-dir", "PORTICO_DATA_DIR"),
        ("--temporal-port", "PORTICO_TEMPORAL_ADDRESS"),
        ("--temporal-ui-port", "PORTICO_TEMPORAL_UI_PORT"),
        ("--public-url", "PORTICO_PUBLIC_URL"),
    ]:
        assert option in result.stdout and setting in result.stdout, (option, result.stdout)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for setting in ("PORTICO_API_PORT", "PORTICO_DATA_DIR", "PORTICO_TEMPORAL_UI_PORT", "--temporal-port"):
        assert setting in readme.partition("### Other ports, another data folder")[2], setting
