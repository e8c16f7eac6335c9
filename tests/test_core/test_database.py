"""Tables, constraints, encryption at rest, the audit log and web sessions, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import Session, SQLModel, col, select

from core import audit, sessions
from core.actor import SYSTEM, Actor
from core.config import Settings
from core.context import Resources
from core.db import session_scope
from core.models import (
    AccountLink,
    AuditEntry,
    Direction,
    Document,
    Engagement,
    Firm,
    OutboxMessage,
    Preparer,
    Role,
    Signature,
    Signer,
    TaxpayerAccount,
    WebSession,
    utcnow,
)

TAXPAYER_SSN = "123456789"
SPOUSE_SSN = "234567890"
IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)


@pytest.fixture
def res(db_settings: Settings) -> Iterator[Resources]:
    resources = Resources.from_settings(db_settings)
    yield resources
    resources.engine.dispose()


@dataclass(frozen=True)
class Rows:
    firm_id: int
    preparer_id: int
    engagement_id: int
    taxpayer_id: int
    spouse_id: int


def make_engagement(res: Resources) -> Rows:
    """A firm, a preparer and a joint-return engagement, written the way the API writes them."""
    with Session(res.engine, expire_on_commit=False) as db:
        firm = Firm(name="Lovelace Tax")
        db.add(firm)
        db.flush()
        preparer = Preparer(
            firm_id=firm.id or 0, email=f"ada{firm.id}@firm.test", name="Ada Lovelace", password_hash="x"
        )
        db.add(preparer)
        db.flush()
        engagement = Engagement(firm_id=firm.id or 0, preparer_id=preparer.id or 0, tax_year=2024)
        db.add(engagement)
        db.flush()
        people = [
            (Role.TAXPAYER, "Shelby", TAXPAYER_SSN, "shelby.jones@example.com", "+17025550197"),
            (Role.SPOUSE, "Sam", SPOUSE_SSN, "sam.jones@example.com", "+17025550198"),
        ]
        rows = [
            Signer(
                engagement_id=engagement.id or 0,
                role=role,
                first_name=first,
                last_name="Jones",
                ssn_encrypted=res.cipher.encrypt_text(ssn, "ssn"),
                ssn_last4_digest=res.cipher.digest("ssn-last4", ssn[-4:]),
                email=email,
                phone=phone,
            )
            for role, first, ssn, email, phone in people
        ]
        db.add_all(rows)
        db.commit()
        return Rows(firm.id or 0, preparer.id or 0, engagement.id or 0, rows[0].id or 0, rows[1].id or 0)


# --- schema --------------------------------------------------------------------------------------------


def test_every_table_is_created_and_creating_again_is_harmless(db_settings: Settings) -> None:
    first = Resources.from_settings(db_settings)
    make_engagement(first)
    second = Resources.from_settings(db_settings)  # a second process starting on the same database
    try:
        tables = set(inspect(second.engine).get_table_names())
        assert set(SQLModel.metadata.tables) <= tables
        with Session(second.engine) as db:
            assert len(db.exec(select(Signer)).all()) == 2  # nothing dropped or recreated
    finally:
        first.engine.dispose()
        second.engine.dispose()


def test_dashboard_indexes_exist(res: Resources) -> None:
    names = {index["name"] for index in inspect(res.engine).get_indexes("engagementstatus")}
    assert {"ix_status_firm_stage_since", "ix_status_firm_activity"} <= names


def test_role_round_trips_as_an_enum(res: Resources) -> None:
    rows = make_engagement(res)
    with Session(res.engine) as db:
        taxpayer = db.exec(select(Signer).where(Signer.role == "taxpayer")).one()
        assert taxpayer.id == rows.taxpayer_id
        assert taxpayer.role is Role.TAXPAYER
        assert taxpayer.full_name == "Shelby Jones"


# --- SSNs at rest --------------------------------------------------------------------------------------


def test_ssn_is_encrypted_in_the_column_and_decrypts(res: Resources) -> None:
    rows = make_engagement(res)
    with res.engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT id, ssn_encrypted FROM signer")).all())
        digests = [row[0] for row in conn.execute(text("SELECT ssn_last4_digest FROM signer"))]
    for signer_id, ssn in ((rows.taxpayer_id, TAXPAYER_SSN), (rows.spouse_id, SPOUSE_SSN)):
        raw = bytes(stored[signer_id])
        for shown in (ssn, f"{ssn[:3]}-{ssn[3:5]}-{ssn[5:]}", ssn[-4:]):
            assert shown.encode() not in raw
        assert res.cipher.decrypt_text(raw, "ssn") == ssn
    assert all(TAXPAYER_SSN[-4:] not in d and SPOUSE_SSN[-4:] not in d for d in digests)


def test_ssn_is_not_anywhere_in_the_stored_database(res: Resources) -> None:
    """Read what the database really keeps: the SQLite files, or every signer row as PostgreSQL prints it."""
    make_engagement(res)
    if res.engine.dialect.name == "sqlite":
        database = res.engine.url.database
        assert database
        res.engine.dispose()  # let the write-ahead log reach the file (and read the log too, in case)
        raw = b"".join(
            path.read_bytes()
            for path in res.settings.data_dir.glob("portico.db*")
            if path.name.endswith(("db", "-wal"))
        )
    else:
        with res.engine.connect() as conn:
            raw = "\n".join(conn.execute(text("SELECT s::text FROM signer AS s")).scalars()).encode()
    assert b"Shelby" in raw and b"shelby.jones@example.com" in raw  # we are reading the right bytes
    for ssn in (TAXPAYER_SSN, SPOUSE_SSN):
        assert ssn.encode() not in raw
        assert f"{ssn[:3]}-{ssn[3:5]}-{ssn[5:]}".encode() not in raw


def test_ssn_cannot_be_read_with_another_master_key(res: Resources) -> None:
    from core.crypto import Cipher, DecryptionError

    make_engagement(res)
    with Session(res.engine) as db:
        signer = db.exec(select(Signer)).first()
        assert signer is not None
        with pytest.raises(DecryptionError):
            Cipher(bytes(range(32))).decrypt_text(signer.ssn_encrypted, "ssn")


# --- times ---------------------------------------------------------------------------------------------


def test_times_are_stored_as_utc_and_come_back_aware(res: Resources) -> None:
    rows = make_engagement(res)
    pacific = timezone(timedelta(hours=-8))
    saved_at = datetime(2025, 3, 1, 23, 30, 15, 123456, tzinfo=pacific)
    with Session(res.engine) as db:
        signer = db.get(Signer, rows.taxpayer_id)
        assert signer is not None
        signer.signature_saved_at = saved_at
        db.add(signer)
        db.commit()
    with Session(res.engine) as db:
        signer = db.get(Signer, rows.taxpayer_id)
        assert signer is not None and signer.signature_saved_at is not None
        assert signer.signature_saved_at.tzinfo is not None
        assert signer.signature_saved_at == saved_at
        assert signer.signature_saved_at.astimezone(UTC) == datetime(
            2025, 3, 2, 7, 30, 15, 123456, tzinfo=UTC
        )
        firm = db.get(Firm, rows.firm_id)
        assert firm is not None and firm.created_at.tzinfo is not None
        assert abs(utcnow() - firm.created_at) < timedelta(minutes=1)


def test_naive_time_is_refused(res: Resources) -> None:
    rows = make_engagement(res)
    with Session(res.engine) as db:
        signer = db.get(Signer, rows.taxpayer_id)
        assert signer is not None
        signer.signature_saved_at = datetime(2025, 3, 1, 12, 0)  # a naive time: the point of the test
        db.add(signer)
        with pytest.raises(StatementError, match="naive datetime"):
            db.commit()


# --- constraints ---------------------------------------------------------------------------------------


def _document(engagement_id: int, upload_ref: str) -> Document:
    return Document(
        engagement_id=engagement_id,
        direction=Direction.TO_CLIENT,
        upload_ref=upload_ref,
        name="Form 8879.pdf",
        content_type="application/pdf",
        size=1,
        storage_key="upload/" + "a" * 32,
        sha256="0" * 64,
        current_key="upload/" + "a" * 32,
        current_sha256="0" * 64,
        uploaded_by="preparer:1",
    )


def _outbox(key: str) -> OutboxMessage:
    return OutboxMessage(
        idempotency_key=key,
        purpose="invite",
        channel="email",
        destination="a@example.com",
        subject="",
        body_encrypted=b"x",
        backend="outbox",
    )


def _second_signer(rows: Rows) -> list[SQLModel]:
    return [
        Signer(
            engagement_id=rows.engagement_id,
            role=Role.TAXPAYER,
            first_name="Other",
            last_name="Person",
            ssn_encrypted=b"x",
            ssn_last4_digest="x",
        )
    ]


def _same_upload_twice(rows: Rows) -> list[SQLModel]:
    return [_document(rows.engagement_id, "u-1"), _document(rows.engagement_id, "u-1")]


def _same_message_key_twice(rows: Rows) -> list[SQLModel]:
    return [_outbox("engagement-1:invite:1"), _outbox("engagement-1:invite:1")]


def _same_audit_event_twice(rows: Rows) -> list[SQLModel]:
    return [AuditEntry(event_key="engagement-1:7", actor="system", action="a") for _ in range(2)]


def _same_username_twice(rows: Rows) -> list[SQLModel]:
    return [
        TaxpayerAccount(signer_id=sid, username="shelby", password_hash="x", email="e", phone="p")
        for sid in (rows.taxpayer_id, rows.spouse_id)
    ]


def _one_signer_linked_to_two_accounts(rows: Rows) -> list[SQLModel]:
    """A person's accounts are never merged, and a signer is reached by one account only."""
    signer, eid = rows.taxpayer_id, rows.engagement_id
    accounts: list[SQLModel] = [
        TaxpayerAccount(id=n, signer_id=signer, username=f"s{n}", password_hash="x", email="e", phone="p")
        for n in (901, 902)
    ]
    links = [AccountLink(signer_id=signer, account_id=n, engagement_id=eid) for n in (901, 902)]
    return accounts + links


