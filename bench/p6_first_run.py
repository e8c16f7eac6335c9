"""P6: `make run` from a fresh clone, with a warm package cache, to the first answered page.

What a newcomer does: `git clone`, `make run`, open the page. The row clones the committed tree into a
folder of its own, runs `make run` there (the venv, the install, then `portico up`: Temporal dev server,
worker and API) in a process group of its own, and polls the first page until it answers. Then it stops
the whole group (SIGTERM, as Ctrl-C would, then SIGKILL for anything left) and checks nothing is left.

"Warm": pip installs from this machine's indexes and caches as they are after the checkout's own install;
nothing is downloaded ahead for the row. Ports are free ones, so a `make run` already running elsewhere is
untouched. The clone gets a venv of its own: `make run` never touches the checkout's. Quick mode (the CI
smoke test) skips the row: a fresh install takes minutes of CPU, more than the whole quick run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import REPO_DIR, Row
from bench.stack import free_port

LIMIT_SECONDS = 60.0
WHAT = "`make run` from a fresh clone (warm package cache) to the first answered page"
TARGET = f"< {LIMIT_SECONDS:.0f} s"
SKIPPED = "Skipped in quick mode: a fresh clone's install takes minutes of CPU; `make bench` measures it."


@dataclass(frozen=True)
class P6Size:
    measure: bool
    """False in quick mode: the row says it was skipped."""
    timeout: float
    """Seconds to wait for the first page before giving up (the row then reports a MISS)."""


@dataclass
class Timeline:
    cloned: float = 0.0
    installed: float | None = None
    """Seconds from `make run` until the install step finished (its stamp file appeared)."""
    answered: float | None = None
    """Seconds from `make run` until the first page answered 200."""


async def run(root: Path, size: P6Size) -> Row:
    if not size.measure:
        return Row("P6", WHAT, "skipped in quick mode", "—", "—", TARGET, None, [SKIPPED])
    folder = root / "p6"
    folder.mkdir(parents=True, exist_ok=True)
    clone = folder / "portico"
    started = time.monotonic()
    await asyncio.to_thread(
        subprocess.run, ["git", "clone", "--quiet", str(REPO_DIR), str(clone)], check=True, timeout=120
    )
    timeline = Timeline(cloned=time.monotonic() - started)
    port = free_port()
    log = folder / "make-run.log"
    with log.open("wb") as out:
        make = subprocess.Popen(
            ["make", "run"],
            cwd=clone,
            env=_environment(port),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopping it stops everything it started
        )
        try:
            await _first_page(make, clone, port, size.timeout, timeline)
        finally:
            left = await asyncio.to_thread(_stop_group, make)
    return _row(size, timeline, left, log)


def _environment(port: int) -> dict[str, str]:
    """This shell's environment without Portico's settings or the checkout on the path, on free ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTICO_", "VIRTUAL_ENV"))}
    env.pop("PYTHONPATH", None)
    env.update(
        PORTICO_API_PORT=str(port),
        PORTICO_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
        PORTICO_TEMPORAL_UI_PORT=str(free_port()),
    )
    return env


async def _first_page(
    make: subprocess.Popen[bytes], clone: Path, port: int, timeout: float, timeline: Timeline
) -> None:
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as http:
        while time.monotonic() - started < timeout:
            if make.poll() is not None:
                raise RuntimeError(f"`make run` exited with {make.returncode} before the first page answered")
            if timeline.installed is None and any((clone / ".venv").glob(".installed-*")):
                timeline.installed = time.monotonic() - started
            with contextlib.suppress(httpx.HTTPError):
                page = await http.get("/", follow_redirects=True)
                if page.status_code == 200 and page.headers.get("content-type", "").startswith("text/html"):
                    timeline.answered = time.monotonic() - started
                    return
            await asyncio.sleep(0.25)


def _stop_group(make: subprocess.Popen[bytes], grace: float = 20.0) -> int:
    """Stops `make run` and all it started; returns how many processes needed SIGKILL."""
    group = make.pid  # the group's id is its leader's pid (start_new_session)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _members(group):
        make.poll()
        time.sleep(0.2)
    killed = len(_members(group))
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    make.wait(timeout=10)
    for _ in range(50):
        if not _members(group):
            return killed
        time.sleep(0.1)
    raise RuntimeError(f"processes of `make run` survived SIGKILL: {_members(group)}")


def _members(group: int) -> list[int]:
    """Live (not zombie) processes in the process group."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) == group and fields[0] != "Z":
                members.append(int(stat.parent.name))
    return members


def _row(size: P6Size, timeline: Timeline, killed: int, log: Path) -> Row:
    stopped = (
        "everything it started stopped on SIGTERM"
        if killed == 0
        else f"{killed} process(es) needed SIGKILL after 20 s"
    )
    notes = [f"git clone {timeline.cloned:.1f} s (not counted); {stopped}, no process left."]
    if timeline.answered is None:
        notes.append(f"No page answered within {size.timeout:.0f} s; the log: {log}")
        return Row("P6", WHAT, "no page", "—", "—", TARGET, False, notes)
    if timeline.installed is not None:
        notes.insert(
            0,
            f"venv and install {timeline.installed:.1f} s, then `portico up` (dev server, worker, API) to "
            f"the first page {timeline.answered - timeline.installed:.1f} s.",
        )
    return Row(
        key="P6",
        what=WHAT,
        measured=f"{timeline.answered:.1f} s",
        baseline="—",
        ratio="—",
        target=TARGET,
        passed=timeline.answered < LIMIT_SECONDS,
        notes=notes,
    )
