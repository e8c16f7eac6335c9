"""P3: the preparer's dashboard (filtered, sorted, paged) over 100,000 engagements, SQLite and PostgreSQL.

Baseline: the very statements the page ran (captured from the app's engine), replayed on a raw driver
connection. Peak memory: the API process's VmHWM after the requests, at a tenth of the rows and at all of
them; "independent of row count" means the larger run peaks within 5% of the smaller.
"""

from __future__ import annotations

import asyncio
import random
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, event, insert, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel, select

from bench import Row, journey
from bench import p4b_dashboard_page as p4b
from bench.p4b_dashboard_page import P4bSize
from bench.stack import DevServer, api_url, make_settings, prepare, start_api, wait_for_api
from bench.stats import median_percentile, mib, ms
from core.models import Preparer
from portico.app import create_app
from services.dashboard import name_word


@dataclass(frozen=True)
class DashboardPage:
    path: str
    described: str

    def query(self, stage: str, page: int) -> dict[str, str | int]:
        return {"stage": stage, "page": page}


# P3 measures the JSON listing (api/routes/preparer.py) the dashboard page stands on (services/dashboard.py,
# its pages kept under the firm's projection version); P4b measures the page itself.
DASHBOARD = DashboardPage("/api/engagements", "the JSON listing the dashboard page stands on")

P95_LIMIT = 0.050
PAGE_PATH = "/preparer"  # the dashboard page itself, for P4b
MEMORY_SLACK = 0.05
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
STAGES = ["invited", "registered", "verified", "documents_sent", "signing", "completed", "needs_attention"]
PAGES = [1, 3, 10, 40]
VARIANTS = [(stage, page) for stage in STAGES for page in PAGES]
ALL_STAGES = [*STAGES, "created", "signed", "cancelled", "expired"]
CHUNK = 10_000
TAX_YEARS = (2025, 2024, 2023)
# Last names shared as a real firm's are (Smith, Garcia …): 320 of them over 100,000 returns, so every
# name's search word is an index range of about 310 engagements for the Returning badge to look through.
LAST_NAMES = [
    f"{stem}{suffix}"
    for stem in ("Smith", "Garcia", "Nguyen", "Oneil", "Patel", "Kim", "Brown", "Lopez")
    for suffix in (
        "",
        "son",
        "ez",
        "ski",
        "er",
        "man",
        "ford",
        "ley",
        "ton",
        "berg",
        "stein",
        "wood",
        "field",
        "worth",
        "ham",
        "by",
        "well",
        "more",
        "dale",
        "ridge",
        "brook",
        "stone",
        "ward",
        "land",
        "hurst",
        "combe",
        "wick",
        "shaw",
        "croft",
        "gate",
        "mont",
        "ville",
        "ard",
        "ot",
        "ini",
        "ova",
        "elli",
        "ado",
        "ero",
        "ic",
    )
]


@dataclass(frozen=True)
class P3Size:
    rows: int
    requests: int


@dataclass
class Measurement:
    rows: int
    api: list[float] = field(default_factory=list)
    sql: list[float] = field(default_factory=list)
    peak_rss: int = 0


Statements = dict[tuple[str, int], list[tuple[str, Any]]]


async def run(server: DevServer, root: Path, size: P3Size, page_size: P4bSize) -> list[Row]:
    """P3 and P4b on SQLite, then on PostgreSQL."""
    rows = await _run_on(server, root, "SQLite", "", size, page_size)
    admin = _postgres_admin()
    if admin is None:
        why = f"no PostgreSQL server answers at {POSTGRES}"
        rows += [_skipped("PostgreSQL", why), p4b.skipped("PostgreSQL", why)]
        return rows
    url = _create_database(admin)
    try:
        rows += await _run_on(server, root, "PostgreSQL", url, size, page_size)
    finally:
        _drop_database(admin, url)
        admin.dispose()
    return rows