def _same_preparer_email_twice(rows: Rows) -> list[SQLModel]:
    return [Preparer(firm_id=rows.firm_id, email="ada1@firm.test", name="Ada", password_hash="x")]


def _signer_of_missing_engagement(rows: Rows) -> list[SQLModel]:
    return [
        Signer(
            engagement_id=999_999,
            role=Role.TAXPAYER,
            first_name="Nobody",
            last_name="Here",
            ssn_encrypted=b"x",
            ssn_last4_digest="x",
        )
    ]


@pytest.mark.parametrize(
    "duplicates",
    [
        _second_signer,
        _same_upload_twice,
        _same_message_key_twice,
        _same_audit_event_twice,
        _same_username_twice,
        _one_signer_linked_to_two_accounts,
        _same_preparer_email_twice,
        _signer_of_missing_engagement,
    ],
)
def test_constraints_refuse_duplicates_and_dangling_rows(
    res: Resources, duplicates: Callable[[Rows], list[SQLModel]]
) -> None:
    rows = make_engagement(res)
    *accepted, refused = duplicates(rows)
    with Session(res.engine) as db:
        for row in accepted:  # in the order given: a row may need the one before it
            db.add(row)
            db.flush()
        db.commit()
        db.expunge_all()  # the refused row is checked by the database, not by the session's identity map
        db.add(refused)
        with pytest.raises(IntegrityError):
            db.commit()


