"""The audit log's hash chain: proof that no entry was edited, removed or slipped in afterwards.

Entries are written without their hash (many writers, no lock on the hot path); the sealer then
links them in one order, each entry's hash covering its content and the previous entry's hash. Two
sealers racing cannot fork the chain: `chain_seq` is unique, so the slower one fails and retries later.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, col, func, select

from core.models import AuditEntry

GENESIS = "0" * 64


def entry_hash(previous: str, entry: AuditEntry) -> str:
    content = [
        entry.chain_seq,
        entry.id,
        entry.event_key,
        entry.firm_id,
        entry.engagement_id,
        entry.actor,
        entry.action,
        entry.detail,
        entry.ip,
        entry.user_agent,
        entry.at.astimezone(UTC).isoformat(),
    ]
    canonical = json.dumps(content, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(previous.encode() + b"\n" + canonical.encode()).hexdigest()


def seal_pending(engine: Engine, batch: int = 5000) -> int:
    """Chains entries not yet chained, oldest first; returns how many. Safe to run from many processes."""
    with Session(engine) as session:
        head = session.exec(
            select(AuditEntry)
            .where(col(AuditEntry.chain_seq).is_not(None))
            .order_by(col(AuditEntry.chain_seq).desc())
            .limit(1)
        ).first()
        previous, seq = (head.entry_hash or GENESIS, head.chain_seq or 0) if head else (GENESIS, 0)
        pending = session.exec(
            select(AuditEntry)
            .where(col(AuditEntry.chain_seq).is_(None))
            .order_by(col(AuditEntry.id))
            .limit(batch)
        ).all()
        for entry in pending:
            seq += 1
            entry.chain_seq, entry.prev_hash = seq, previous
            entry.entry_hash = previous = entry_hash(previous, entry)
            session.add(entry)
        try:
            session.commit()
        except (IntegrityError, DBAPIError):  # another sealer got there first; the next round continues
            session.rollback()
            return 0
        return len(pending)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    pending: int
    first_broken_id: int | None = None
    reason: str = ""


def verify(engine: Engine) -> ChainReport:
    """Recomputes the chain; names the first entry whose content, link or position does not hold."""
    previous, expected_seq, checked = GENESIS, 1, 0
    with Session(engine) as session:
        pending = session.exec(select(func.count()).where(col(AuditEntry.chain_seq).is_(None))).one()
        for entry in _in_chain_order(session):
            if entry.chain_seq != expected_seq:
                return ChainReport(
                    False, checked, pending, entry.id, f"entry {expected_seq} of the chain is missing"
                )
            if entry.prev_hash != previous:
                return ChainReport(
                    False, checked, pending, entry.id, "its link to the previous entry is broken"
                )
            if entry_hash(previous, entry) != entry.entry_hash:
                return ChainReport(
                    False, checked, pending, entry.id, "its content was changed after it was written"
                )
            previous, expected_seq, checked = entry.entry_hash, expected_seq + 1, checked + 1
    return ChainReport(True, checked, pending)


def _in_chain_order(session: Session, page: int = 2000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = session.exec(
            select(AuditEntry)
            .where(col(AuditEntry.chain_seq) > last)
            .order_by(col(AuditEntry.chain_seq))
            .limit(page)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].chain_seq or last
