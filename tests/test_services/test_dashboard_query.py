"""The dashboard at 100,000 engagements, on SQLite and PostgreSQL: every sort, filter and search reads
the right page through an index (the query plan says so), and the timing is reported (not asserted).

Run alone, with the timings printed:
    .venv/bin/python -m pytest -q -s -p no:cacheprovider tests/test_services/test_dashboard_query.py
The timings also land in test-output/dashboard-benchmark.txt.
"""

from __future__ import annotations

import json
import random
import re
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.config import Settings
from core.context import Resources
from core.models import Engagement, EngagementSearchTerm, EngagementStatus, Firm, Preparer
from services.dashboard import (
    STAGE_ORDER,
    DashboardQuery,
    compute_dashboard,
    counts_statement,
    load_dashboard,
    rows_statement,
    search_ids,
    search_terms,
    stage_statement,
)

BIG = 100_000
SMALL = 1_000  # the other firm: never in the big firm's pages
OUT = Path(__file__).resolve().parents[2] / "test-output" / "dashboard-benchmark.txt"
# Prefix-free names (distinct first letters): every collation sorts "First Last" the same way.
FIRST = [
    *("Aiden", "Beatriz", "Carlos", "Dmitri", "Elena", "Farah", "Grace", "Hiro"),
    *("Ines", "Jamal", "Keiko", "Liam", "Mei", "Noor", "Omar", "Priya"),
]
LAST = [
    *("Abbott", "Baker", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Huang"),
    *("Ito", "Jones", "Khan", "Lopez", "Moreau", "Nakamura", "Okafor", "Patel"),
]
STAGE_WEIGHTS = {
    "created": 5,
    "invited": 20,
    "expired": 2,
    "registered": 8,
    "verified": 10,
    "documents_sent": 10,
    "signing": 5,
    "signed": 2,
    "completed": 30,
    "needs_attention": 3,
    "cancelled": 5,
}
WAITING = {
    "created": "preparer",
    "expired": "preparer",
    "verified": "preparer",
    "needs_attention": "preparer",
    "invited": "taxpayer",
    "registered": "taxpayer",
    "documents_sent": "taxpayer",
    "signing": "spouse",
    "signed": "system",
}


# ---- seeding -----------------------------------------------------------------------------------------


def _rows(
    firm_id: int, preparers: list[int], first_id: int, count: int, rnd: random.Random
) -> Iterator[dict[str, Any]]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stages, weights = list(STAGE_WEIGHTS), list(STAGE_WEIGHTS.values())
    for ident in range(first_id, first_id + count):
        stage = rnd.choices(stages, weights)[0]
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        waiting_on = WAITING.get(stage)
        yield {
            "engagement_id": ident,
            "firm_id": firm_id,
            "preparer_id": rnd.choice(preparers),
            "tax_year": rnd.choice((2023, 2024, 2025)),
            "taxpayer_name": f"{first} {last}",
            "spouse_name": f"{rnd.choice(FIRST)} {last}" if rnd.random() < 0.3 else None,
            "stage": stage,
            "waiting_on": waiting_on,
            "waiting_since": start + timedelta(seconds=rnd.randrange(10_000_000)) if waiting_on else None,
            "reminders_sent": rnd.randrange(6),
            "needs_attention": stage == "needs_attention",
            "last_activity_at": start + timedelta(seconds=rnd.randrange(10_000_000), microseconds=ident),
            "version": 1,
            "detail": json.dumps({"taxpayer_step": "verified"}),
            "email": f"{first}.{last}{ident}@example.com".lower(),
            "phone": f"+1212{ident:07d}",
        }


def _copy(engine: Engine, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def _bulk(engine: Engine, model: Any, rows: list[dict[str, Any]]) -> None:
    """COPY on PostgreSQL, executemany on SQLite: seconds for 100,000 rows either way."""
    if not rows:
        return
    if engine.dialect.name == "postgresql":
        columns = list(rows[0])
        _copy(engine, model.__tablename__, columns, [tuple(r[c] for c in columns) for r in rows])
    else:
        with engine.begin() as conn:
            conn.execute(insert(model.__table__), rows)


def seed(engine: Engine) -> dict[str, Any]:
    rnd = random.Random(20260101)
    with Session(engine) as db:
        firms = [Firm(name="Big Practice"), Firm(name="Small Office")]
        db.add_all(firms)
        db.flush()
        big, small = firms[0].id or 0, firms[1].id or 0
        people = [
            Preparer(firm_id=big, email=f"p{i}@big.test", name=f"P{i}", password_hash="x") for i in range(3)
        ]
        people.append(Preparer(firm_id=small, email="p@small.test", name="S", password_hash="x"))
        db.add_all(people)
        db.commit()
        big_preparers = [p.id or 0 for p in people[:3]]
        small_preparer = people[3].id or 0
    status = list(_rows(big, big_preparers, 1, BIG, rnd)) + list(
        _rows(small, [small_preparer], BIG + 1, SMALL, rnd)
    )
    created = datetime(2026, 1, 1, tzinfo=UTC)
    _bulk(
        engine,
        Engagement,
        [
            {
                "id": r["engagement_id"],
                "firm_id": r["firm_id"],
                "preparer_id": r["preparer_id"],
                "tax_year": r["tax_year"],
                "created_at": created,
            }
            for r in status
        ],
    )
    terms = []
    for r in status:
        first, last = r["taxpayer_name"].split(" ")
        for term in search_terms(first, last, r["email"], r["phone"]):
            terms.append({"firm_id": r["firm_id"], "term": term, "engagement_id": r["engagement_id"]})
    contacts = {r["engagement_id"]: (r.pop("email"), r.pop("phone")) for r in status}
    _bulk(engine, EngagementStatus, status)
    _bulk(engine, EngagementSearchTerm, terms)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return {"big": big, "small": small, "rows": status, "contacts": contacts, "preparers": big_preparers}


# ---- what the right page is, computed in Python ----------------------------------------------------------


def _sort_key(dialect: str, column: str) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    null_rank = -1 if dialect == "sqlite" else 1  # SQLite sorts NULL first, PostgreSQL last (ascending)

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        value = row[column]
        return (null_rank, 0, row["engagement_id"]) if value is None else (0, value, row["engagement_id"])

    return key


def expected_page(
    dialect: str, rows: list[dict[str, Any]], q: DashboardQuery, matching: set[int] | None = None
) -> list[int]:
    chosen = [
        r
        for r in rows
        if (q.stage is None or r["stage"] == q.stage)
        and (q.preparer_id is None or r["preparer_id"] == q.preparer_id)
        and (matching is None or r["engagement_id"] in matching)
    ]
    if q.sort == "stage":
        ordered: list[dict[str, Any]] = []
        stages = list(STAGE_ORDER)
        for stage in reversed(stages) if q.descending else stages:
            part = sorted((r for r in chosen if r["stage"] == stage), key=_sort_key(dialect, "waiting_since"))
            ordered += reversed(part) if q.descending else part
    else:
        column = {
            "taxpayer": "taxpayer_name",
            "year": "tax_year",
            "since": "waiting_since",
            "activity": "last_activity_at",
            "reminders": "reminders_sent",
            "waiting_on": "waiting_on",
            "id": "engagement_id",
        }[q.sort]
        ordered = sorted(chosen, key=_sort_key(dialect, column), reverse=q.descending)
    start = (q.page - 1) * q.per_page
    return [r["engagement_id"] for r in ordered[start : start + q.per_page]]


# ---- query plans -----------------------------------------------------------------------------------------


def _sql(engine: Engine, statement: Any) -> str:
    return str(statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))


def plan(engine: Engine, statement: Any) -> list[str]:
    """The plan as lines: SQLite's EXPLAIN QUERY PLAN details, or PostgreSQL's nodes with their index."""
    sql = _sql(engine, statement)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return [str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
        tree = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}").scalar_one()
    lines: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        lines.append(
            f"{node['Node Type']} {node.get('Relation Name', '')} {node.get('Index Name', '')}".strip()
        )
        for child in node.get("Plans", []):
            walk(child)

    walk((tree if isinstance(tree, list) else json.loads(tree))[0]["Plan"])
    return lines


def assert_indexed(engine: Engine, statement: Any, *, sorted_by_index: bool = True) -> list[str]:
    lines = plan(engine, statement)
    joined = "\n".join(lines)
    if engine.dialect.name == "sqlite":
        assert "SCAN engagementstatus" not in joined, joined  # a full table scan
        # An index range, or (after a search) the matching rows fetched by primary key.
        assert any(
            "engagementstatus USING" in line and ("INDEX" in line or "PRIMARY KEY" in line) for line in lines
        ), joined
        if sorted_by_index:
            assert "TEMP B-TREE FOR ORDER BY" not in joined, joined
    else:
        assert "Seq Scan engagementstatus" not in joined, joined
        assert any(("Index" in line) and "engagementstatus" in line for line in lines), joined
        assert "Seq Scan engagementsearchterm" not in joined, joined
        if sorted_by_index:
            assert not any(line.startswith("Sort") for line in lines), joined
    return lines


# ---- the test ----------------------------------------------------------------------------------------------


@pytest.fixture
def big_firm(db_settings: Settings) -> Iterator[tuple[Resources, dict[str, Any]]]:
    resources = Resources.from_settings(db_settings)
    try:
        yield resources, seed(resources.engine)
    finally:
        resources.engine.dispose()


def _median_ms(run: Callable[[], object], times: int = 7) -> float:
    run()  # warm the caches once
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def test_dashboard_at_100k_engagements(big_firm: tuple[Resources, dict[str, Any]]) -> None:
    resources, data = big_firm
    engine, dialect, firm = resources.engine, resources.engine.dialect.name, data["big"]
    rows = [r for r in data["rows"] if r["firm_id"] == firm]
    deep = BIG // 50 // 2  # a page in the middle: offset 49,950
    shelby = next(r for r in rows if r["taxpayer_name"].startswith("Keiko L"))
    cases: list[tuple[str, DashboardQuery, set[int] | None]] = [
        ("default (last activity), page 1", DashboardQuery(), None),
        ("last activity, page 2", DashboardQuery(page=2), None),
        (f"last activity, page {deep} of 2,000", DashboardQuery(page=deep, per_page=50), None),
        ("taxpayer A-Z, page 3", DashboardQuery(sort="taxpayer", descending=False, page=3), None),
        ("tax year, page 1", DashboardQuery(sort="year", descending=True), None),
        ("waiting since (oldest first)", DashboardQuery(sort="since", descending=False), None),
        ("waiting on, page 4", DashboardQuery(sort="waiting_on", descending=False, page=4), None),
        ("reminders sent, page 1", DashboardQuery(sort="reminders"), None),
        ("engagement #, page 1", DashboardQuery(sort="id", descending=False), None),
        ("stage = invited", DashboardQuery(stage="invited"), None),
        ("stage = needs_attention, page 2", DashboardQuery(stage="needs_attention", page=2), None),
        ("preparer filter", DashboardQuery(preparer_id=data["preparers"][1]), None),
        (
            "stage order, across a stage boundary",
            DashboardQuery(sort="stage", descending=False, page=201, per_page=25),
            None,
        ),
        ("stage order, descending", DashboardQuery(sort="stage", descending=True, page=3), None),
        (
            "search: last name prefix 'naka'",
            DashboardQuery(search="naka"),
            {r["engagement_id"] for r in rows if r["taxpayer_name"].split(" ")[1].lower().startswith("naka")},
        ),
        (
            "search: 'keiko lop'",
            DashboardQuery(search="keiko lop"),
            {r["engagement_id"] for r in rows if r["taxpayer_name"].startswith("Keiko Lop")},
        ),
        (
            "search: phone",
            DashboardQuery(
                search=f"(212) {data['contacts'][shelby['engagement_id']][1][5:8]}-"
                f"{data['contacts'][shelby['engagement_id']][1][8:]}"
            ),
            {shelby["engagement_id"]},
        ),
    ]
    report = [f"\n{dialect}: dashboard at {BIG:,} engagements (+{SMALL:,} in another firm), median of 7 runs"]
    with Session(engine) as db:
        for label, query, matching in cases:
            page = load_dashboard(db, firm, query)
            got = [r.status.engagement_id for r in page.rows]
            assert got == expected_page(dialect, rows, query, matching), label
            assert got, label
            assert all(r.status.firm_id == firm for r in page.rows)
            assert page.total == len(
                expected_page(
                    dialect,
                    rows,
                    DashboardQuery(**{**query.__dict__, "page": 1, "per_page": 10**6}),
                    matching,
                )
            )
            # The plan: the page query and the counts go through indexes.
            offset, limit = (query.page - 1) * query.per_page, query.per_page
            ids = search_ids(db, firm, query)
            if query.sort == "stage":
                first_stage = next(s for s in STAGE_ORDER if page.counts.get(s))
                assert_indexed(engine, stage_statement(firm, query, first_stage, 0, limit, ids))
            else:
                # Deep offsets may make PostgreSQL prefer a full sort; the first page of that sort is indexed.
                # A search sorts only its matches (found through the term index): no index order needed.
                statement = rows_statement(firm, query, 0 if offset > 10_000 else offset, limit, ids)
                in_order = not query.search and (
                    dialect == "sqlite" or not (query.stage or query.preparer_id)
                )
                assert_indexed(engine, statement, sorted_by_index=in_order)
            # The counts read every matching row of the firm: SQLite walks an index; PostgreSQL may rightly
            # prefer a sequential scan when that is most of the table (a small firm's is asserted below).
            counts_plan = "\n".join(plan(engine, counts_statement(firm, query, ids)))
            if dialect == "sqlite":
                assert_indexed(engine, counts_statement(firm, query, ids), sorted_by_index=False)
            # What reading the page costs (`load_dashboard` keeps it until the firm's rows change).
            ms = _median_ms(lambda q=query: compute_dashboard(db, firm, q, {}))  # type: ignore[misc]
            how = "seq scan" if re.search(r"(Seq Scan|SCAN) engagementstatus", counts_plan) else "index"
            report.append(f"  {label:<42} {ms:8.1f} ms   ({page.total:,} matching; counts by {how})")
        # The other firm sees its own thousand and nothing else, through indexes too.
        small_query = DashboardQuery(per_page=200)
        assert_indexed(engine, counts_statement(data["small"], small_query), sorted_by_index=False)
        assert_indexed(engine, rows_statement(data["small"], small_query, 0, 200), sorted_by_index=False)
        other = load_dashboard(db, data["small"], small_query)
        assert other.all_count == SMALL and all(r.status.firm_id == data["small"] for r in other.rows)
        assert load_dashboard(db, data["small"], DashboardQuery(search="keiko lop")).total == sum(
            1
            for r in data["rows"]
            if r["firm_id"] == data["small"] and r["taxpayer_name"].startswith("Keiko Lop")
        )
    print("\n".join(report))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a") as out:
        out.write("\n".join(report) + "\n")
