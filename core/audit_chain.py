"""The audit log's hash chain: proof that no entry was edited, removed or slipped in afterwards.

Entries are written without their hash (many writers, no lock on the hot path); the sealer then
links them in one order, each entry's link covering its content and the previous entry's link. Two
sealers racing cannot fork the chain: `chain_seq` is unique, so the slower one fails and retries later.

Each link is an HMAC under a key kept outside the database (derived from the master key, see `chain_key`),
so someone who can only write the database cannot rewrite an entry and recompute every later link. And
the chain head at sealing time is printed in each certificate of completion (`anchor`): an old
certificate proves the log it saw (`portico audit verify --anchor SEQ:LINK`), even against someone who
holds the key.

Databases from before the key: their entries carry the old unkeyed SHA-256 link (no `k1:` prefix). The
sealer chains new, keyed entries on top of them, so the first keyed link commits to the whole old prefix;
`verify` accepts the old form only for the first `legacy_entries` entries of the chain (the setting
PORTICO_AUDIT_LEGACY_ENTRIES, 0 by default), because a database writer could otherwise rewrite the whole
chain in the old, keyless form.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, col, func, select

from core.crypto import Cipher
from core.models import AuditEntry

GENESIS = "0" * 64
KEYED = "k1:"  # marks a keyed link; links without it are the old unkeyed SHA-256


def chain_key(cipher: Cipher) -> bytes:
    """The chain's HMAC key: derived from the master key, so it lives wherever that does, never in the DB."""
    return cipher.derive_key("audit-chain")


def _canonical(previous: str, entry: AuditEntry) -> bytes:
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
    return previous.encode() + b"\n" + canonical.encode()


def entry_hash(previous: str, entry: AuditEntry, key: bytes) -> str:
    """The entry's link: an HMAC over its content and the previous link."""
    return KEYED + hmac.new(key, _canonical(previous, entry), hashlib.sha256).hexdigest()


def unkeyed_entry_hash(previous: str, entry: AuditEntry) -> str:
    """The link as Portico wrote it before the chain had a key (checked only under `legacy_entries`)."""
    return hashlib.sha256(_canonical(previous, entry)).hexdigest()


def seal_pending(engine: Engine, key: bytes, batch: int = 5000) -> int:
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
            entry.entry_hash = previous = entry_hash(previous, entry, key)
            session.add(entry)
        try:
            session.commit()
        except (IntegrityError, DBAPIError):  # another sealer got there first; the next round continues
            session.rollback()
            return 0
        return len(pending)


@dataclass(frozen=True)
class ChainAnchor:
    """The chain's head at one moment, as a certificate of completion records it."""

    seq: int
    entry_hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.entry_hash}"

    @classmethod
    def parse(cls, text: str) -> ChainAnchor:
        """`SEQ:LINK`, as `str()` writes it (the link itself may contain a colon)."""
        seq, _, link = text.strip().partition(":")
        if not seq.isdigit() or not link:
            raise ValueError(f"not an audit chain anchor (SEQ:LINK): {text!r}")
        return cls(int(seq), link)


def anchor(engine: Engine, key: bytes, until: datetime) -> ChainAnchor | None:
    """The head to print in a certificate: chains what is pending first, then takes the last chained entry
    written up to `until` (so a retry of the same seal finds the same head)."""
    seal_pending(engine, key)
    with Session(engine) as session:
        head = session.exec(
            select(AuditEntry)
            .where(col(AuditEntry.chain_seq).is_not(None), AuditEntry.at <= until)
            .order_by(col(AuditEntry.chain_seq).desc())
            .limit(1)
        ).first()
    if head is None or head.chain_seq is None or head.entry_hash is None:
        return None
    return ChainAnchor(head.chain_seq, head.entry_hash)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    pending: int
    first_broken_id: int | None = None
    reason: str = ""


def verify(
    engine: Engine, key: bytes, *, legacy_entries: int = 0, anchors: Iterable[ChainAnchor] = ()
) -> ChainReport:
    """Recomputes the chain; names the first entry whose content, link or position does not hold, or
    whose link differs from what a certificate recorded (`anchors`)."""
    previous, expected_seq, checked = GENESIS, 1, 0
    anchored = {a.seq: a.entry_hash for a in anchors}
    with Session(engine) as session:
        pending = session.exec(select(func.count()).where(col(AuditEntry.chain_seq).is_(None))).one()
        for entry in _in_chain_order(session):
            reason = _broken(entry, previous, expected_seq, key, legacy_entries, anchored)
            if reason:
                return ChainReport(False, checked, pending, entry.id, reason)
            previous, expected_seq, checked = entry.entry_hash or "", expected_seq + 1, checked + 1
    missing = sorted(seq for seq in anchored if seq >= expected_seq)
    if missing:
        reason = f"entry {missing[0]} of the chain, which a certificate recorded, is missing"
        return ChainReport(False, checked, pending, None, reason)
    return ChainReport(True, checked, pending)


def _broken(
    entry: AuditEntry, previous: str, seq: int, key: bytes, legacy_entries: int, anchored: dict[int, str]
) -> str:
    if entry.chain_seq != seq:
        return f"entry {seq} of the chain is missing"
    if entry.prev_hash != previous:
        return "its link to the previous entry is broken"
    link = entry.entry_hash or ""
    if link.startswith(KEYED):
        if not hmac.compare_digest(entry_hash(previous, entry, key), link):
            return "its content was changed after it was written (its keyed link does not hold)"
    elif seq > legacy_entries:
        return (
            "it is linked without the audit key: rewritten, or written before the key existed (then set "
            "PORTICO_AUDIT_LEGACY_ENTRIES to the number of entries written before the upgrade)"
        )
    elif unkeyed_entry_hash(previous, entry) != link:
        return "its content was changed after it was written"
    if seq in anchored and anchored[seq] != link:
        return "its link differs from the one a certificate of completion recorded"
    return ""


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
