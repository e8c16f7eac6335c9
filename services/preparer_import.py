"""Bulk import: engagements from a CSV export of the firm's tax software, one row per return.

Every row is checked before anything is created; a file with any error creates nothing and the errors
are listed by row. Each return has a stable key (firm + tax year + keyed digest of the taxpayer's SSN)
claimed in `ImportedRow` before its engagement is created, so importing the same file again — or two
imports of it racing — creates nothing twice. Used by the import page and `portico import-engagements`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select, update
from temporalio.client import Client

from core import audit
from core.actor import Actor
from core.context import Resources
from core.crypto import sha256_hex
from core.identity import guess_time_zone
from core.models import Engagement, FirmSettings, ImportBatch, ImportedRow, Preparer, utcnow
from services.engagements import create_engagement
from services.schemas import EngagementCreate

MAX_ROWS = 5000
STALE_CLAIM = timedelta(hours=1)
PEOPLE = ("taxpayer", "spouse")
PERSON_FIELDS = ("first_name", "last_name", "ssn", "email", "phone", "time_zone")
COLUMNS = ("tax_year", *(f"{p}_{f}" for p in PEOPLE for f in PERSON_FIELDS), "preparer_email")
REQUIRED_COLUMNS = ("tax_year", "taxpayer_first_name", "taxpayer_last_name", "taxpayer_ssn")
# Header spellings seen in tax software exports, after lower-casing and turning spaces/dashes into "_".
ALIASES = {
    "year": "tax_year",
    "taxyear": "tax_year",
    "first_name": "taxpayer_first_name",
    "last_name": "taxpayer_last_name",
    "ssn": "taxpayer_ssn",
    "email": "taxpayer_email",
    "phone": "taxpayer_phone",
    "time_zone": "taxpayer_time_zone",
    "timezone": "taxpayer_time_zone",
    "tp_first_name": "taxpayer_first_name",
    "tp_last_name": "taxpayer_last_name",
    "tp_ssn": "taxpayer_ssn",
    "tp_email": "taxpayer_email",
    "tp_phone": "taxpayer_phone",
    "sp_first_name": "spouse_first_name",
    "sp_last_name": "spouse_last_name",
    "sp_ssn": "spouse_ssn",
    "sp_email": "spouse_email",
    "sp_phone": "spouse_phone",
    "preparer": "preparer_email",
}
US_ZONES = {
    "eastern": "America/New_York",
    "et": "America/New_York",
    "est": "America/New_York",
    "edt": "America/New_York",
    "central": "America/Chicago",
    "ct": "America/Chicago",
    "cst": "America/Chicago",
    "cdt": "America/Chicago",
    "mountain": "America/Denver",
    "mt": "America/Denver",
    "mst": "America/Denver",
    "mdt": "America/Denver",
    "arizona": "America/Phoenix",
    "pacific": "America/Los_Angeles",
    "pt": "America/Los_Angeles",
    "pst": "America/Los_Angeles",
    "pdt": "America/Los_Angeles",
    "alaska": "America/Anchorage",
    "hawaii": "Pacific/Honolulu",
    "hst": "Pacific/Honolulu",
}


@dataclass(frozen=True)
class RowError:
    line: int  # the line in the file (the header is line 1)
    column: str
    message: str


@dataclass
class ParsedRow:
    line: int
    body: EngagementCreate
    key: str
    preparer_id: int
    label: str
    already_imported: bool = False


@dataclass
class ImportCheck:
    file_name: str
    sha256: str
    rows: list[ParsedRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.rows)

    @property
    def new_rows(self) -> list[ParsedRow]:
        return [r for r in self.rows if not r.already_imported]

    @property
    def already(self) -> int:
        return sum(r.already_imported for r in self.rows)

    def errors_by_line(self) -> list[tuple[int, list[RowError]]]:
        grouped: dict[int, list[RowError]] = {}
        for error in self.errors:
            grouped.setdefault(error.line, []).append(error)
        return sorted(grouped.items())


def _column(name: str) -> str:
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    return ALIASES.get(key, key)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # Excel on Windows


def _rows(text: str) -> tuple[list[str], list[dict[str, str]]]:
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    lines = list(reader)
    if not lines:
        return [], []
    header = [_column(h) for h in lines[0]]
    rows = [{header[i]: v.strip() for i, v in enumerate(line) if i < len(header)} for line in lines[1:]]
    return header, rows


def row_key(resources: Resources, firm_id: int, tax_year: int, ssn: str) -> str:
    """The same return always has the same key; the SSN is only in a keyed digest."""
    return resources.cipher.digest("import-row", f"{firm_id}|{tax_year}|{ssn}")


# What to do about a wrong field, by the field's name (the same words on the page and in import errors).
FIELD_HELP = {
    "tax_year": "Enter a tax year from 2000 to 2100.",
    "first_name": "Enter the first name.",
    "last_name": "Enter the last name.",
    "ssn": "Enter a Social Security number with nine digits, like 123-45-6789.",
    "email": "Enter an email address, like name@example.com.",
    "phone": "Enter a US phone number, like (702) 555-0197.",
    "time_zone": "Choose a time zone, like America/New_York.",
}


def _message(error: Any) -> str:
    text = str(error.get("msg", "is not valid"))
    return text.removeprefix("Value error, ")


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Pydantic's errors for an `EngagementCreate` as {"taxpayer_ssn": "Enter a Social …"}."""
    out: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        if loc and loc[0] in PEOPLE and len(loc) == 1:  # the whole person: no email and no phone
            out.setdefault(f"{loc[0]}_email", "Give an email address or a phone number (or both).")
            continue
        name = "_".join(loc[:2]) if loc else "row"
        out.setdefault(name, FIELD_HELP.get(loc[-1] if loc else "", _message(error)))
    return out


