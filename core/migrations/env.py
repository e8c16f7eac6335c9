"""Alembic's entry point: runs the revisions against the database Portico's settings name.

`portico db upgrade` passes the URL in `config.attributes`; a bare `alembic` command (contributors
autogenerating a revision from the repository's alembic.ini) reads it from PORTICO_* settings.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from core import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from core.config import get_settings

config = context.config
target_metadata = SQLModel.metadata


def database_url() -> str:
    return str(config.attributes.get("database_url") or get_settings().database_url)


def configure(**kwargs: object) -> None:
    url = database_url()
    context.configure(
        target_metadata=target_metadata,
        # SQLite alters most things by copying the table: batch mode writes revisions that way.
        render_as_batch=url.startswith("sqlite"),
        compare_type=True,
        compare_server_default=True,
        **kwargs,  # type: ignore[arg-type]
    )


def run_offline() -> None:
    configure(url=database_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # A batch copy drops and renames tables other tables point at; check the keys afterwards.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
            if sqlite:
                _check_foreign_keys(connection)
    finally:
        engine.dispose()


def _check_foreign_keys(connection: Connection) -> None:
    broken = connection.execute(text("PRAGMA foreign_key_check")).all()
    if broken:
        raise RuntimeError(f"the migration left rows pointing at missing rows: {broken[:5]}")


if context.is_offline_mode():
    run_offline()
else:
    run_online()