def test_one_signature_row_per_document_and_role(res: Resources) -> None:
    rows = make_engagement(res)
    with Session(res.engine) as db:
        doc = _document(rows.engagement_id, "u-1")
        db.add(doc)
        db.flush()
        db.add(Signature(document_id=doc.id or 0, role=Role.TAXPAYER))
        db.add(Signature(document_id=doc.id or 0, role=Role.SPOUSE))
        db.commit()
        db.add(Signature(document_id=doc.id or 0, role=Role.TAXPAYER))
        with pytest.raises(IntegrityError):
            db.commit()


# --- audit log -----------------------------------------------------------------------------------------


def test_audit_entry_with_an_event_key_is_written_once(res: Resources) -> None:
    rows = make_engagement(res)
    actor = Actor(kind="taxpayer", id="taxpayer", ip="198.51.100.7", user_agent="Firefox/128")
    at = datetime(2025, 2, 3, 4, 5, 6, tzinfo=UTC)
    for _ in range(2):  # a retried activity
        with Session(res.engine) as db:
            audit.record(
                db,
                action="document.signed",
                actor=actor,
                firm_id=rows.firm_id,
                engagement_id=rows.engagement_id,
                detail={"document_id": 7},
                event_key="engagement-1:12",
                at=at,
            )
            db.commit()
    with Session(res.engine) as db:
        (entry,) = db.exec(select(AuditEntry)).all()
    assert entry.actor == "taxpayer:taxpayer"
    assert (entry.ip, entry.user_agent) == ("198.51.100.7", "Firefox/128")
    assert entry.at == at
    assert entry.detail == '{"document_id": 7}'
    assert (entry.firm_id, entry.engagement_id) == (rows.firm_id, rows.engagement_id)


def test_audit_entries_without_a_key_all_count(res: Resources) -> None:
    with Session(res.engine) as db:
        for _ in range(3):  # three logins are three facts
            audit.record(db, action="preparer.login", actor=SYSTEM)
        db.commit()
        entries = db.exec(select(AuditEntry)).all()
    assert len(entries) == 3
    assert all(entry.actor == "system" and entry.at.tzinfo is not None for entry in entries)


def test_audit_record_twice_in_one_transaction_adds_one(res: Resources) -> None:
    with Session(res.engine) as db:
        audit.record(db, action="x", actor=SYSTEM, event_key="k-1")
        audit.record(db, action="x", actor=SYSTEM, event_key="k-1")
        db.commit()
        assert len(db.exec(select(AuditEntry)).all()) == 1


# --- web sessions --------------------------------------------------------------------------------------


