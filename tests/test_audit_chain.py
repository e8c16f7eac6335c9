"""The audit log is hash-chained: `portico audit verify` proves it and names the first edited entry."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, col, select

from core import audit, audit_chain
from core.actor import Actor
from core.config import Settings
from core.context import Resources
from core.models import AuditEntry


def write(resources: Resources, count: int, action: str = "document.view") -> None:
    with Session(resources.engine) as db:
        for n in range(count):
            audit.record(
                db,
                action=action,
                actor=Actor("taxpayer", "taxpayer", "198.51.100.7", "UA"),
                engagement_id=1,
                detail={"n": n},
            )
        db.commit()


@pytest.fixture
def chain(db_settings: Settings) -> Resources:
    resources = Resources.from_settings(db_settings)
    write(resources, 30)
    assert audit_chain.seal_pending(resources.engine) == 30
    return resources


def test_an_untouched_log_verifies(chain: Resources) -> None:
    write(chain, 5)  # written but not yet chained: reported as pending, not as broken
    report = audit_chain.verify(chain.engine)
    assert report.ok and report.checked == 30 and report.pending == 5
    audit_chain.seal_pending(chain.engine)
    assert audit_chain.verify(chain.engine).checked == 35


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("UPDATE auditentry SET detail = '{\"n\": 999}' WHERE chain_seq = 12", "content was changed"),
        ("UPDATE auditentry SET ip = '203.0.113.66' WHERE chain_seq = 12", "content was changed"),
        ("DELETE FROM auditentry WHERE chain_seq = 12", "missing"),
        ("UPDATE auditentry SET prev_hash = entry_hash WHERE chain_seq = 12", "link"),
    ],
)
def test_tampering_is_named_at_the_first_broken_entry(chain: Resources, tamper: str, reason: str) -> None:
    with Session(chain.engine) as db:
        twelfth = db.exec(select(AuditEntry.id).where(AuditEntry.chain_seq == 12)).one()
        thirteenth = db.exec(select(AuditEntry.id).where(AuditEntry.chain_seq == 13)).one()
        db.connection().execute(text(tamper))
        db.commit()
    report = audit_chain.verify(chain.engine)
    assert not report.ok and reason in report.reason
    assert report.first_broken_id == (thirteenth if "missing" in reason else twelfth)
    assert report.checked == 11


def test_recomputing_one_hash_does_not_hide_an_edit(chain: Resources) -> None:
    """An editor who also fixes the edited entry's own hash still breaks the next entry's link."""
    with Session(chain.engine) as db:
        entry = db.exec(select(AuditEntry).where(AuditEntry.chain_seq == 7)).one()
        entry.action = "nothing.happened"
        entry.entry_hash = audit_chain.entry_hash(entry.prev_hash or "", entry)
        db.add(entry)
        db.commit()
        eighth = db.exec(select(AuditEntry.id).where(AuditEntry.chain_seq == 8)).one()
    report = audit_chain.verify(chain.engine)
    assert not report.ok and report.first_broken_id == eighth


def test_concurrent_sealers_never_fork_the_chain(db_settings: Settings) -> None:
    resources = Resources.from_settings(db_settings)
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            write(resources, 3)

    def sealer() -> None:
        while not stop.is_set():
            audit_chain.seal_pending(resources.engine, batch=7)

    threads = [threading.Thread(target=writer), *(threading.Thread(target=sealer) for _ in range(3))]
    for thread in threads:
        thread.start()
    threading.Event().wait(1.5)
    stop.set()
    for thread in threads:
        thread.join()
    while audit_chain.seal_pending(resources.engine):
        pass
    report = audit_chain.verify(resources.engine)
    with Session(resources.engine) as db:
        total = len(db.exec(select(AuditEntry.id)).all())
        unchained = db.exec(select(AuditEntry.id).where(col(AuditEntry.chain_seq).is_(None))).all()
    assert report.ok and report.checked == total and unchained == []


def test_cli_verify_exits_1_and_names_the_entry(settings: Settings, tmp_path: Path) -> None:
    resources = Resources.from_settings(settings)
    write(resources, 4)
    env = {
        **os.environ,
        "PORTICO_ENVIRONMENT": "test",
        "PORTICO_DATA_DIR": str(settings.data_dir),
        "PORTICO_DATABASE_URL": settings.database_url,
        "PORTICO_ENCRYPTION_KEY": settings.encryption_key.get_secret_value(),
    }
    ok = subprocess.run(
        [sys.executable, "-m", "core.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0 and "OK: 4 entries" in ok.stdout
    with Session(resources.engine) as db:
        db.connection().execute(text("UPDATE auditentry SET actor = 'preparer:9' WHERE chain_seq = 2"))
        db.commit()
        second = db.exec(select(AuditEntry.id).where(AuditEntry.chain_seq == 2)).one()
    broken = subprocess.run(
        [sys.executable, "-m", "core.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert broken.returncode == 1 and f"BROKEN at audit entry {second}" in broken.stderr
