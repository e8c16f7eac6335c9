"""Schema migrations (core/migrations): a new database, a first-release database, and the guard rails.

- `portico db upgrade` on an empty database gives exactly the models' schema (Alembic's autogenerate
  compare finds nothing) and the same tables, columns, keys and indexes as `create_all`.
- A database made and filled by the first release (commit 6be0d67, run from git history in a
  subprocess) upgrades with every row unchanged, every document and signature readable, and its
  sealed PDF still verifying.
- A model changed without a revision fails here (the `alembic check` of this project).
- `portico api` and `portico worker` refuse a database behind the code's head, naming the command.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import ON_CI, drop_postgres_database, fresh_postgres_database
from sqlalchemy import create_engine, inspect, text
from sqlmodel import Session, SQLModel, col, select
from typer.testing import CliRunner

from core import migrations, projection_version, retention
from core.config import Settings
from core.context import Resources
from core.db import create_tables
from core.enums import Role
from core.models import (
    AccountEmail,
    AccountLink,
    ChatMessage,
    Disposal,
    Document,
    Engagement,
    EsignConsent,
    FirmSettings,
    IdentityCheck,
    OutboxMessage,
    PlacementTemplate,
    Signature,
    SignatureLabel,
    Signer,
    TaxpayerAccount,
)
from esign.boxes import loads
from portico import cli
from services import proofing

ROOT = Path(__file__).resolve().parents[2]
FIRST_RELEASE_COMMIT = "6be0d67"


# ---- helpers ------------------------------------------------------------------------------------------


def differences(url: str, metadata: sa.MetaData = SQLModel.metadata) -> list[Any]:
    """What `alembic revision --autogenerate` would write for this database: nothing, when it is current."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def schema(url: str) -> dict[str, Any]:
    """Every table as the database describes it: columns, keys with their names, indexes."""
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        described = {}
        for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
            described[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                    for c in inspector.get_columns(table)
                ],
                "pk": inspector.get_pk_constraint(table),
                "unique": sorted(
                    (u["name"], tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)
                ),
                "fks": sorted(
                    (f["name"], tuple(f["constrained_columns"]), f["referred_table"])
                    for f in inspector.get_foreign_keys(table)
                ),
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                    for i in inspector.get_indexes(table)
                ),
            }
        return described
    finally:
        engine.dispose()


def columns_of(url: str) -> dict[str, list[str]]:
    """Every table's columns, by name."""
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        tables = sorted(set(inspector.get_table_names()) - {"alembic_version"})
        return {table: [c["name"] for c in inspector.get_columns(table)] for table in tables}
    finally:
        engine.dispose()


def all_rows(url: str, columns: dict[str, list[str]] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table; with `columns`, of those tables and columns only (the ones a database had
    before an upgrade added more)."""
    columns = columns or columns_of(url)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = {}
            for table, names in columns.items():
                listed = ", ".join(f'"{name}"' for name in names)
                found = connection.execute(text(f'SELECT {listed} FROM "{table}"'))
                rows[table] = sorted((tuple(row) for row in found), key=repr)
            return rows
    finally:
        engine.dispose()


@contextmanager
def another_database(like: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database on the same kind of server as `like`."""
    if not like.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / f'other-{os.urandom(4).hex()}.db'}"
        return
    url = fresh_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