def _age(res: Resources, token: str, **changes: datetime) -> None:
    with Session(res.engine) as db:
        row = db.get(WebSession, hashlib.sha256(token.encode()).hexdigest())
        assert row is not None
        for name, value in changes.items():
            setattr(row, name, value)
        db.add(row)
        db.commit()


def _resolve(res: Resources, token: str, kind: str = "taxpayer") -> WebSession | None:
    with session_scope(res.engine) as db:  # as the API's request session
        return sessions.resolve(db, token, kind, IDLE, ABSOLUTE)


def _count_sessions(res: Resources) -> int:
    with Session(res.engine) as db:
        return len(db.exec(select(WebSession)).all())


def test_session_starts_resolves_and_stores_only_a_hash(res: Resources) -> None:
    with Session(res.engine) as db:
        token = sessions.start(db, "taxpayer", 17, "198.51.100.7", "Firefox/128")
    assert len(token) >= 43  # 256 random bits
    found = _resolve(res, token)
    assert found is not None
    assert (found.kind, found.subject_id, found.ip, found.user_agent) == (
        "taxpayer",
        17,
        "198.51.100.7",
        "Firefox/128",
    )
    with res.engine.connect() as conn:
        stored = [tuple(map(str, row)) for row in conn.execute(text("SELECT * FROM websession"))]
    assert stored and all(token not in value for row in stored for value in row)
    assert stored[0][0] == hashlib.sha256(token.encode()).hexdigest()


def test_every_session_token_is_different(res: Resources) -> None:
    with Session(res.engine) as db:
        tokens = {sessions.start(db, "taxpayer", 17, None, None) for _ in range(5)}
    assert len(tokens) == 5


def test_unknown_token_resolves_to_nothing(res: Resources) -> None:
    assert _resolve(res, "not-a-session") is None


def test_session_of_another_kind_is_refused(res: Resources) -> None:
    """A taxpayer's cookie must never open the preparer side."""
    with Session(res.engine) as db:
        token = sessions.start(db, "taxpayer", 1, None, None)
    assert _resolve(res, token, kind="preparer") is None
    assert _resolve(res, token, kind="taxpayer") is not None


def test_idle_session_expires_and_is_removed(res: Resources) -> None:
    with Session(res.engine) as db:
        token = sessions.start(db, "taxpayer", 1, None, None)
    _age(res, token, last_seen_at=utcnow() - IDLE - timedelta(seconds=5))
    assert _resolve(res, token) is None
    assert _count_sessions(res) == 0


def test_active_session_is_kept_alive(res: Resources) -> None:
    with Session(res.engine) as db:
        token = sessions.start(db, "taxpayer", 1, None, None)
    _age(res, token, last_seen_at=utcnow() - IDLE + timedelta(minutes=2))
    found = _resolve(res, token)
    assert found is not None
    assert utcnow() - found.last_seen_at < timedelta(minutes=1)  # the visit reset the idle clock
    _age(res, token, last_seen_at=utcnow() - IDLE + timedelta(minutes=2))
    assert _resolve(res, token) is not None


def test_absolute_timeout_ends_even_an_active_session(res: Resources) -> None:
    with Session(res.engine) as db:
        token = sessions.start(db, "taxpayer", 1, None, None)
    _age(res, token, created_at=utcnow() - ABSOLUTE - timedelta(seconds=5), last_seen_at=utcnow())
    assert _resolve(res, token) is None
    assert _count_sessions(res) == 0


def test_ended_session_no_longer_resolves(res: Resources) -> None:
    with Session(res.engine) as db:
        token = sessions.start(db, "taxpayer", 1, None, None)
        other = sessions.start(db, "taxpayer", 1, None, None)
        sessions.end(db, token)
        sessions.end(db, token)  # logging out twice is fine
    assert _resolve(res, token) is None
    assert _resolve(res, other) is not None


def test_end_all_signs_out_one_person_everywhere(res: Resources) -> None:
    with Session(res.engine) as db:
        mine = [sessions.start(db, "preparer", 5, None, None) for _ in range(3)]
        colleague = sessions.start(db, "preparer", 6, None, None)
        taxpayer_with_same_id = sessions.start(db, "taxpayer", 5, None, None)
        assert sessions.end_all(db, "preparer", 5) == 3
        assert sessions.end_all(db, "preparer", 5) == 0
    assert all(_resolve(res, token, kind="preparer") is None for token in mine)
    assert _resolve(res, colleague, kind="preparer") is not None
    assert _resolve(res, taxpayer_with_same_id, kind="taxpayer") is not None
    with Session(res.engine) as db:
        remaining = db.exec(select(WebSession).where(col(WebSession.subject_id).in_([5, 6]))).all()
    assert len(remaining) == 2
