"""The one results table, printed and written to RESULTS.md with the machine it was measured on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench import Row
from bench.profile import Cost

HEADER = ("row", "what", "measured (median)", "baseline, same run", "ratio", "target", "result")


@dataclass
class Report:
    mode: str
    rows: list[Row]
    machine: list[tuple[str, str]]
    wall_seconds: float
    costs: list[Cost] = field(default_factory=list)
    profile_note: str = ""
    extra_notes: list[str] = field(default_factory=list)


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|")


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        cells = (row.key, row.what, row.measured, row.baseline, row.ratio, row.target, row.verdict)
        lines.append("| " + " | ".join(_escape(c) for c in cells) + " |")
    return "\n".join(lines)


def notes(report: Report) -> str:
    lines = []
    for row in report.rows:
        for note in row.notes:
            lines.append(f"- **{row.key}** {note}")
    lines.extend(f"- {note}" for note in report.extra_notes)
    return "\n".join(lines)


def profile_text(report: Report) -> str:
    lines = [report.profile_note] if report.profile_note else []
    for number, cost in enumerate(report.costs, start=1):
        lines.append(f"{number}. {cost.label}: {cost.share:.0%} of sampled CPU (mostly in {cost.inside})")
    return "\n".join(lines)


def console(report: Report) -> str:
    return "\n".join(
        [
            f"Portico benchmarks ({report.mode}), {report.wall_seconds:.0f} s",
            "",
            table(report.rows),
            "",
            notes(report),
            "",
            "Where P1's time goes:",
            profile_text(report),
        ]
    )


def markdown(report: Report) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = "\n".join(f"| {name} | {_escape(value)} |" for name, value in report.machine)
    return "\n".join(
        [
            "# Portico benchmark results",
            "",
            f"Written by `python -m bench{' --quick' if report.mode == 'quick' else ''}` on {when}; "
            f"the run took {report.wall_seconds:.0f} s. Every ratio is against a baseline measured in the "
            "same run; figures are medians of the repetitions."
            + (
                " **Quick mode: small counts, a smoke test of the harness; the figures are not the "
                "benchmark.**"
                if report.mode == "quick"
                else ""
            ),
            "",
            table(report.rows),
            "",
            "## Notes",
            "",
            notes(report),
            "",
            "## Where P1's time goes",
            "",
            profile_text(report) or "not profiled",
            "",
            "## Machine",
            "",
            "| | |",
            "|---|---|",
            machine,
            "",
        ]
    )


def write(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(report))
