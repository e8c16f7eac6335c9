"""Benchmarks: each row a ratio against a baseline measured in the same run (`python -m bench`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).parent  # no resolve(): the workflow sandbox re-imports this package
REPO_DIR = PACKAGE_DIR.parent
DEFAULT_OUTPUT = PACKAGE_DIR / "RESULTS.md"


@dataclass
class Row:
    """One line of the results table."""

    key: str
    """P1 … P5."""
    what: str
    measured: str
    """The figure, as printed (medians of the repetitions)."""
    baseline: str
    """The same-run baseline it is compared with, or '—'."""
    ratio: str
    """measured ÷ baseline as the target states it, or '—'."""
    target: str
    passed: bool | None
    """None: not measured (a part was missing); the note says why."""
    notes: list[str] = field(default_factory=list)
    projected: bool = False
    """The verdict rests on a projection from a smaller measured size (the note gives both)."""

    @property
    def verdict(self) -> str:
        verdict = {True: "pass", False: "MISS", None: "skipped"}[self.passed]
        return f"{verdict} (projected)" if self.projected and self.passed is not None else verdict
