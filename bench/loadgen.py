"""Load generators for P4, each in a process of its own: wrk when installed, else this module.

`python -m bench.loadgen URL --connections 50 --seconds 10 [--header 'Cookie: …']` keeps that many
HTTP/1.1 keep-alive connections busy on loopback and prints one JSON line: requests, seconds, p50, p95,
errors. Bounded in time; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), e.status + e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    p50: float
    p95: float
    errors: int
    tool: str

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _rotation(paths: list[str]) -> str:
    """wrk asks for each path in turn (every connection walks the list from its own place)."""
    listed = ", ".join(json.dumps(path) for path in paths)  # a JSON string is a Lua string here
    return f"""
local paths = {{{listed}}}
local next_path = 0
request = function()
  next_path = next_path % #paths + 1
  return wrk.format("GET", paths[next_path])
end
"""


def run_load(
    url: str,
    headers: dict[str, str],
    connections: int,
    seconds: float,
    work_dir: Path,
    paths: list[str] | None = None,
) -> Load:
    """One load run in a separate process; blocks for about `seconds`. `paths`: with wrk, the requests
    go to each of these paths of `url`'s server in turn (the Python generator asks for `url` only)."""
    header_args = [x for name, value in headers.items() for x in ("--header", f"{name}: {value}")]
    wrk = wrk_path()
    if wrk is not None:
        script = work_dir / f"bench-wrk-{uuid.uuid4().hex[:6]}.lua"
        script.write_text(WRK_SCRIPT + (_rotation(paths) if paths else ""))
        args = [wrk, "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "-s", str(script), *header_args, url]
        out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
        line = next(line for line in out.splitlines() if line.startswith("BENCH "))
        requests, micros, p50, p95, errors = (int(x) for x in line.split()[1:])
        return Load(requests, micros / 1e6, p50 / 1e6, p95 / 1e6, errors, "wrk")
    args = [
        sys.executable,
        "-m",
        "bench.loadgen",
        url,
        "--connections",
        str(connections),
        "--seconds",
        str(seconds),
        *header_args,
    ]
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return Load(**data, tool="python asyncio load generator (wrk not installed)")


# ---- the fallback generator ------------------------------------------------------------------------


async def _connection(host: str, port: int, request: bytes, until: float, latencies: list[float]) -> int:
    errors = 0
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < until:
            started = time.perf_counter()
            writer.write(request)
            status, length = await _read_head(reader)
            await reader.readexactly(length)
            if 200 <= status < 400:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1
    finally:
        writer.close()
    return errors


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, int]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return int(lines[0].split()[1]), length


async def _generate(url: str, connections: int, seconds: float, headers: list[str]) -> dict[str, float | int]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    extra = "".join(f"{h}\r\n" for h in headers)
    request = f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode()
    latencies: list[float] = []
    started = time.monotonic()
    until = started + seconds
    errors = await asyncio.gather(
        *(_connection(host, port, request, until, latencies) for _ in range(connections))
    )
    elapsed = time.monotonic() - started
    ordered = sorted(latencies) or [0.0]
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "p50": ordered[len(ordered) // 2],
        "p95": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
        "errors": sum(errors),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args()
    if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loopback only")
    print(json.dumps(asyncio.run(_generate(args.url, args.connections, min(args.seconds, 120), args.header))))
