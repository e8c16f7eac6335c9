"""`portico storage migrate`: copy every document blob from one store to another, verified, resumable.

The sealed bytes are copied as they are (the target never sees plaintext, and no blob is re-encrypted),
then read back from the target, decrypted, and checked against the SHA-256 the database recorded for
that key (of the plaintext) or, for blobs with no recorded digest, against the source's plaintext.
A blob already in the target that passes the same check is skipped, so an interrupted run is finished
by running it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.crypto import DecryptionError, sha256_hex
from core.models import Document, Engagement, Signature
from core.storage import DocumentNotFound, DocumentStore


class Outcome(Enum):
    COPIED = "copied"
    ALREADY = "already there"
    FAILED = "failed"


@dataclass
class MigrationReport:
    copied: int = 0
    already: int = 0
    checked_against_record: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, why)
    missing: list[str] = field(default_factory=list)  # recorded in the database, in neither store

    @property
    def ok(self) -> bool:
        return not self.failed and not self.missing

    def summary(self) -> str:
        return (
            f"{self.copied} copied, {self.already} already there and verified, {len(self.failed)} failed; "
            f"{self.checked_against_record} checked against the SHA-256 recorded in the database"
        )


def recorded_digests(engine: Engine) -> dict[str, str]:
    """Storage key → SHA-256 of its plaintext, for every blob the database records a digest of."""
    digests: dict[str, str] = {}
    with Session(engine) as db:
        for key, digest in db.exec(select(Document.storage_key, Document.sha256)):
            digests[key] = digest
        for key, digest in db.exec(select(Document.current_key, Document.current_sha256)):
            digests[key] = digest
        signed = select(Signature.version_key, Signature.sha256_after).where(
            col(Signature.version_key).is_not(None), col(Signature.sha256_after).is_not(None)
        )
        for version_key, after in db.exec(signed):
            digests[version_key or ""] = after or ""
        certificates = select(Engagement.certificate_key, Engagement.certificate_sha256).where(
            col(Engagement.certificate_key).is_not(None), col(Engagement.certificate_sha256).is_not(None)
        )
        for certificate_key, certificate_digest in db.exec(certificates):
            digests[certificate_key or ""] = certificate_digest or ""
    digests.pop("", None)
    return digests


def migrate_documents(
    source: DocumentStore,
    target: DocumentStore,
    recorded: dict[str, str],
    *,
    on_blob: Callable[[str, Outcome, str], None] | None = None,
) -> MigrationReport:
    """Copy every blob of `source` into `target`; `on_blob(key, outcome, detail)` follows along."""
    report = MigrationReport()
    seen: set[str] = set()
    for key in source.all_keys():
        seen.add(key)
        outcome, detail = copy_blob(source, target, key, recorded.get(key))
        if outcome is Outcome.COPIED:
            report.copied += 1
        elif outcome is Outcome.ALREADY:
            report.already += 1
        else:
            report.failed.append((key, detail))
        if outcome is not Outcome.FAILED and key in recorded:
            report.checked_against_record += 1
        if on_blob is not None:
            on_blob(key, outcome, detail)
    report.missing = _missing(recorded, seen, target)
    return report


def copy_blob(
    source: DocumentStore, target: DocumentStore, key: str, expected: str | None
) -> tuple[Outcome, str]:
    """Copies one blob unless the target already holds it intact; (outcome, why it failed)."""
    try:
        sealed = source.blobs.read(key)
        digest = sha256_hex(source.cipher.open_blob(sealed, key))
    except (DocumentNotFound, DecryptionError) as exc:
        return Outcome.FAILED, f"the source copy cannot be read: {exc}"
    if expected is not None and digest != expected:
        return Outcome.FAILED, "the source copy does not match the SHA-256 recorded in the database"
    if _holds(target, key, digest):
        return Outcome.ALREADY, ""
    target.blobs.write(key, sealed)
    if not _holds(target, key, digest):
        return Outcome.FAILED, "the copy read back from the target does not match"
    return Outcome.COPIED, ""


def _holds(store: DocumentStore, key: str, digest: str) -> bool:
    """Whether `store` has `key` and it decrypts to plaintext with this SHA-256."""
    try:
        return sha256_hex(store.get(key)) == digest
    except (DocumentNotFound, DecryptionError):
        return False


def _missing(recorded: Iterable[str], seen: set[str], target: DocumentStore) -> list[str]:
    """Keys the database names that the source did not have and the target does not have either."""
    return sorted(key for key in recorded if key not in seen and not target.exists(key))
