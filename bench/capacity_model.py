"""The season capacity model: measured per-engagement costs times the assumptions below → docs/capacity.md.

Every figure the document prints is either measured by P7 in the same run or computed here from one of
the assumptions, each stated with the reason for its value. Change an assumption here and `make bench`
(or `python -m bench --rows P7`) recomputes the document.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from string import Template

KIB, MIB, GIB, TIB = 2**10, 2**20, 2**30, 2**40


@dataclass(frozen=True)
class Assumption:
    value: float
    why: str


SEASON = Assumption(1_000_000, "engagements in one filing season (the question asked)")
PEAK_WEEK = Assumption(
    0.15,
    "share of the season's engagements whose work falls in its busiest week (the one before the deadline)",
)
WORK_HOURS = Assumption(
    12, "hours a day over which that week's work is spread (preparers and clients, US time zones)"
)
PEAK_HOUR = Assumption(2.0, "busiest hour of a peak day ÷ that day's average hour")
UTILISATION = Assumption(
    0.6, "CPU share a process is planned to, leaving headroom for bursts and a lost process"
)
MIN_PROCESSES = Assumption(2, "fewest processes of each kind, so one can fail or be redeployed")
SHARDS = Assumption(
    512,
    "Temporal history shards: fixed when the cluster is created, so sized ahead; Temporal's guidance is "
    "128 to 512 for small production, 1,024 to 2,048 for medium",
)
TEMPORAL_RETENTION = Assumption(
    1.0,
    "share of the season's closed histories still held by Temporal at its end (namespace retention of "
    "at least the season; lower it and persistence shrinks in proportion)",
)
PG_HEAP_ROW = Assumption(
    28, "PostgreSQL bytes per table row beyond its data: 24 B tuple header + 4 B line pointer"
)
PG_INDEX_ENTRY = Assumption(
    12, "PostgreSQL bytes per index entry beyond its key: 8 B index tuple header + 4 B pointer"
)
PG_FILL = Assumption(0.85, "share of each 8 KiB page filled (fill factor, free space left by updates)")
SEASONS_KEPT = Assumption(3, "seasons kept: the IRS asks for Form 8879 records for three years")
DOCUMENT_BYTES = Assumption(
    512 * KIB,
    "bytes of a real document sent for signature (a return's PDF runs from 100 KiB for a Form 8879 to a "
    "few MiB for a full return); the bench sends one-page forms",
)
UPLOAD_BYTES = Assumption(
    8 * MIB, "bytes a client uploads per engagement (W-2s, 1099s: about eight scans or phone photos of 1 MiB)"
)
COPY_KINDS = ("sent", "signed", "sealed")
"""Document store kinds that hold a whole copy of a sent document (the original, each signed revision,
the sealed version): these grow with the document's size; the others (certificates, signature images)
do not."""


@dataclass(frozen=True)
class Measured:
    engagements: int
    cpu: dict[str, float]
    """Seconds per engagement: 'worker', 'api', 'server'."""
    history_events: float
    history_bytes: float
    portico_db: dict[str, tuple[float, float]]
    """'table:name' / 'index:name' → (rows, payload bytes) per engagement (SQLite)."""
    temporal_db: dict[str, tuple[float, float]]
    """The same for the Temporal dev server's SQLite file (empty when it keeps history in memory)."""
    store: dict[str, tuple[float, float]]
    """Document store kind → (objects, bytes) per engagement."""
    documents: int
    """Documents sent per engagement."""
    document_bytes: float
    """Bytes of each document the bench sends."""


@dataclass(frozen=True)
class Recorded:
    name: str
    events: int
    bytes: int


@dataclass(frozen=True)
class Model:
    text: str
    summary: str
    inputs_line: str