@pytest.fixture
def cli_settings(db_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The CLI on these settings; the logging a started command sets up (onto CliRunner's soon-closed
    stream) is put back afterwards."""
    monkeypatch.setattr(cli, "get_settings", lambda: db_settings)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield db_settings
    root.handlers[:] = handlers
    root.setLevel(level)


# ---- an empty database --------------------------------------------------------------------------------


def test_upgrade_from_empty_gives_the_models_schema(db_settings: Settings, tmp_path: Path) -> None:
    url = db_settings.database_url
    before, after = migrations.upgrade(url)

    assert before.current is None and not before.unversioned_tables
    assert after.at_head and after.current == migrations.head_revision()
    assert differences(url) == []

    # ... and the very tables create_all makes (tests make theirs that way), names included.
    with another_database(url, tmp_path) as reference:
        engine = create_engine(reference)
        create_tables(engine)
        engine.dispose()
        assert schema(url) == schema(reference)
        assert migrations.current_state(reference).at_head  # create_tables records head


def test_upgrading_again_changes_nothing(cli_settings: Settings) -> None:
    first = CliRunner().invoke(cli.app, ["db", "upgrade"])
    second = CliRunner().invoke(cli.app, ["db", "upgrade"])
    current = CliRunner().invoke(cli.app, ["db", "current"])

    head = migrations.head_revision()
    assert first.exit_code == 0 and f"from nothing to {head} (head)" in first.output, first.output
    assert second.exit_code == 0 and f"already at {head} (head)" in second.output, second.output
    assert current.exit_code == 0 and current.output.strip() == f"{head} (head)"


def test_downgrade_to_nothing_and_back(db_settings: Settings) -> None:
    from alembic import command

    url = db_settings.database_url
    migrations.upgrade(url)
    command.downgrade(migrations.alembic_config(url), "base")
    assert set(inspect_tables(url)) <= {"alembic_version"}
    migrations.upgrade(url)
    assert differences(url) == []


def inspect_tables(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()


# ---- a model changed without a revision ---------------------------------------------------------------


def test_models_and_revisions_agree(db_settings: Settings) -> None:
    """The project's `alembic check`: after upgrading to head, autogenerate has nothing to write. When this
    fails, a table changed without a revision: `alembic revision --autogenerate -m "..."`, then read and
    fix what it wrote (see the README)."""
    migrations.upgrade(db_settings.database_url)
    assert differences(db_settings.database_url) == []


def test_the_check_sees_a_change_without_a_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'portico.db'}"
    migrations.upgrade(url)
    changed = sa.MetaData(naming_convention=SQLModel.metadata.naming_convention)
    for table in SQLModel.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["firm"].append_column(sa.Column("retention_years", sa.Integer(), nullable=True))
    sa.Index("ix_firm_name", changed.tables["firm"].c.name)

    found = {(diff[0], getattr(diff[-1], "name", None)) for diff in differences(url, changed)}
    assert ("add_column", "retention_years") in found
    assert ("add_index", "ix_firm_name") in found


# ---- the API and workers refuse an old schema ---------------------------------------------------------


@pytest.mark.parametrize("command", ["api", "worker"])
def test_api_and_worker_refuse_a_database_behind_head(
    cli_settings: Settings, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    started: list[str] = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: started.append("api"))
    monkeypatch.setattr("worker.main.main", lambda settings: started.append("worker"))

    empty = CliRunner().invoke(cli.app, [command])
    assert empty.exit_code == 1 and not started
    assert "none (empty database)" in empty.output and "`portico db upgrade`" in empty.output
    assert len(empty.output.strip().splitlines()) == 1

    migrations.upgrade(cli_settings.database_url, migrations.FIRST_RELEASE)
    if migrations.head_revision() != migrations.FIRST_RELEASE:
        behind = CliRunner().invoke(cli.app, [command])
        assert behind.exit_code == 1 and not started
        assert f"{migrations.FIRST_RELEASE} (behind head" in behind.output
        assert "run `portico db upgrade`" in behind.output

    migrations.upgrade(cli_settings.database_url)
    at_head = CliRunner().invoke(cli.app, [command])
    assert at_head.exit_code == 0, at_head.output
    assert started == [command]


def test_a_database_from_a_newer_release_is_refused(
    cli_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("started on an unknown schema"))
    migrations.upgrade(cli_settings.database_url)
    engine = create_engine(cli_settings.database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff_from_the_future'"))
    engine.dispose()

    refused = CliRunner().invoke(cli.app, ["api"])
    assert refused.exit_code == 1 and "unknown to this version of Portico" in refused.output


def test_only_tests_create_tables_behind_the_migrations(tmp_path: Path) -> None:
    """Outside test settings a process never makes tables itself: `portico db upgrade` (or `up`) does."""
    settings = Settings(
        environment="development",
        data_dir=tmp_path / "var",
        encryption_key=new_key(),
        _env_file=None,  # type: ignore[call-arg]
    )
    resources = Resources.from_settings(settings)
    try:
        assert inspect(resources.engine).get_table_names() == []
    finally:
        resources.engine.dispose()


def test_a_partial_unversioned_database_is_not_guessed_at(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'odd.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE firm (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(migrations.SchemaError, match="not a first-release database"):
        migrations.upgrade(url)


# ---- a populated database one revision behind ----------------------------------------------------------

PREVIOUS_REVISION = "0002"  # head - 1: before retention (0003)


def seed_previous_revision(url: str, closed: datetime) -> None:
    """A firm with settings, a preparer and two engagements (one completed), written with the tables as
    they stood at PREVIOUS_REVISION."""
    engine = create_engine(url)
    try:
        old = sa.MetaData()
        old.reflect(engine)
        assert "disposal" not in old.tables and "legal_hold" not in old.tables["engagement"].c
        tables = old.tables
        with engine.begin() as connection:
            connection.execute(
                tables["firm"].insert(), [{"id": 1, "name": "Lovelace Tax", "created_at": closed}]
            )
            connection.execute(
                tables["preparer"].insert(),
                [
                    {
                        "id": 1,
                        "firm_id": 1,
                        "email": "ada@firm.test",
                        "name": "Ada",
                        "password_hash": "x",
                        "active": True,
                        "is_admin": True,
                        "created_at": closed,
                    }
                ],
            )
            connection.execute(
                tables["firmsettings"].insert(),
                [
                    {
                        "firm_id": 1,
                        "time_zone": "America/Chicago",
                        "invite_reminder_days": 2,
                        "invite_reminders_max": 3,
                        "invite_expires_days": 14,
                        "verify_reminder_hours": 1,
                        "signature_reminder_first_days": 2,
                        "signature_reminder_interval_days": 3,
                        "signature_reminders_max": 4,
                        "quiet_hours_start": 21,
                        "quiet_hours_end": 8,
                        "updated_at": closed,
                        "updated_by": 1,
                    }
                ],
            )
            connection.execute(
                tables["engagement"].insert(),
                [
                    {"id": eid, "firm_id": 1, "preparer_id": 1, "tax_year": 2025, "created_at": closed}
                    for eid in (1, 2)
                ],
            )
            connection.execute(
                tables["engagementstatus"].insert(),
                [
                    {
                        "engagement_id": eid,
                        "firm_id": 1,
                        "preparer_id": 1,
                        "tax_year": 2025,
                        "taxpayer_name": "Shelby ONeil",
                        "stage": stage,
                        "reminders_sent": 0,
                        "needs_attention": False,
                        "last_activity_at": closed,
                        "version": 7,
                        "detail": "{}",
                    }
                    for eid, stage in ((1, "completed"), (2, "signing"))
                ],
            )
    finally:
        engine.dispose()


def upgrade_keeping_every_row(url: str) -> None:
    """Upgrades to head; every row that was there is still there, and the schema is the models'."""
    before_columns = columns_of(url)
    before_rows = all_rows(url, before_columns)

    migrations.upgrade(url)

    assert migrations.current_state(url).at_head
    assert all_rows(url, before_columns) == before_rows
    assert differences(url) == []


def firm_with_an_engagement(connection: sa.Connection, tables: sa.MetaData, at: datetime) -> None:
    """Firm 1, its administrator (preparer 1) and engagement 2, as rows of the revision under test."""
    connection.execute(tables.tables["firm"].insert(), [{"id": 1, "name": "Lovelace Tax", "created_at": at}])
    connection.execute(
        tables.tables["preparer"].insert(),
        [
            {"id": 1, "firm_id": 1, "email": "ada@firm.test", "name": "Ada", "password_hash": "x"}
            | {"active": True, "is_admin": True, "created_at": at}
        ],
    )
    connection.execute(
        tables.tables["engagement"].insert(),
        [{"id": 2, "firm_id": 1, "preparer_id": 1, "tax_year": 2025, "created_at": at}],
    )


def test_a_populated_database_one_revision_behind_upgrades_to_retention(db_settings: Settings) -> None:
    url = db_settings.database_url
    migrations.upgrade(url, PREVIOUS_REVISION)
    closed = datetime(2026, 4, 15, 16, 0, tzinfo=UTC)
    seed_previous_revision(url, closed)
    upgrade_keeping_every_row(url)
    # The new columns read as their defaults through today's models: three years, no hold, not disposed;
    # the completed engagement is due after three years and the disposal table takes its record.
    engine = create_engine(url)
    try:
        with Session(engine) as db:
            firm_settings = db.get(FirmSettings, 1)
            assert firm_settings is not None and firm_settings.retention_years == 3
            for eid in (1, 2):
                engagement = db.get(Engagement, eid)
                assert engagement is not None and not engagement.legal_hold
                assert engagement.disposed_at is None and engagement.legal_hold_reason is None
            assert db.exec(select(Disposal)).all() == []
            assert (
                retention.expired_page(db, retention.add_years(closed, 3) - timedelta(days=1)).engagement_ids
                == []
            )
            assert retention.expired_page(
                db, retention.add_years(closed, 3) + timedelta(days=1)
            ).engagement_ids == [1]
            db.add(
                Disposal(
                    engagement_id=1,
                    firm_id=1,
                    tax_year=2025,
                    stage="completed",
                    completed_at=closed,
                    retention_years=3,
                    started_at=retention.add_years(closed, 3),
                )
            )
            db.commit()
            record = db.get(Disposal, 1)
            assert record is not None and record.completed_at == closed and record.documents == 0
    finally:
        engine.dispose()


def test_accounts_of_0003_become_client_accounts_linked_to_their_signer(db_settings: Settings) -> None:
    """Revision 0004: each existing account becomes a client account of its firm, linked to the signer it
    was registered for; none is merged with another, and an account can then reach a second return."""
    url = db_settings.database_url
    migrations.upgrade(url, "0003")
    closed = datetime(2026, 4, 15, 16, 0, tzinfo=UTC)
    engine = create_engine(url)
    try:
        tables = sa.MetaData()
        tables.reflect(engine)
        assert "accountlink" not in tables.tables
        with engine.begin() as connection:
            connection.execute(
                tables.tables["firm"].insert(), [{"id": 1, "name": "Lovelace Tax", "created_at": closed}]
            )
            connection.execute(
                tables.tables["preparer"].insert(),
                [
                    {"id": 1, "firm_id": 1, "email": "ada@firm.test", "name": "Ada", "password_hash": "x"}
                    | {"active": True, "is_admin": True, "created_at": closed}
                ],
            )
            connection.execute(
                tables.tables["engagement"].insert(),
                [
                    {"id": eid, "firm_id": 1, "preparer_id": 1, "tax_year": year, "created_at": closed}
                    for eid, year in ((1, 2025), (2, 2026))
                ],
            )
            signer = {"last_name": "ONeil", "ssn_encrypted": b"x", "ssn_last4_digest": "d"}
            signer |= {"time_zone": "America/Chicago", "email": "shelby@example.com", "phone": "+17025550197"}
            connection.execute(
                tables.tables["signer"].insert(),
                [
                    {"id": 1, "engagement_id": 1, "role": "TAXPAYER", "first_name": "Shelby", **signer},
                    {"id": 2, "engagement_id": 1, "role": "SPOUSE", "first_name": "Sam", **signer},
                    {"id": 3, "engagement_id": 2, "role": "TAXPAYER", "first_name": "Shelby", **signer},
                ],
            )
            connection.execute(
                tables.tables["taxpayeraccount"].insert(),
                [
                    {"id": n, "signer_id": n, "username": f"user{n}", "password_hash": "h", "email": "e"}
                    | {"phone": "p", "created_at": closed, "verified_at": closed, "verified_channel": "email"}
                    for n in (1, 2)
                ],
            )
    finally:
        engine.dispose()
    upgrade_keeping_every_row(url)
    engine = create_engine(url)
    try:
        with Session(engine) as db:
            links = db.exec(select(AccountLink).order_by(col(AccountLink.signer_id))).all()
            assert [(a.signer_id, a.account_id, a.engagement_id, a.via) for a in links] == [
                (1, 1, 1, "registration"),
                (2, 2, 1, "registration"),
            ]
            assert [a.firm_id for a in db.exec(select(TaxpayerAccount)).all()] == [1, 1]
            # Revision 0005: each account's email becomes its first sign-in address, verified as it was.
            emails = db.exec(select(AccountEmail).order_by(col(AccountEmail.account_id))).all()
            assert [(e.account_id, e.email, e.verified_at) for e in emails] == [
                (1, "e", closed),
                (2, "e", closed),
            ]
            # The same person's 2026 return joins the account they already have.
            db.add(AccountLink(signer_id=3, account_id=1, engagement_id=2, via="invitation"))
            db.commit()
            assert len(db.exec(select(AccountLink).where(AccountLink.account_id == 1)).all()) == 2
    finally:
        engine.dispose()


def test_a_populated_database_of_0005_upgrades_to_placements(db_settings: Settings) -> None:
    """Revision 0006: the firm's templates of signature places and its own signature labels, both new and
    empty; every row of a populated 0005 database stays, and the new tables take rows through the models."""
    url = db_settings.database_url
    migrations.upgrade(url, "0005")
    closed = datetime(2026, 4, 15, 16, 0, tzinfo=UTC)
    engine = create_engine(url)
    try:
        tables = sa.MetaData()
        tables.reflect(engine)
        assert "placementtemplate" not in tables.tables and "signaturelabel" not in tables.tables
        with engine.begin() as connection:
            firm_with_an_engagement(connection, tables, closed)
            connection.execute(
                tables.tables["document"].insert(),
                [
                    {"id": 1, "engagement_id": 2, "direction": "TO_CLIENT", "upload_ref": "r1"}
                    | {"name": "Form 8879.pdf", "content_type": "application/pdf", "size": 10, "pages": 1}
                    | {"storage_key": "k", "sha256": "s", "current_key": "k", "current_sha256": "s"}
                    | {"uploaded_by": "preparer:1", "created_at": closed, "private": False}
                    | {
                        "signature_boxes": '[{"role": "taxpayer", "page": 1, "x": 160.0, "y": 330.0, '
                        '"width": 240.0, "height": 44.0}]'
                    }
                ],
            )
    finally:
        engine.dispose()
    upgrade_keeping_every_row(url)
    engine = create_engine(url)
    try:
        with Session(engine) as db:
            assert db.exec(select(PlacementTemplate)).all() == []
            db.add(
                PlacementTemplate(
                    firm_id=1, name="Form 8879 from TaxWise", geometry="1:612x792r0", words="[]", places="[]"
                )
            )
            db.add(SignatureLabel(firm_id=1, role="taxpayer", text="Client signature"))
            db.commit()
            db.add(SignatureLabel(firm_id=1, role="taxpayer", text="Client signature"))
            with pytest.raises(sa.exc.IntegrityError):
                db.commit()  # one label text per signer per firm
            db.rollback()
            # A document sent before places had kinds still reads as one signature place.
            document = db.get(Document, 1)
            assert document is not None
            assert [box.kind for box in loads(document.signature_boxes)] == ["signature"]
    finally:
        engine.dispose()


def test_a_populated_database_of_0006_upgrades_to_ways_to_sign_and_consent(db_settings: Settings) -> None:
    """Revision 0007: each signer's signature method (a signature already on file was drawn: the portal had
    no other way; none on file: no method) and the new, empty table of consents to sign electronically;
    every row of a populated 0006 database stays."""
    url = db_settings.database_url
    migrations.upgrade(url, "0006")
    closed = datetime(2026, 4, 15, 16, 0, tzinfo=UTC)
    engine = create_engine(url)
    try:
        tables = sa.MetaData()
        tables.reflect(engine)
        assert "esignconsent" not in tables.tables
        assert "signature_method" not in tables.tables["signer"].c
        with engine.begin() as connection:
            firm_with_an_engagement(connection, tables, closed)
            person = {
                "engagement_id": 2,
                "last_name": "O'Neil",
                "ssn_encrypted": b"x",
                "ssn_last4_digest": "d",
            }
            connection.execute(
                tables.tables["signer"].insert(),
                [
                    person
                    | {"id": 1, "role": "TAXPAYER", "first_name": "Shelby", "time_zone": "America/New_York"}
                    | {"signature_key": "signatures/abc", "signature_saved_at": closed},
                    person
                    | {"id": 2, "role": "SPOUSE", "first_name": "Jordan", "time_zone": "America/Chicago"}
                    | {"signature_key": None, "signature_saved_at": None},
                ],
            )
    finally:
        engine.dispose()
    upgrade_keeping_every_row(url)
    engine = create_engine(url)
    try:
        with Session(engine) as db:
            methods = {s.first_name: s.signature_method for s in db.exec(select(Signer)).all()}
            assert methods == {"Shelby": "drawn", "Jordan": None}
            assert db.exec(select(EsignConsent)).all() == []
            db.add(EsignConsent(account_id=7, firm_id=1, version=1, text_sha256="f" * 64, ip="203.0.113.9"))
            db.commit()
            row = db.exec(select(EsignConsent)).one()
            assert row.agreed_at is not None and row.withdrawn_at is None
    finally:
        engine.dispose()


def test_a_populated_database_of_0007_upgrades_to_decline_and_paper(db_settings: Settings) -> None:
    """Revision 0008: every signature made before it was electronic (none declined, none on paper), no
    document was replaced or downloaded yet; every row of a populated 0007 database stays."""
    url = db_settings.database_url
    migrations.upgrade(url, "0007")
    signed = datetime(2026, 4, 15, 16, 0, tzinfo=UTC)
    engine = create_engine(url)
    try:
        tables = sa.MetaData()
        tables.reflect(engine)
        assert "method" not in tables.tables["signature"].c
        assert "replaced_by" not in tables.tables["document"].c
        with engine.begin() as connection:
            firm_with_an_engagement(connection, tables, signed)
            connection.execute(
                tables.tables["document"].insert(),
                [
                    {"id": 1, "engagement_id": 2, "direction": "TO_CLIENT", "upload_ref": "r1"}
                    | {"name": "Form 8879.pdf", "content_type": "application/pdf", "size": 10, "pages": 1}
                    | {"storage_key": "k", "sha256": "s", "current_key": "k2", "current_sha256": "s2"}
                    | {"uploaded_by": "preparer:1", "created_at": signed, "private": False}
                    | {"signature_boxes": "[]", "sealed_at": signed}
                ],
            )
            connection.execute(
                tables.tables["signature"].insert(),
                [
                    {
                        "id": 1,
                        "document_id": 1,
                        "role": "TAXPAYER",
                        "signed_at": signed,
                        "sha256_after": "s2",
                    },
                    {"id": 2, "document_id": 1, "role": "SPOUSE", "signed_at": None, "sha256_after": None},
                ],
            )
    finally:
        engine.dispose()
    upgrade_keeping_every_row(url)
    engine = create_engine(url)
    try:
        with Session(engine) as db:
            rows = db.exec(select(Signature).order_by(col(Signature.id))).all()
            assert [(r.method, r.declined_at, r.attested_by, r.scan_document_id) for r in rows] == [
                ("electronic", None, None, None),
                ("electronic", None, None, None),
            ]
            doc = db.exec(select(Document)).one()
            assert (doc.replaced_by, doc.downloaded_at) == (None, None)
            rows[1].declined_at, rows[1].decline_reason = signed, "Wrong account"
            doc.replaced_by = 9
            db.add_all([rows[1], doc])
            db.commit()
            assert db.get(Signature, 2).decline_reason == "Wrong account"  # type: ignore[union-attr]
    finally:
        engine.dispose()


def test_a_populated_database_of_0008_upgrades_to_signing_order(db_settings: Settings) -> None:
    """Revision 0009: every engagement before it let either spouse sign first; rows stay as they were."""
    url = db_settings.database_url
    migrations.upgrade(url, "0008")
    created = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
    engine = create_engine(url)
    try:
        tables = sa.MetaData()
        tables.reflect(engine)
        assert "taxpayer_signs_first" not in tables.tables["engagement"].c
        with engine.begin() as connection:
            firm_with_an_engagement(connection, tables, created)
    finally:
        engine.dispose()
    upgrade_keeping_every_row(url)
    engine = create_engine(url)
    try:
        with Session(engine) as db:
            engagement = db.exec(select(Engagement)).one()
            assert engagement.taxpayer_signs_first is False
            engagement.taxpayer_signs_first = True
            db.add(engagement)
            db.commit()
            assert db.exec(select(Engagement)).one().taxpayer_signs_first is True
    finally:
        engine.dispose()


def test_a_populated_database_of_0009_upgrades_to_identity_proofing(db_settings: Settings) -> None:
    """Revision 0010: signers without a date of birth and address, documents without a form (their name
    decides), firms on the installation's proofing rules, and no sets asked yet; rows stay as they were."""
    url = db_settings.database_url
    migrations.upgrade(url, "0009")
    created = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
    engine = create_engine(url)
    try:
        tables = sa.MetaData()
        tables.reflect(engine)
        assert "identitycheck" not in tables.tables and "form" not in tables.tables["document"].c
        with engine.begin() as connection:
            firm_with_an_engagement(connection, tables, created)
            settings_row = {"firm_id": 1, "time_zone": "America/New_York", "updated_at": created}
            settings_row |= {"invite_reminder_days": 2, "invite_reminders_max": 3, "invite_expires_days": 14}
            settings_row |= {"verify_reminder_hours": 1, "signature_reminder_first_days": 2}
            settings_row |= {"signature_reminder_interval_days": 3, "signature_reminders_max": 4}
            settings_row |= {"quiet_hours_start": 21, "quiet_hours_end": 8}
            connection.execute(tables.tables["firmsettings"].insert(), [settings_row])
            connection.execute(
                tables.tables["signer"].insert(),
                [
                    {
                        "id": 3,
                        "engagement_id": 2,
                        "role": "TAXPAYER",
                        "first_name": "Shelby",
                        "last_name": "Tran",
                    }
                    | {"ssn_encrypted": b"x", "ssn_last4_digest": "d", "time_zone": "America/New_York"}
                ],
            )
            connection.execute(
                tables.tables["document"].insert(),
                [
                    {
                        "id": 4,
                        "engagement_id": 2,
                        "direction": "TO_CLIENT",
                        "upload_ref": "u",
                        "name": "Form 8879.pdf",
                    }
                    | {"content_type": "application/pdf", "size": 1, "storage_key": "k", "sha256": "s"}
                    | {
                        "current_key": "k",
                        "current_sha256": "s",
                        "uploaded_by": "preparer:1",
                        "created_at": created,
                    }
                    | {"signature_boxes": "[]"}
                ],
            )
    finally:
        engine.dispose()
    upgrade_keeping_every_row(url)
    engine = create_engine(url)
    try:
        with Session(engine) as db:
            signer = db.exec(select(Signer)).one()
            document = db.exec(select(Document)).one()
            firm = db.exec(select(FirmSettings)).one()
            assert signer.identity_details_encrypted is None and document.form is None
            assert (firm.proofing_provider, firm.proofing_forms) == (None, None)
            installation = db_settings.model_copy(update={"proofing_forms": "8879,8878"})  # the default
            rules = proofing.firm_proofing(db, 1, installation)
            assert rules.forms == {"8879", "8878"} and proofing.needs_proofing(rules, document)
            db.add(
                IdentityCheck(engagement_id=2, role=Role.TAXPAYER, set_number=1, provider="dev", check_id="c")
            )
            db.commit()
            with pytest.raises(sa.exc.IntegrityError):  # one row per set
                db.add(
                    IdentityCheck(
                        engagement_id=2, role=Role.TAXPAYER, set_number=1, provider="dev", check_id="d"
                    )
                )
                db.commit()
    finally:
        engine.dispose()


def test_a_populated_database_of_0010_upgrades_to_the_dashboard_version(db_settings: Settings) -> None:
    """Revision 0011: no firm has a projection version yet (it reads as 0), the first change starts it and
    each one after moves it; the signers keep every row and gain the Returning badge's index."""
    url = db_settings.database_url
    migrations.upgrade(url, "0010")
    created = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
    engine = create_engine(url)
    try:
        tables = sa.MetaData()
        tables.reflect(engine)
        assert "projectionversion" not in tables.tables
        with engine.begin() as connection:
            firm_with_an_engagement(connection, tables, created)
            connection.execute(
                tables.tables["signer"].insert(),
                [
                    {"id": 3, "engagement_id": 2, "role": "TAXPAYER", "first_name": "Shelby"}
                    | {"last_name": "Tran", "ssn_encrypted": b"x", "ssn_last4_digest": "d"}
                    | {"time_zone": "America/New_York"}
                ],
            )
    finally:
        engine.dispose()
    upgrade_keeping_every_row(url)
    indexes = {i["name"]: i["column_names"] for i in sa.inspect(create_engine(url)).get_indexes("signer")}
    assert indexes["ix_signer_last4_engagement"] == ["ssn_last4_digest", "engagement_id"]
    engine = create_engine(url)
    try:
        with Session(engine) as db:
            assert projection_version.current(db, 1) == 0
            projection_version.bump(db, 1)
            db.commit()
            assert projection_version.current(db, 1) == 1
            projection_version.bump(db, 1)
            db.rollback()  # a change that does not commit does not move it
            assert projection_version.current(db, 1) == 1
            projection_version.bump(db, 1)
            db.commit()
            assert projection_version.current(db, 1) == 2
    finally:
        engine.dispose()


# ---- a database the first release made ----------------------------------------------------------------


@pytest.fixture(scope="session")
def first_release_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first release's source (git history), extracted once per session."""
    found = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{FIRST_RELEASE_COMMIT}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        message = f"commit {FIRST_RELEASE_COMMIT} is not in this clone's history (clone without --depth)"
        if ON_CI:
            pytest.fail(message)
        pytest.skip(message)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", FIRST_RELEASE_COMMIT],
        capture_output=True,
        check=True,
    )
    tree = tmp_path_factory.mktemp("first-release")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    return tree


