"""P7: what a season of 1,000,000 engagements needs, recomputed from this run's own measurements.

The row runs full engagements (P1's journey: a joint return, two documents, four signatures, sealed)
one at a time on an embedded stack of its own and measures, per engagement: the workflow history
(events and bytes, fetched from Temporal), the dev server's persistence (its SQLite file, by table),
worker, API and dev-server CPU, Portico's database rows and bytes (SQLite's dbstat, by table) and the
document store's objects and bytes (by kind). It also reads the recorded histories in
tests/histories/ for the spread of paths an engagement takes. `capacity_model` turns these into the
season's needs under the assumptions it states, and `docs/capacity.md` is written from
bench/capacity_template.md (in quick mode to the run's work folder, never over the committed file).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import WorkflowHistory

from bench import PACKAGE_DIR, REPO_DIR, Row
from bench.capacity_model import Measured, Recorded, render
from bench.embedded import FORMS, EmbeddedStack
from bench.stack import DevServer

DOC = REPO_DIR / "docs" / "capacity.md"
TEMPLATE = PACKAGE_DIR / "capacity_template.md"
HISTORIES = REPO_DIR / "tests" / "histories"


@dataclass(frozen=True)
class P7Size:
    engagements: int
    """Full engagements measured, one at a time (after one warm-up engagement)."""
    write_doc: bool
    """True: write docs/capacity.md; False (quick mode): a copy in the run's work folder."""


@dataclass
class Snapshot:
    cpu: dict[str, float]
    tables: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Portico's database: b-tree name → (leaf cells, payload bytes)."""
    temporal: dict[str, tuple[int, int]] = field(default_factory=dict)
    store: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Document store: kind (the key's prefix) → (objects, bytes)."""


async def run(server: DevServer, root: Path, size: P7Size) -> Row:
    stack = EmbeddedStack(server, root, "p7")
    try:
        await stack.start()
        await stack.full_journey("p7warm")  # first-time costs (imports, caches, the preparer's session)
        before = _snapshot(stack, server)
        ids = [await stack.full_journey(f"p7x{n}") for n in range(size.engagements)]
        after = _snapshot(stack, server)
        histories = [
            await stack.client.get_workflow_handle(stack.workflow_id(i)).fetch_history() for i in ids
        ]
    finally:
        await stack.stop()
    measured = _measured(before, after, histories, size.engagements)
    output = DOC if size.write_doc else root / "capacity.md"
    model = render(TEMPLATE.read_text(), measured, _recorded())
    output.write_text(model.text)
    return Row(
        key="P7",
        what="capacity for a season of 1,000,000 engagements, from this run's measurements",
        measured=model.summary,
        baseline="—",
        ratio="—",
        target="docs/capacity.md recomputed by `make bench`",
        passed=True,
        notes=[
            f"Measured on {size.engagements} full engagements (joint return, 2 documents, 4 signatures, "
            f"sealed), one at a time: {model.inputs_line}. Written to "
            f"{output.relative_to(REPO_DIR) if output.is_relative_to(REPO_DIR) else output}."
        ],
    )


def _snapshot(stack: EmbeddedStack, server: DevServer) -> Snapshot:
    cpu = {"server": server.proc.cpu_seconds()}
    cpu["worker"] = sum(w.cpu_seconds() for w in stack.workers)
    cpu["api"] = stack.api.cpu_seconds() if stack.api else 0.0
    database = Path(stack.settings.database_url.removeprefix("sqlite:///"))
    return Snapshot(
        cpu=cpu,
        tables=_btrees(database),
        temporal=_btrees(_temporal_file(server)),
        store=_store(stack.settings.data_dir / "documents"),
    )


def _btrees(path: Path | None) -> dict[str, tuple[int, int]]:
    """Per table and index of an SQLite file ('table:name', 'index:name'): rows (leaf cells) and payload
    bytes, from dbstat."""
    if path is None or not path.exists():
        return {}
    query = (
        "SELECT coalesce(s.type, 'table') || ':' || d.name, "
        "sum(CASE WHEN d.pagetype = 'leaf' THEN d.ncell ELSE 0 END), sum(d.payload) "
        "FROM dbstat AS d LEFT JOIN sqlite_schema AS s ON s.name = d.name GROUP BY d.name"
    )
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        return {name: (int(cells), int(payload)) for name, cells, payload in db.execute(query)}


def _temporal_file(server: DevServer) -> Path | None:
    """The dev server's SQLite file (`--db-filename`), or None for one that keeps history in memory."""
    args = [str(a) for a in server.proc.popen.args]  # type: ignore[union-attr]
    return Path(args[args.index("--db-filename") + 1]) if "--db-filename" in args else None


def _store(folder: Path) -> dict[str, tuple[int, int]]:
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for path in folder.rglob("*"):
        if path.is_file():
            kind = path.relative_to(folder).parts[0]
            counts[kind] += 1
            sizes[kind] += path.stat().st_size
    return {kind: (counts[kind], sizes[kind]) for kind in counts}


def _delta(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], n: int
) -> dict[str, tuple[float, float]]:
    out = {}
    for name, (count, size) in after.items():
        old = before.get(name, (0, 0))
        if (count, size) != old:
            out[name] = ((count - old[0]) / n, (size - old[1]) / n)
    return out


def _measured(before: Snapshot, after: Snapshot, histories: list[WorkflowHistory], n: int) -> Measured:
    events = [len(h.events) for h in histories]
    sizes = [sum(e.ByteSize() for e in h.events) for h in histories]
    return Measured(
        engagements=n,
        cpu={k: (after.cpu[k] - before.cpu[k]) / n for k in after.cpu},
        history_events=sum(events) / n,
        history_bytes=sum(sizes) / n,
        portico_db=_delta(before.tables, after.tables, n),
        temporal_db=_delta(before.temporal, after.temporal, n),
        store=_delta(before.store, after.store, n),
        documents=len(FORMS),
        document_bytes=sum(len(data) for _, data in FORMS) / len(FORMS),
    )


def _recorded() -> list[Recorded]:
    """The committed histories of tests/histories/ (each a path an engagement took), by size."""
    out = []
    for path in sorted(HISTORIES.glob("*.json")):
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        out.append(Recorded(path.stem, len(history.events), sum(e.ByteSize() for e in history.events)))
    return sorted(out, key=lambda r: r.bytes)
