"""The audit log is chained under a key: `portico audit verify` proves it and names the first edited
entry."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import text
from sqlmodel import Session, col, select

from core import audit, audit_chain
from core.actor import Actor
from core.config import Settings
from core.context import Resources
from core.crypto import Cipher
from core.models import AuditEntry, Engagement


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


def key_of(resources: Resources) -> bytes:
    return audit_chain.chain_key(resources.cipher)


def seal(resources: Resources, batch: int = 5000) -> int:
    return audit_chain.seal_pending(resources.engine, key_of(resources), batch)


def verify(resources: Resources, **options: Any) -> audit_chain.ChainReport:
    return audit_chain.verify(resources.engine, key_of(resources), **options)


@pytest.fixture
def chain(db_settings: Settings) -> Resources:
    resources = Resources.from_settings(db_settings)
    write(resources, 30)
    assert seal(resources) == 30
    return resources


def test_an_untouched_log_verifies(chain: Resources) -> None:
    write(chain, 5)  # written but not yet chained: reported as pending, not as broken
    report = verify(chain)
    assert report.ok and report.checked == 30 and report.pending == 5
    seal(chain)
    assert verify(chain).checked == 35


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
    report = verify(chain)
    assert not report.ok and reason in report.reason
    assert report.first_broken_id == (thirteenth if "missing" in reason else twelfth)
    assert report.checked == 11


def test_recomputing_one_hash_does_not_hide_an_edit(chain: Resources) -> None:
    """An editor who also fixes the edited entry's own link still breaks the next entry's link."""
    with Session(chain.engine) as db:
        entry = db.exec(select(AuditEntry).where(AuditEntry.chain_seq == 7)).one()
        entry.action = "nothing.happened"
        entry.entry_hash = audit_chain.entry_hash(entry.prev_hash or "", entry, key_of(chain))
        db.add(entry)
        db.commit()
        eighth = db.exec(select(AuditEntry.id).where(AuditEntry.chain_seq == 8)).one()
    report = verify(chain)
    assert not report.ok and report.first_broken_id == eighth


def test_concurrent_sealers_never_fork_the_chain(db_settings: Settings) -> None:
    resources = Resources.from_settings(db_settings)
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            write(resources, 3)

    def sealer() -> None:
        while not stop.is_set():
            seal(resources, batch=7)

    threads = [threading.Thread(target=writer), *(threading.Thread(target=sealer) for _ in range(3))]
    for thread in threads:
        thread.start()
    threading.Event().wait(1.5)
    stop.set()
    for thread in threads:
        thread.join()
    while seal(resources):
        pass
    report = verify(resources)
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
        [sys.executable, "-m", "portico.cli", "audit", "verify"],
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
        [sys.executable, "-m", "portico.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert broken.returncode == 1 and f"BROKEN at audit entry {second}" in broken.stderr


# --- security round two, item 8: a keyed chain, anchored in the certificates ----------------------------


def rewrite_and_recompute(
    resources: Resources, seq: int, link: Callable[[str, AuditEntry], str], last: int | None = None
) -> int:
    """What someone with write access to the database does: edit entry `seq`, then recompute every later
    link (up to entry `last`) with `link`, so that each one matches its content and its predecessor.
    Answers the edited entry's id."""
    with Session(resources.engine) as db:
        entries = db.exec(select(AuditEntry).order_by(col(AuditEntry.chain_seq))).all()
        previous = audit_chain.GENESIS
        for entry in entries:
            if entry.chain_seq == seq:
                entry.ip, edited = "203.0.113.66", entry.id
            if seq <= (entry.chain_seq or 0) <= (last or seq + 10**9):
                entry.prev_hash, entry.entry_hash = previous, link(previous, entry)
                db.add(entry)
            previous = entry.entry_hash or ""
        db.commit()
    return edited or 0


@pytest.mark.parametrize("forger", ["unkeyed SHA-256", "HMAC under another key"])
def test_item8_rewritten_entry_is_reported_even_when_every_hash_was_recomputed(
    chain: Resources, forger: str
) -> None:
    other_key = Cipher(bytes(32)).derive_key("audit-chain")
    links: dict[str, Callable[[str, AuditEntry], str]] = {
        "unkeyed SHA-256": audit_chain.unkeyed_entry_hash,
        "HMAC under another key": lambda previous, entry: audit_chain.entry_hash(previous, entry, other_key),
    }
    edited = rewrite_and_recompute(chain, 12, links[forger])
    report = verify(chain)
    assert not report.ok and report.first_broken_id == edited and report.checked == 11
    assert "audit key" in report.reason or "keyed link does not hold" in report.reason


