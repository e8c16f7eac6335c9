"""Bulk import: every row checked first (errors by line), a stable key per return so importing again
creates nothing twice (also when two imports race), and `portico import-engagements` with a progress bar."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from preparer_steps import add_preparer
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from core.actor import Actor
from core.config import Settings, get_settings
from core.context import Resources
from core.models import AuditEntry, Engagement, FirmSettings, ImportBatch, ImportedRow, Preparer, Signer
from portico.cli import app
from services import preparer_import as importer

HEADER = (
    "tax_year,first name,last name,ssn,email,phone,time zone,"
    "spouse_first_name,spouse_last_name,spouse_ssn,spouse_email,preparer_email"
)
GOOD = [
    "2025,Maria,Garcia,111-22-3333,maria@example.com,(305) 555-0101,Eastern,,,,,",
    "2025,Tom,Baker,222-33-4444,,+1 312 555 0102,,Tina,Baker,333-44-5555,tina@example.com,bob@firm.test",
    "",
    "2024,Maria,Garcia,111-22-3333,maria@example.com,,America/Denver,,,,,",
]


def csv(*lines: str) -> bytes:
    return ("\ufeff" + "\n".join([HEADER, *lines]) + "\n").encode()  # with the BOM Excel writes


@pytest.fixture
def firm(resources: Resources) -> Preparer:
    add_preparer(resources, "ada@firm.test", "Lovelace Tax")
    add_preparer(resources, "bob@firm.test", "Lovelace Tax", "Bob")
    add_preparer(resources, "eve@other.test", "Other Firm", "Eve")
    with Session(resources.engine, expire_on_commit=False) as db:
        ada = db.exec(select(Preparer).where(Preparer.email == "ada@firm.test")).one()
        db.add(FirmSettings(firm_id=ada.firm_id, time_zone="America/Chicago"))
        db.commit()
        return ada


def test_every_row_is_checked_and_errors_are_listed_by_line(resources: Resources, firm: Preparer) -> None:
    with Session(resources.engine) as db:
        check = importer.check_file(db, resources, firm, csv(*GOOD), "export.csv")
        assert check.ok and not check.errors
        assert [r.line for r in check.rows] == [2, 3, 5]  # the blank line 4 is skipped
        maria, tom, maria_2024 = check.rows
        assert maria.body.taxpayer.time_zone == "America/New_York"  # "Eastern"
        assert tom.body.taxpayer.time_zone == "America/Chicago"  # empty: guessed from the 312 number
        assert tom.body.spouse is not None and tom.body.spouse.email == "tina@example.com"
        assert tom.body.taxpayer.phone == "+13125550102"
        assert maria.key != maria_2024.key  # another tax year is another return

        bad = importer.check_file(
            db,
            resources,
            firm,
            csv(
                GOOD[0],
                "20x5,Tom,,222-33-444,not-an-email,,Mars/Base,,,,,",
                "2025,Yuki,Tanaka,444-55-6666,yuki@example.com,,,,,,,eve@other.test",
                "2025,Ann,Lee,555-66-7777,,,,Joe,,,,",
                GOOD[0].replace("Maria", "Mary"),
            ),
            "bad.csv",
        )
        by_line = {line: {e.column: e.message for e in errors} for line, errors in bad.errors_by_line()}
        assert set(by_line[3]) == {
            "tax_year",
            "taxpayer_last_name",
            "taxpayer_ssn",
            "taxpayer_email",
            "taxpayer_time_zone",
        }
        assert "nine digits" in by_line[3]["taxpayer_ssn"]
        assert by_line[4] == {"preparer_email": "No active preparer of this firm."}  # another firm's preparer
        assert "taxpayer_email" in by_line[5] and "spouse_last_name" in by_line[5]
        assert "same return" in by_line[6]["taxpayer_ssn"] and "line 2" in by_line[6]["taxpayer_ssn"]
        assert not bad.ok

        semicolons = importer.check_file(
            db,
            resources,
            firm,
            b"tax_year;taxpayer_first_name;taxpayer_last_name;taxpayer_ssn;taxpayer_email\n"
            b"2025;Li;Wei;456-77-8888;li@example.com\n",
            "excel.csv",
        )
        assert semicolons.ok and semicolons.rows[0].body.taxpayer.last_name == "Wei"
        missing = importer.check_file(db, resources, firm, b"name,email\nA,a@example.com\n", "x.csv")
        assert missing.errors[0].line == 1 and "taxpayer_ssn" in missing.errors[0].column


async def test_importing_twice_or_at_once_creates_each_return_once(
    resources: Resources, firm: Preparer, dev_server: WorkflowEnvironment, settings: Settings
) -> None:
    actor = Actor(kind="preparer", id=str(firm.id), user_agent="test")
    data = csv(*GOOD)

    async def run() -> ImportBatch:
        with Session(resources.engine, expire_on_commit=False) as db:
            check = importer.check_file(db, resources, firm, data, "export.csv")
            return await importer.run_import(db, dev_server.client, resources, actor, firm, check)

    first, second = await asyncio.gather(run(), run())  # two preparers clicking Import together
    assert first.created + second.created == 3
    again = await run()
    assert (again.created, again.skipped) == (0, 3)
    with Session(resources.engine) as db:
        engagements = db.exec(select(Engagement)).all()
        assert len(engagements) == 3 and {e.firm_id for e in engagements} == {firm.firm_id}
        assert len(db.exec(select(ImportedRow)).all()) == 3
        bob = db.exec(select(Preparer).where(Preparer.email == "bob@firm.test")).one()
        tom = db.exec(select(Signer).where(Signer.first_name == "Tom")).one()
        assert db.get(Engagement, tom.engagement_id).preparer_id == bob.id  # type: ignore[union-attr]
        audit = [a.action for a in db.exec(select(AuditEntry).where(AuditEntry.firm_id == firm.firm_id))]
        assert audit.count("engagement.create") == 3 and audit.count("import.completed") == 3
    for engagement in engagements:  # each has its workflow
        handle = dev_server.client.get_workflow_handle(
            f"{settings.workflow_id_prefix}engagement-{engagement.id}"
        )
        assert (await handle.describe()).id == handle.id


def test_command_line_import_with_progress_bar(
    resources: Resources,
    firm: Preparer,
    settings: Settings,
    master_key: str,
    dev_server: WorkflowEnvironment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "ENVIRONMENT": "test",
        "DATA_DIR": str(settings.data_dir),
        "ENCRYPTION_KEY": master_key,
        "TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
        "TASK_QUEUE": settings.task_queue,
        "WORKFLOW_ID_PREFIX": settings.workflow_id_prefix,
    }.items():
        monkeypatch.setenv(f"PORTICO_{name}", value)
    get_settings.cache_clear()
    monkeypatch.chdir(tmp_path)  # no .env from the working directory
    runner = CliRunner()
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv(GOOD[0], "2025,Tom,Baker,12,,,,,,,,"))
    good = tmp_path / "good.csv"
    good.write_bytes(csv(*GOOD))
    try:
        refused = runner.invoke(app, ["import-engagements", str(bad), "--preparer", "ada@firm.test"])
        assert refused.exit_code == 1
        assert "line 3: taxpayer_ssn: Enter a Social Security number" in refused.output
        assert "nothing was imported" in refused.output
        checked = runner.invoke(
            app, ["import-engagements", str(good), "--preparer", "ada@firm.test", "--check"]
        )
        assert checked.exit_code == 0 and "3 new, 0 already imported" in checked.output
        done = runner.invoke(app, ["import-engagements", str(good), "--preparer", "ADA@firm.test"])
        assert done.exit_code == 0, done.output
        assert "Creating engagements" in done.output and "Created 3 engagement(s)" in done.output
        again = runner.invoke(app, ["import-engagements", str(good), "--preparer", "ada@firm.test"])
        assert again.exit_code == 0 and "0 new, 3 already imported" in again.output
        nobody = runner.invoke(app, ["import-engagements", str(good), "--preparer", "nobody@firm.test"])
        assert nobody.exit_code == 1
    finally:
        get_settings.cache_clear()
    with Session(resources.engine) as db:
        assert len(db.exec(select(Engagement)).all()) == 3
        batches = db.exec(select(ImportBatch)).all()
        assert [(b.source, b.created) for b in batches] == [("cli", 3)]