def engagement_body(row: dict[str, str], default_zone: str) -> dict[str, Any]:
    """A flat row (`taxpayer_ssn`, `spouse_email` …) as the nested `EngagementCreate` input; the spouse
    only when any of their fields is filled in."""
    return _body(row, default_zone)


def _body(row: dict[str, str], default_zone: str) -> dict[str, Any]:
    body: dict[str, Any] = {"tax_year": row.get("tax_year", "")}
    for person in PEOPLE:
        values = {f: row.get(f"{person}_{f}", "") for f in PERSON_FIELDS}
        if person == "spouse" and not any(v for k, v in values.items() if k != "time_zone"):
            continue
        zone = values["time_zone"]
        guess = guess_time_zone(values["phone"]) or default_zone  # a 702 number lives in Nevada, not the firm
        values["time_zone"] = US_ZONES.get(zone.lower(), zone) if zone else guess
        body[person] = {k: (v or None) if k in ("email", "phone") else v for k, v in values.items()}
    return body


def _errors(line: int, exc: ValidationError) -> list[RowError]:
    return [RowError(line, column, message) for column, message in field_errors(exc).items()]


def check_file(
    db: Session, resources: Resources, preparer: Preparer, data: bytes, file_name: str
) -> ImportCheck:
    """Every row checked, nothing written."""
    check = ImportCheck(file_name=file_name, sha256=sha256_hex(data))
    header, rows = _rows(_decode(data))
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        check.errors.append(RowError(1, ", ".join(missing), "Required column missing."))
        return check
    if len(rows) > MAX_ROWS:
        check.errors.append(RowError(1, "", f"Import at most {MAX_ROWS:,} rows per file."))
        return check
    firm = db.get(FirmSettings, preparer.firm_id)
    default_zone = firm.time_zone if firm else "America/New_York"
    preparers = {
        p.email: p.id or 0
        for p in db.exec(select(Preparer).where(Preparer.firm_id == preparer.firm_id, col(Preparer.active)))
    }
    seen: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        if not any(row.values()):
            continue  # blank line
        try:
            body = EngagementCreate.model_validate(_body(row, default_zone))
        except ValidationError as exc:
            check.errors += _errors(line, exc)
            continue
        owner = preparer.id or 0
        email = row.get("preparer_email", "").lower()
        if email:
            if email not in preparers:
                check.errors.append(RowError(line, "preparer_email", "No active preparer of this firm."))
                continue
            owner = preparers[email]
        key = row_key(resources, preparer.firm_id, body.tax_year, body.taxpayer.ssn)
        if key in seen:
            check.errors.append(
                RowError(line, "taxpayer_ssn", f"The same return (SSN and tax year) as line {seen[key]}.")
            )
            continue
        seen[key] = line
        label = f"{body.taxpayer.first_name} {body.taxpayer.last_name} ({body.tax_year})"
        check.rows.append(ParsedRow(line, body, key, owner, label))
    _mark_imported(db, preparer.firm_id, check.rows)
    if not check.rows and not check.errors:
        check.errors.append(RowError(1, "", "The file has no rows."))
    return check


