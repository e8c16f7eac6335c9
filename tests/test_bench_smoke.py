"""`make bench`'s harness still works: the quick mode runs every row end to end (figures are not checked).

The quick run starts its own dev server, worker and API processes, so it takes about 100 s. A row that
errors makes `python -m bench` exit 1 and print its traceback; a row that merely misses its target does
not fail this test (the benchmark, not the test suite, owns the targets).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(300)


def test_quick_benchmark_prints_every_row(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert run.returncode == 0, f"bench --quick failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    written = output.read_text()
    rows = [line for line in written.splitlines() if re.match(r"\| P\d \|", line)]
    assert [row.split("|")[1].strip() for row in rows] == ["P1", "P2", "P3", "P3", "P4", "P5"], written
    for row in rows:
        verdict = row.rstrip(" |").rsplit("|", 1)[1].strip()
        assert verdict.startswith(("pass", "MISS")), f"row not measured: {row}"
    assert "## Machine" in written
    assert (REPO / "bench" / "RESULTS.md").read_text() != written, "a quick run replaced the results"