def test_item8_cli_verify_reports_a_rewritten_entry_with_recomputed_hashes(settings: Settings) -> None:
    resources = Resources.from_settings(settings)
    write(resources, 6)
    seal(resources)
    edited = rewrite_and_recompute(resources, 3, audit_chain.unkeyed_entry_hash)
    env = {
        **os.environ,
        "PORTICO_ENVIRONMENT": "test",
        "PORTICO_DATA_DIR": str(settings.data_dir),
        "PORTICO_DATABASE_URL": settings.database_url,
        "PORTICO_ENCRYPTION_KEY": settings.encryption_key.get_secret_value(),
    }
    broken = subprocess.run(
        [sys.executable, "-m", "portico.cli", "audit", "verify"], env=env, capture_output=True, text=True
    )
    assert broken.returncode == 1 and f"BROKEN at audit entry {edited}" in broken.stderr, broken.stderr


def test_item8_links_are_keyed_and_the_key_is_not_in_the_database(chain: Resources) -> None:
    with Session(chain.engine) as db:
        links = db.exec(select(AuditEntry.entry_hash)).all()
    assert all(link and link.startswith(audit_chain.KEYED) for link in links)
    assert audit_chain.chain_key(chain.cipher) != chain.cipher.derive_key("temporal-payloads")


def test_item8_old_unkeyed_entries_verify_only_when_declared(db_settings: Settings) -> None:
    """A database from before the key: its entries keep the old link; new ones are keyed on top of them."""
    resources = Resources.from_settings(db_settings)
    write(resources, 10)
    old_sealer_link = audit_chain.unkeyed_entry_hash
    with Session(resources.engine) as db:  # what the old sealer wrote
        previous = audit_chain.GENESIS
        for seq, entry in enumerate(db.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all(), 1):
            entry.chain_seq, entry.prev_hash = seq, previous
            entry.entry_hash = previous = old_sealer_link(previous, entry)
            db.add(entry)
        db.commit()
    write(resources, 5)
    assert seal(resources) == 5
    undeclared = verify(resources)
    assert not undeclared.ok and "PORTICO_AUDIT_LEGACY_ENTRIES" in undeclared.reason
    assert verify(resources, legacy_entries=10).ok and verify(resources, legacy_entries=10).checked == 15
    # The first keyed link commits to the old prefix: rewriting an old entry (and recomputing the old
    # links after it) is caught there, since that keyed link cannot be recomputed without the key.
    edited = rewrite_and_recompute(resources, 4, old_sealer_link, last=10)
    with Session(resources.engine) as db:
        first_keyed = db.exec(select(AuditEntry).where(AuditEntry.chain_seq == 11)).one()
    report = verify(resources, legacy_entries=10)
    assert not report.ok and report.first_broken_id == first_keyed.id != edited
    assert "link to the previous entry is broken" in report.reason


def test_item8_certificate_records_the_chain_head_and_verify_checks_it(
    resources: Resources, tmp_path: Path
) -> None:
    from signing_fixtures import dev_signer, seed_joint_engagement, sign_and_seal

    from esign.records import collect_record

    signer, _ = dev_signer(tmp_path / "keys")
    seeded = seed_joint_engagement(resources)
    sign_and_seal(resources, signer, seeded)
    with Session(resources.engine) as db:
        engagement = db.exec(select(Engagement).where(Engagement.id == seeded.engagement_id)).one()
        certificate = resources.store.get(engagement.certificate_key or "")
        record = collect_record(db, resources.store, seeded.engagement_id)
    text = re.sub(r"\s+", "", " ".join(p.extract_text() for p in PdfReader(io.BytesIO(certificate)).pages))
    found = re.search(r"--anchor(\d+:k1:[0-9a-f]{64})", text)
    assert found, text[-600:]
    anchor = audit_chain.ChainAnchor.parse(found.group(1))
    with Session(resources.engine) as db:
        head = db.exec(select(AuditEntry).where(AuditEntry.chain_seq == anchor.seq)).one()
    assert head.entry_hash == anchor.entry_hash and head.at <= record.completed_at  # type: ignore[operator]
    seal(resources)
    assert verify(resources, anchors=[anchor]).ok
    # Someone holding the key rewrites the log and recomputes every link: the certificate still tells.
    edited = rewrite_and_recompute(
        resources, 2, lambda previous, entry: audit_chain.entry_hash(previous, entry, key_of(resources))
    )
    assert verify(resources).ok
    report = verify(resources, anchors=[anchor])
    assert not report.ok and report.first_broken_id == head.id != edited
    assert "certificate of completion recorded" in report.reason
