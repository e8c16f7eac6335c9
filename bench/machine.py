"""The machine and the versions a run was measured on."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bench.loadgen import wrk_path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.0f} GiB"
    except OSError:
        pass
    return "unknown"


def _package(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _wrk() -> str:
    wrk = wrk_path()
    if wrk is None:
        return "not installed (P4 uses bench.loadgen)"
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0].split(" Copyright")[0]


def describe(temporal_server: str, postgres: str) -> list[tuple[str, str]]:
    return [
        ("CPU", _cpu_model()),
        ("cores", str(os.cpu_count())),
        ("memory", _memory()),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("temporalio (SDK)", _package("temporalio")),
        ("Temporal dev server", temporal_server),
        ("pyHanko", _package("pyHanko")),
        ("SQLite", sqlite3.sqlite_version),
        ("PostgreSQL", postgres),
        (
            "FastAPI / uvicorn / SQLAlchemy",
            f"{_package('fastapi')} / {_package('uvicorn')} / {_package('SQLAlchemy')}",
        ),
        ("load generator", _wrk()),
        ("py-spy", _package("py-spy")),
    ]