def _stale_claim(db: Session, batch: ImportBatch, key: str) -> ImportedRow | None:
    """A claim left without an engagement by an import that died over an hour ago: this one takes it."""
    claim = db.exec(
        select(ImportedRow).where(ImportedRow.firm_id == batch.firm_id, ImportedRow.row_key == key)
    ).first()
    if claim is None or claim.engagement_id is not None:
        return None
    owner = db.get(ImportBatch, claim.batch_id)
    if owner is None or owner.finished_at is not None or utcnow() - owner.created_at < STALE_CLAIM:
        return None
    taken = db.exec(
        update(ImportedRow)
        .where(
            col(ImportedRow.id) == claim.id,
            col(ImportedRow.batch_id) == claim.batch_id,
            col(ImportedRow.engagement_id).is_(None),
        )
        .values(batch_id=batch.id)
    )
    db.commit()
    if taken.rowcount != 1:
        return None
    db.refresh(claim)
    return claim


def _mark_imported(db: Session, firm_id: int, rows: list[ParsedRow]) -> None:
    by_key = {r.key: r for r in rows}
    keys = list(by_key)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        found = db.exec(
            select(ImportedRow.row_key).where(
                ImportedRow.firm_id == firm_id,
                col(ImportedRow.row_key).in_(chunk),
                col(ImportedRow.engagement_id).is_not(None),
            )
        ).all()
        for key in found:
            by_key[key].already_imported = True


async def run_import(
    db: Session,
    client: Client,
    resources: Resources,
    actor: Actor,
    preparer: Preparer,
    check: ImportCheck,
    *,
    source: str = "web",
    progress: Callable[[ParsedRow, bool], None] | None = None,
) -> ImportBatch:
    """Creates the engagements of a checked file; a row already imported is skipped, never repeated."""
    if check.errors:
        raise ValueError("the file has errors; nothing may be imported")
    batch = ImportBatch(
        firm_id=preparer.firm_id,
        preparer_id=preparer.id or 0,
        file_name=check.file_name[:200],
        file_sha256=check.sha256,
        rows=len(check.rows),
        skipped=check.already,
        source=source,
    )
    db.add(batch)
    db.commit()
    owners = {p.id: p for p in db.exec(select(Preparer).where(Preparer.firm_id == preparer.firm_id))}
    # Counted here, not on the row: a rolled-back claim (another import had it) resets the session's objects.
    created, skipped = 0, check.already
    try:
        for row in check.new_rows:
            owner = owners.get(row.preparer_id, preparer)
            made = await _import_row(db, client, resources, actor, batch, owner, row)
            created, skipped = created + made, skipped + (not made)
            if progress is not None:
                progress(row, made)
    finally:
        batch.created, batch.skipped, batch.finished_at = created, skipped, utcnow()
        db.add(batch)
        audit.record(
            db,
            action="import.completed",
            actor=actor,
            firm_id=preparer.firm_id,
            detail={"batch": batch.id, "file": batch.file_name, "created": created, "skipped": skipped},
        )
        db.commit()
    return batch


async def _import_row(
    db: Session,
    client: Client,
    resources: Resources,
    actor: Actor,
    batch: ImportBatch,
    owner: Preparer,
    row: ParsedRow,
) -> bool:
    claim = ImportedRow(firm_id=batch.firm_id, row_key=row.key, batch_id=batch.id or 0)
    db.add(claim)
    try:
        db.commit()
    except IntegrityError:  # imported before (or by an import running right now)
        db.rollback()
        stale = _stale_claim(db, batch, row.key)
        if stale is None:
            return False
        claim = stale
    try:
        engagement: Engagement = await create_engagement(db, client, resources, owner, row.body)
    except BaseException:
        db.rollback()
        db.delete(claim)  # free the key: running the import again retries this row
        db.commit()
        raise
    claim.engagement_id = engagement.id
    db.add(claim)
    audit.record(
        db,
        action="engagement.create",
        actor=actor,
        firm_id=batch.firm_id,
        engagement_id=engagement.id,
        detail={"import": batch.id, "line": row.line},
    )
    db.commit()
    return True