async def _run_on(
    server: DevServer, root: Path, kind: str, url: str, size: P3Size, page_size: P4bSize
) -> list[Row]:
    settings = make_settings(server, root / f"p3-{kind.lower()}", database_url=url)
    resources = prepare(settings)
    journey.make_preparer(resources)
    with Session(resources.engine) as db:
        preparer = db.exec(select(Preparer)).one()
    results = []
    done = 0
    for rows in (size.rows // 10, size.rows):
        await asyncio.to_thread(_insert_rows, resources.engine, preparer, done, rows)
        done = rows
        results.append(await _measure(server, settings, root, rows, size.requests))
    paths = [f"{PAGE_PATH}?stage={stage}&page={page}" for stage, page in VARIANTS]
    try:
        page = await p4b.run(settings, root, kind, size.rows, page_size, paths)
    except Exception as error:
        traceback.print_exc()
        page = p4b.failed(kind, error)
    resources.engine.dispose()
    return [_row(kind, results, size), page]


async def _measure(server: DevServer, settings: Any, root: Path, rows: int, requests: int) -> Measurement:
    api = start_api(settings, root / "logs", name=f"p3-api-{rows}")
    try:
        await wait_for_api(api, settings)
        async with journey.browser(api_url(settings)) as http:
            await journey.login_preparer(http)
            cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
            # Captured again at each size: the page may plan its statements from the counts it finds.
            statements = await _capture(settings, server, cookie)
            plan = [VARIANTS[i % len(VARIANTS)] for i in range(requests)]
            for stage, page in VARIANTS:  # warm-up: every variant once
                journey.expect(await http.get(DASHBOARD.path, params=DASHBOARD.query(stage, page)), 200)
            result = Measurement(rows)
            for stage, page in plan:
                started = time.perf_counter()
                journey.expect(await http.get(DASHBOARD.path, params=DASHBOARD.query(stage, page)), 200)
                result.api.append(time.perf_counter() - started)
        result.peak_rss = api.memory("VmHWM")
    finally:
        await asyncio.to_thread(api.stop)
    result.sql = await asyncio.to_thread(_replay, settings.database_url, statements, plan)
    return result


async def _capture(settings: Any, server: DevServer, cookie: str) -> Statements:
    """The statements the page runs per variant that read the projection, from an in-process app."""
    app = create_app(settings, temporal=server.portico_client())
    captured: list[tuple[str, Any]] = []
    out: Statements = {}
    async with app.router.lifespan_context(app):
        engine: Engine = app.state.resources.engine

        def remember(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            captured.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", remember)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", headers={"cookie": cookie}
        ) as http:
            for stage, page in VARIANTS:
                captured.clear()
                journey.expect(await http.get(DASHBOARD.path, params=DASHBOARD.query(stage, page)), 200)
                out[(stage, page)] = [(s, p) for s, p in captured if "engagementstatus" in s.lower()]
    if not any(out.values()):
        raise RuntimeError(f"{DASHBOARD.path} ran no statement on the engagement status projection")
    return out


def _replay(url: str, statements: Statements, plan: list[tuple[str, int]]) -> list[float]:
    engine = create_engine(url)
    connection = engine.raw_connection()
    try:
        timings = []
        for index, variant in enumerate([*VARIANTS, *plan]):  # the first pass warms up, like the API's
            started = time.perf_counter()
            cursor = connection.cursor()
            for statement, parameters in statements[variant]:
                cursor.execute(statement, parameters)
                cursor.fetchall()
            cursor.close()
            if index >= len(VARIANTS):
                timings.append(time.perf_counter() - started)
        connection.rollback()
        return timings
    finally:
        connection.close()
        engine.dispose()


def _insert_rows(engine: Engine, preparer: Preparer, start: int, stop: int) -> None:
    """Engagements, their status rows, signers and last-name search words, ids start+1 … stop, in bulk
    (the same rows every run)."""
    tables = SQLModel.metadata.tables
    for low in range(start, stop, CHUNK):
        high = min(low + CHUNK, stop)
        engagements, statuses, signers, terms = [], [], [], []
        for engagement, status, people in _rows(preparer, low, high):
            engagements.append(engagement)
            statuses.append(status)
            signers += people
            terms += [
                {"firm_id": preparer.firm_id, "term": word, "engagement_id": engagement["id"]}
                for word in {name_word(person["last_name"]) for person in people}
            ]
        with engine.begin() as conn:
            conn.execute(insert(tables["engagement"]), engagements)
            conn.execute(insert(tables["engagementstatus"]), statuses)
            conn.execute(insert(tables["signer"]), signers)
            conn.execute(insert(tables["engagementsearchterm"]), terms)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE engagement; ANALYZE engagementstatus; ANALYZE signer"))
            conn.execute(text("ANALYZE engagementsearchterm"))


def _rows(
    preparer: Preparer, low: int, high: int
) -> Iterator[tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]]:
    now = datetime(2026, 4, 1, tzinfo=UTC)
    for n in range(low + 1, high + 1):
        rand = random.Random(n)
        stage = rand.choice(ALL_STAGES)
        last = now - timedelta(minutes=rand.randrange(0, 180 * 24 * 60))
        year = TAX_YEARS[n % len(TAX_YEARS)]  # three seasons: the Returning badge finds earlier years
        last_name = LAST_NAMES[rand.randrange(len(LAST_NAMES))]
        engagement = {
            "id": n,
            "firm_id": preparer.firm_id,
            "preparer_id": preparer.id,
            "tax_year": year,
            "created_at": last - timedelta(days=3),
        }
        status = {
            "engagement_id": n,
            "firm_id": preparer.firm_id,
            "preparer_id": preparer.id,
            "tax_year": year,
            "taxpayer_name": f"Taxpayer{n} {last_name}",
            "spouse_name": f"Spouse{n} {last_name}" if n % 3 == 0 else None,
            "stage": stage,
            "waiting_on": "taxpayer",
            "waiting_since": last,
            "reminders_sent": n % 4,
            "needs_attention": stage == "needs_attention",
            "last_activity_at": last,
            "version": 3,
            "detail": "{}",
        }
        people = [_signer(n, "taxpayer", f"Taxpayer{n}", last_name, rand)]
        if n % 3 == 0:
            people.append(_signer(n, "spouse", f"Spouse{n}", last_name, rand))
        yield engagement, status, people


