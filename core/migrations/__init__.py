"""Schema migrations: Alembic revisions under `versions/`, run by `portico db upgrade`.

Every change to a table comes with a revision. A database the first release made (with `create_all`,
before there were revisions) has that release's tables and no `alembic_version` table: it is stamped at
FIRST_RELEASE, the revision that describes exactly that schema, and upgraded from there.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, pool
from sqlalchemy.engine import Connection, Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent
FIRST_RELEASE = "0001"
UPGRADE_COMMAND = "portico db upgrade"
# The tables of the first release (commit 6be0d67): a database holding all of them and no version table
# was made by that release (or by a later one before revisions existed, with the same tables).
FIRST_RELEASE_TABLES = frozenset(
    {
        "auditentry", "chatmessage", "document", "engagement", "engagementsearchterm", "engagementstatus",
        "firm", "firmsettings", "importbatch", "importedrow", "logincode", "messagetemplate",
        "outboxmessage", "preparer", "preparerinvite", "recoverycode", "signature", "signer",
        "taxpayeraccount", "throttlestate", "trusteddevice", "websession",
    }
)  # fmt: skip


class SchemaError(RuntimeError):
    """The database's schema is not one this version of Portico can run on."""


@dataclass(frozen=True)
class SchemaState:
    current: str | None  # the revision in `alembic_version`; None when there is none
    head: str
    unversioned_tables: bool  # tables exist but no revision is recorded (a first-release database)

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    def describe(self) -> str:
        if self.at_head:
            return f"{self.current} (head)"
        if self.current is None:
            made = "first-release tables, no revision yet" if self.unversioned_tables else "empty database"
            return f"none ({made}); head is {self.head}: run `{UPGRADE_COMMAND}`"
        if self.current not in known_revisions():
            return f"{self.current} (unknown to this version of Portico, whose head is {self.head})"
        return f"{self.current} (behind head {self.head}): run `{UPGRADE_COMMAND}`"


def alembic_config(database_url: str) -> Config:
    """Alembic's configuration without an alembic.ini: the scripts ship inside the package, and the
    database is the one Portico's settings name (env.py reads it from here)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config)


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None, "core/migrations/versions has no revision"
    return head


@functools.cache
def known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _scripts().walk_revisions())


def schema_state(engine: Engine) -> SchemaState:
    with engine.connect() as connection:
        return _state(connection)


def _state(connection: Connection) -> SchemaState:
    current = MigrationContext.configure(connection).get_current_revision()
    tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
    return SchemaState(current, head_revision(), unversioned_tables=current is None and bool(tables))


def current_state(database_url: str) -> SchemaState:
    engine = _engine(database_url)
    try:
        return schema_state(engine)
    finally:
        engine.dispose()


def check_schema(database_url: str) -> SchemaState:
    """The database's state; SchemaError (with a one-line message naming the command) unless at head."""
    state = current_state(database_url)
    if not state.at_head:
        raise SchemaError(f"The database schema is not at this version of Portico's: {state.describe()}.")
    return state


def upgrade(database_url: str, revision: str = "head") -> tuple[SchemaState, SchemaState]:
    """Brings the database to `revision` (the code's head by default); answers the state before and after."""
    engine = _engine(database_url)
    try:
        before = schema_state(engine)
        if before.current is None and before.unversioned_tables:
            _adopt_first_release(engine)
        command.upgrade(alembic_config(database_url), revision)
        return before, schema_state(engine)
    finally:
        engine.dispose()


def stamp_head(connection: Connection) -> None:
    """Records head in a database whose tables were just created from the models (tests do that)."""
    context = MigrationContext.configure(connection)
    if context.get_current_revision() is None:
        context.stamp(_scripts(), head_revision())


def _adopt_first_release(engine: Engine) -> None:
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
    missing = FIRST_RELEASE_TABLES - tables
    if missing:
        raise SchemaError(
            "The database has tables but no schema revision, and is not a first-release database "
            f"(it lacks {', '.join(sorted(missing))}): Portico will not guess how to upgrade it."
        )
    with engine.begin() as connection:
        MigrationContext.configure(connection).stamp(_scripts(), FIRST_RELEASE)


def _engine(database_url: str) -> Engine:
    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(database_url, poolclass=pool.NullPool)
