"""Engine and session factory; SQLite by default, PostgreSQL in production."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

from core import models  # noqa: F401  (registers the tables)
from core.migrations import stamp_head


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # One pooled connection per thread of the server's pool (40): a connection opened past the pool
        # is closed after its request, and the next one pays again for the pragmas and for reading the
        # schema. The overflow lets requests waiting on the workflow hold theirs while a burst queues
        # instead of failing.
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=40, max_overflow=40
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=40)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while the worker writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_tables(engine: Engine) -> None:
    """Tables straight from the models, recorded as at the migrations' head. For tests, which want a
    fresh database fast: everywhere else `portico db upgrade` (core.migrations) makes and changes them,
    and tests/test_core/test_migrations.py proves both ways give the same schema."""
    SQLModel.metadata.create_all(engine)
    with engine.begin() as connection:
        stamp_head(connection)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session
