"""Where P1's time goes: py-spy samples the API and worker processes during one run, by CPU.

Each sample is charged to the deepest Portico function on its stack (ASGI middleware excluded, since
every request passes through it), or to the library that owns the stack when no Portico code is on it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from bench import REPO_DIR
from bench.stack import Proc

PY_SPY = Path(sys.executable).parent / "py-spy"
PORTICO_PACKAGES = {"activities", "api", "core", "web", "workflows", "worker"}
WRAPPERS = {"__call__", "dispatch"}  # middleware frames: on every request's stack, not a cost of their own
STDLIB = set(sys.stdlib_module_names) | {
    "<frozen importlib._bootstrap>",
    "<frozen importlib._bootstrap_external>",
}


@dataclass(frozen=True)
class Cost:
    label: str
    share: float
    """Fraction of the working samples (API and workers together, waiting threads left out)."""
    inside: str
    """Where those samples mostly were at the leaf: the library doing the work."""


def available() -> bool:
    return PY_SPY.exists()


class Sampler:
    """py-spy attached to running processes; stop() writes one collapsed-stack file per process."""

    def __init__(self, out_dir: Path, rate: int = 100) -> None:
        self.out_dir = out_dir
        self.rate = rate
        self.recorders: list[tuple[str, Path, subprocess.Popen[bytes]]] = []

    def attach(self, proc: Proc, role: str) -> None:
        out = self.out_dir / f"profile-{proc.name}.txt"
        args = [
            str(PY_SPY),
            "record",
            "--pid",
            str(proc.pid),
            "--nonblocking",
            "--format",
            "raw",
            "--rate",
            str(self.rate),
            "--full-filenames",
            "--output",
            str(out),
        ]
        log = (self.out_dir / f"py-spy-{proc.name}.log").open("wb")
        recorder = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self.recorders.append((role, out, recorder))

    def stop(self) -> dict[str, Path]:
        for _, _, recorder in self.recorders:
            recorder.send_signal(signal.SIGINT)
        files: dict[str, Path] = {}
        for role, out, recorder in self.recorders:
            try:
                recorder.wait(timeout=60)
            except subprocess.TimeoutExpired:
                recorder.kill()
            if out.exists():
                files[f"{role}:{out.name}"] = out
        return files


# Leaves that are waiting, not working: an idle pool thread or event loop (or one waiting for the GIL).
WAITS = {
    ("concurrent/futures/thread.py", "_worker"),
    ("selectors.py", "select"),
    ("threading.py", "wait"),
    ("queue.py", "get"),
}
HARNESS = {"python", "bench"}
OWNERS = {
    "python": "asyncio event loop and thread hand-offs",
    "temporalio": "Temporal SDK: workflow activations, sandbox, payload conversion",
    "uvicorn": "uvicorn HTTP handling",
    "starlette": "Starlette routing and middleware",
    "fastapi": "FastAPI request handling",
}  # the standard library and this benchmark's own entry points


@dataclass(frozen=True)
class Frame:
    package: str
    """A Portico package, a third-party distribution's top package, or 'python' (stdlib, frozen)."""
    function: str
    where: str
    """Path relative to the repository or site-packages (stdlib: to its lib folder)."""


def _frame(text: str) -> Frame:
    """A py-spy frame 'function (/full/path/module.py:123)'."""
    function, _, location = text.rpartition(" (")
    path = location.rsplit(":", 1)[0]
    if "/site-packages/" in path:
        where = path.split("/site-packages/", 1)[1]
        return Frame(where.split("/", 1)[0], function, where)
    if path.startswith(f"{REPO_DIR}/"):
        where = path[len(str(REPO_DIR)) + 1 :]
        return Frame(where.split("/", 1)[0], function, where)
    where = path.rsplit("/python3.", 1)[-1].split("/", 1)[-1]
    return Frame("python", function, where)


def _charge(frames: list[Frame]) -> tuple[str, str] | None:
    """(label, leaf library) for one stack, root first; None for a thread that is only waiting."""
    last = frames[-1] if frames else None
    if last is None or (last.where.rsplit("/", 1)[-1], last.function.rsplit(".", 1)[-1]) in {
        (where.rsplit("/", 1)[-1], name) for where, name in WAITS
    }:
        return None
    leaf = next((f.package for f in reversed(frames) if f.package not in HARNESS), "python")
    for frame in reversed(frames):
        if frame.package in PORTICO_PACKAGES and frame.function not in WRAPPERS:
            return f"{frame.where} {frame.function}", leaf
    owner = next((f.package for f in frames if f.package not in HARNESS | PORTICO_PACKAGES), leaf)
    return OWNERS.get(owner, f"{owner} internals") + " (no Portico frame)", leaf


@dataclass
class Profile:
    costs: list[Cost]
    roles: dict[str, float]
    """Each process role's share of the working samples."""
    samples: int
    waiting: float
    """Share of all samples that were threads waiting (excluded from the costs)."""


def top_costs(files: dict[str, Path], count: int = 3) -> Profile:
    by_label: Counter[str] = Counter()
    leaves: defaultdict[str, Counter[str]] = defaultdict(Counter)
    by_role: Counter[str] = Counter()
    waiting = 0
    for key, path in files.items():
        role = key.split(":", 1)[0]
        for line in path.read_text(errors="replace").splitlines():
            stack, _, n = line.rpartition(" ")
            if not n.isdigit():
                continue
            charged = _charge([_frame(f) for f in stack.split(";") if f.strip()])
            if charged is None:
                waiting += int(n)
                continue
            label = f"{role}: {charged[0]}"
            by_label[label] += int(n)
            leaves[label][charged[1]] += int(n)
            by_role[role] += int(n)
    total = sum(by_label.values()) or 1
    costs = [
        Cost(label, samples / total, ", ".join(pkg for pkg, _ in leaves[label].most_common(2)))
        for label, samples in by_label.most_common(count)
    ]
    roles = {role: n / total for role, n in by_role.items()}
    return Profile(costs, roles, total, waiting / (total + waiting))


def settle() -> None:
    time.sleep(0.5)  # py-spy needs a moment to attach before the run starts