def _size(n: float) -> str:
    for unit, scale in (("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:,.0f} B"


def _processes(cpu_seconds_per_second: float) -> int:
    return max(int(MIN_PROCESSES.value), math.ceil(cpu_seconds_per_second / UTILISATION.value))


def _postgres(rows: dict[str, tuple[float, float]]) -> tuple[float, float, float]:
    """(table rows, SQLite payload bytes, PostgreSQL bytes estimated) per engagement."""
    table_rows = sum(r for name, (r, _) in rows.items() if name.startswith("table:"))
    payload = sum(b for _, (_, b) in rows.items())
    index_rows = sum(r for name, (r, _) in rows.items() if name.startswith("index:"))
    pg = (payload + table_rows * PG_HEAP_ROW.value + index_rows * PG_INDEX_ENTRY.value) / PG_FILL.value
    return table_rows, payload, pg


def _store_bytes(m: Measured) -> tuple[float, float]:
    """(bytes per engagement as measured, as a real engagement's documents and uploads would make it)."""
    measured = sum(b for _, b in m.store.values())
    copies = sum(n for kind, (n, _) in m.store.items() if kind in COPY_KINDS)
    real = measured + copies * (DOCUMENT_BYTES.value - m.document_bytes) + UPLOAD_BYTES.value
    return measured, real


def _table(rows: dict[str, tuple[float, float]], top: int = 8) -> str:
    ordered = sorted(rows.items(), key=lambda item: -item[1][1])
    lines = ["| table or index | rows per engagement | payload bytes per engagement |", "|---|---:|---:|"]
    lines += [f"| {name} | {r:,.1f} | {b:,.0f} |" for name, (r, b) in ordered[:top]]
    if len(ordered) > top:
        rest = ordered[top:]
        rest_rows, rest_bytes = sum(r for _, (r, _) in rest), sum(b for _, (_, b) in rest)
        lines.append(f"| {len(rest)} others | {rest_rows:,.1f} | {rest_bytes:,.0f} |")
    return "\n".join(lines)


def _assumptions() -> str:
    named = {
        "SEASON": SEASON,
        "PEAK_WEEK": PEAK_WEEK,
        "WORK_HOURS": WORK_HOURS,
        "PEAK_HOUR": PEAK_HOUR,
        "UTILISATION": UTILISATION,
        "MIN_PROCESSES": MIN_PROCESSES,
        "SHARDS": SHARDS,
        "TEMPORAL_RETENTION": TEMPORAL_RETENTION,
        "PG_HEAP_ROW": PG_HEAP_ROW,
        "PG_INDEX_ENTRY": PG_INDEX_ENTRY,
        "PG_FILL": PG_FILL,
        "SEASONS_KEPT": SEASONS_KEPT,
        "DOCUMENT_BYTES": DOCUMENT_BYTES,
        "UPLOAD_BYTES": UPLOAD_BYTES,
    }
    lines = ["| assumption | value | why |", "|---|---:|---|"]
    lines += [
        f"| `{name}` | {a.value:,.2f}".rstrip("0").rstrip(".") + f" | {a.why} |" for name, a in named.items()
    ]
    return "\n".join(lines)


def render(template: str, m: Measured, recorded: list[Recorded]) -> Model:
    season = SEASON.value
    peak_rate = season * PEAK_WEEK.value / 7 / (WORK_HOURS.value * 3600) * PEAK_HOUR.value
    worker_cpu, api_cpu, server_cpu = (m.cpu.get(k, 0.0) for k in ("worker", "api", "server"))
    largest = max(recorded, key=lambda r: r.bytes) if recorded else Recorded("none", 0, 0)
    plan_events = max(m.history_events, largest.events)
    plan_bytes = max(m.history_bytes, largest.bytes)
    temporal_per = sum(b for _, (_, b) in m.temporal_db.items())
    history_node = sum(b for name, (_, b) in m.temporal_db.items() if "history_node" in name)
    # The dev server's file holds the measured (P1) engagement; a larger planned history scales its
    # history part, the rest (mutable state, visibility, tasks) stays per engagement.
    temporal_plan = temporal_per + max(0.0, plan_bytes - m.history_bytes) if temporal_per else 0.0
    retained = season * TEMPORAL_RETENTION.value
    rows, payload, pg = _postgres(m.portico_db)
    store_measured, store_real = _store_bytes(m)
    workers = _processes(peak_rate * worker_cpu)
    apis = _processes(peak_rate * api_cpu)
    values = {
        "season": f"{season:,.0f}",
        "engagements": f"{m.engagements}",
        "peak_rate": f"{peak_rate:.2f}",
        "peak_rate_hour": f"{peak_rate * 3600:,.0f}",
        "worker_cpu_ms": f"{worker_cpu * 1000:,.0f}",
        "api_cpu_ms": f"{api_cpu * 1000:,.0f}",
        "server_cpu_ms": f"{server_cpu * 1000:,.0f}",
        "worker_cores": f"{peak_rate * worker_cpu:.2f}",
        "api_cores": f"{peak_rate * api_cpu:.2f}",
        "server_cores": f"{peak_rate * server_cpu:.2f}",
        "workers": f"{workers}",
        "apis": f"{apis}",
        "history_events": f"{m.history_events:,.0f}",
        "history_bytes": _size(m.history_bytes),
        "largest_name": largest.name,
        "plan_events": f"{plan_events:,.0f}",
        "plan_bytes": _size(plan_bytes),
        "events_per_second": f"{peak_rate * plan_events:,.0f}",
        "events_per_shard": f"{peak_rate * plan_events / SHARDS.value:.2f}",
        "shards": f"{SHARDS.value:,.0f}",
        "recorded_table": "\n".join(
            ["| history | events | bytes |", "|---|---:|---:|"]
            + [f"| {r.name} | {r.events} | {_size(r.bytes)} |" for r in recorded]
        ),
        "temporal_per": _size(temporal_per) if temporal_per else "not measured (history in memory)",
        "history_node": _size(history_node),
        "temporal_plan": _size(temporal_plan),
        "temporal_season": _size(temporal_plan * retained),
        "temporal_table": _table(m.temporal_db) if m.temporal_db else "(not measured)",
        "pg_rows": f"{rows:,.1f}",
        "pg_payload": _size(payload),
        "pg_per": _size(pg),
        "pg_season": _size(pg * season),
        "pg_kept": _size(pg * season * SEASONS_KEPT.value),
        "portico_table": _table(m.portico_db),
        "store_objects": f"{sum(n for n, _ in m.store.values()):,.1f}",
        "store_measured": _size(store_measured),
        "store_table": "\n".join(
            ["| kind | objects per engagement | bytes per engagement |", "|---|---:|---:|"]
            + [f"| {kind} | {n:,.1f} | {_size(b)} |" for kind, (n, b) in sorted(m.store.items())]
        ),
        "document_bytes": _size(m.document_bytes),
        "store_real": _size(store_real),
        "s3_season": _size(store_real * season),
        "s3_kept": _size(store_real * season * SEASONS_KEPT.value),
        "assumptions": _assumptions(),
    }
    summary = (
        f"{workers} workers, {apis} API processes, {SHARDS.value:,.0f} shards; Temporal "
        f"{values['temporal_season']}, PostgreSQL {values['pg_season']}, S3 {values['s3_season']} a season"
    )
    inputs_line = (
        f"worker {values['worker_cpu_ms']} ms, API {values['api_cpu_ms']} ms, dev server "
        f"{values['server_cpu_ms']} ms of CPU; history {values['history_events']} events, "
        f"{values['history_bytes']}; {values['pg_rows']} rows, {values['pg_payload']} in the database; "
        f"{values['store_measured']} stored, per engagement"
    )
    return Model(Template(template).substitute(values), summary, inputs_line)