def _signer(engagement_id: int, role: str, first: str, last: str, rand: random.Random) -> dict[str, Any]:
    return {
        "engagement_id": engagement_id,
        "role": role,
        "first_name": first,
        "last_name": last,
        "ssn_encrypted": b"bench",
        "ssn_last4_digest": f"{rand.randrange(10_000):04d}",
        "email": None,
        "phone": None,
        "time_zone": "America/New_York",
    }


def _postgres_admin() -> Engine | None:
    engine = create_engine(POSTGRES, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return engine
    except Exception:
        engine.dispose()
        return None


def _create_database(admin: Engine) -> str:
    name = f"portico_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)


def _drop_database(admin: Engine, url: str) -> None:
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))


def postgres_version() -> str:
    admin = _postgres_admin()
    if admin is None:
        return "not reachable"
    with admin.connect() as conn:
        version = str(conn.execute(text("SHOW server_version")).scalar())
    admin.dispose()
    return version


def _row(kind: str, results: list[Measurement], size: P3Size) -> Row:
    small, large = results
    blocks = max(1, size.requests // (2 * len(VARIANTS)))
    p95 = median_percentile(large.api, 95, blocks)
    sql = median_percentile(large.sql, 95, blocks)
    small_p95 = median_percentile(small.api, 95, blocks)
    growth = large.peak_rss / small.peak_rss - 1
    return Row(
        key="P3",
        what=f"preparer dashboard, filtered + sorted + paged, {large.rows:,} engagements, {kind}",
        measured=f"p95 {ms(p95)}, peak RSS {mib(large.peak_rss)}",
        baseline=f"p95 {ms(sql)} same SQL direct",
        ratio=f"{p95 / sql:.1f}x (p95)",
        target=f"p95 < {P95_LIMIT * 1000:.0f} ms, memory independent of rows",
        passed=p95 < P95_LIMIT and growth <= MEMORY_SLACK,
        notes=[
            f"GET {DASHBOARD.path}?stage=…&page=…, {DASHBOARD.described}: {len(STAGES)} stages x pages "
            f"{PAGES}, 50 per page, {size.requests} requests one at a time after a warm-up pass, median of "
            f"{blocks} repetitions' p95. Peak API RSS {mib(small.peak_rss)} at {small.rows:,} rows, "
            f"{mib(large.peak_rss)} at {large.rows:,} ({growth:+.1%}; independent means within "
            f"{MEMORY_SLACK:.0%}); p95 at {small.rows:,} rows {ms(small_p95)}.",
        ],
    )


def _skipped(kind: str, why: str) -> Row:
    return Row(
        "P3",
        f"preparer dashboard, {kind}",
        "—",
        "—",
        "—",
        f"p95 < {P95_LIMIT * 1000:.0f} ms",
        None,
        [f"{kind}: not measured: {why}."],
    )