def seed_first_release(tree: Path, settings: Settings) -> dict[str, int]:
    """That release's own code creates the tables and completes a joint engagement in them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env["PYTHONPATH"] = f"{tree}{os.pathsep}{tree / 'tests'}"
    done = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve().parents[1] / "first_release_seed.py"),
            str(settings.data_dir),
            settings.database_url,
            settings.encryption_key.get_secret_value(),
        ],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ids: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return ids


@pytest.fixture
def first_release_database(first_release_tree: Path, cli_settings: Settings) -> Iterator[dict[str, int]]:
    yield seed_first_release(first_release_tree, cli_settings)


def test_a_first_release_database_upgrades_with_every_row_document_and_signature(
    cli_settings: Settings, first_release_database: dict[str, int], tmp_path: Path
) -> None:
    url = cli_settings.database_url
    before_columns = columns_of(url)
    before_rows = all_rows(url, before_columns)
    assert migrations.current_state(url).unversioned_tables
    assert len(before_rows["signature"]) == 2 and before_rows["document"]

    refused = CliRunner().invoke(cli.app, ["api"])
    assert refused.exit_code == 1 and "first-release tables, no revision yet" in refused.output

    upgraded = CliRunner().invoke(cli.app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert f"from nothing to {migrations.head_revision()} (head)" in upgraded.output

    # Every row as it was (in the columns it had), and a schema autogenerate has nothing to say about.
    assert all_rows(url, before_columns) == before_rows
    assert differences(url) == []

    # Readable through today's models: people, SSNs, documents and every signed version.
    resources = Resources.from_settings(cli_settings)
    try:
        with Session(resources.engine) as db:
            engagement = db.get(Engagement, first_release_database["engagement_id"])
            assert engagement is not None and engagement.sealed_at is not None
            signers = db.exec(select(Signer).where(Signer.engagement_id == engagement.id)).all()
            assert {s.role.value for s in signers} == {"taxpayer", "spouse"}
            for signer in signers:
                assert len(resources.cipher.decrypt_text(signer.ssn_encrypted, "ssn")) == 9
                assert signer.signature_key and resources.store.get(signer.signature_key)
            document = db.get(Document, first_release_database["document_id"])
            assert document is not None and document.sealed_at is not None
            assert hashlib.sha256(resources.store.get(document.storage_key)).hexdigest() == document.sha256
            sealed = resources.store.get(document.current_key)
            assert hashlib.sha256(sealed).hexdigest() == document.current_sha256
            signatures = db.exec(select(Signature).where(Signature.document_id == document.id)).all()
            assert len(signatures) == 2
            for signature in signatures:
                assert signature.signed_at is not None and signature.version_key
                version = resources.store.get(signature.version_key)
                assert hashlib.sha256(version).hexdigest() == signature.sha256_after
            assert certificate_readable(resources, engagement)
            assert db.exec(select(ChatMessage)).one().body == "Done!"
            outbox = db.exec(select(OutboxMessage)).one()
            assert resources.cipher.decrypt_text(outbox.body_encrypted, "outbox") == "All signatures are in."
    finally:
        resources.engine.dispose()

    # The sealed return still verifies against the upgraded record.
    pdf = tmp_path / "sealed.pdf"
    pdf.write_bytes(sealed)
    verified = CliRunner().invoke(cli.app, ["verify-pdf", str(pdf)])
    assert verified.exit_code == 0, verified.output
    assert "matches 'Form 8879.pdf' (sealed)" in verified.output

    # Constraint names and all, the same schema as a database the migrations made from nothing.
    with another_database(url, tmp_path) as fresh:
        migrations.upgrade(fresh)
        assert schema(url) == schema(fresh)


def certificate_readable(resources: Resources, engagement: Engagement) -> bool:
    assert engagement.certificate_key and engagement.certificate_sha256
    certificate = resources.store.get(engagement.certificate_key)
    return hashlib.sha256(certificate).hexdigest() == engagement.certificate_sha256
