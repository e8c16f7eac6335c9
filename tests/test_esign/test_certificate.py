"""The certificate of completion and the e-signature record (IRS Form 8879 e-signature guidance)."""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from datetime import timedelta
from pathlib import Path

import pdfs
import pytest
from pypdf import PdfReader
from signing_fixtures import (
    SPOUSE_UA,
    TAXPAYER_UA,
    Seeded,
    dev_signer,
    seed_joint_engagement,
    sign_and_seal,
)
from sqlmodel import Session, select

from core.context import Resources
from core.models import AuditEntry, Document, Engagement, OutboxMessage, Role, Signer, TaxpayerAccount
from esign import records
from esign.certificate import render_certificate, render_certificate_page


@pytest.fixture
def sealed(resources: Resources, tmp_path: Path) -> Seeded:
    signer, _ = dev_signer(tmp_path / "keys")
    seeded = seed_joint_engagement(resources)
    sign_and_seal(resources, signer, seeded)
    return seeded


def text_of(pdf: bytes) -> str:
    """All the text pypdf extracts, with whitespace runs collapsed (table cells wrap lines)."""
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages))


def stored_certificate(resources: Resources, engagement_id: int) -> bytes:
    with Session(resources.engine) as db:
        engagement = db.get(Engagement, engagement_id)
        assert engagement is not None and engagement.certificate_key is not None
        return resources.store.get(engagement.certificate_key)


def test_record_holds_what_the_irs_guidance_asks_for(resources: Resources, sealed: Seeded) -> None:
    with Session(resources.engine) as db:
        record = records.collect_record(db, resources.store, sealed.engagement_id)
        doc = db.get(Document, sealed.document_id)
        assert doc is not None

    [document] = record.documents
    assert (document.name, document.pages, document.sha256_sent) == ("Form 8879.pdf", 2, doc.sha256)
    assert document.sha256_signed == document.signatures[-1].sha256_after != document.sha256_current
    assert document.sha256_current == doc.current_sha256 and document.sealed_at is not None

    taxpayer, spouse = record.signers
    assert (taxpayer.role, taxpayer.full_name, taxpayer.username) == ("taxpayer", "Shelby O'Neil", "shelby")
    assert (taxpayer.masked_email, taxpayer.masked_phone) == ("she*****com", "70*****97")
    assert "one-time code sent by email to she*****com" in taxpayer.authentication
    assert "one-time code sent by text message to 70*****42" in spouse.authentication
    assert (
        taxpayer.identity_verification.startswith("Passed")
        and "0 failed attempts" in taxpayer.identity_verification
    )
    assert "1 failed attempt before" in spouse.identity_verification
    [signed] = taxpayer.signatures
    assert (signed.ip, signed.user_agent) == ("203.0.113.9", TAXPAYER_UA)
    assert spouse.signatures[0].user_agent == SPOUSE_UA
    assert signed.signed_at.utcoffset() == timedelta(0)
    assert taxpayer.signature_png is not None and taxpayer.signature_png.startswith(b"\x89PNG")
    assert {e.action for e in taxpayer.authentication_events} >= {
        "registration.completed",
        "verification.completed",
    }
    assert record.timeline[0].action == "engagement.created"


def test_certificate_lists_documents_signers_and_timeline(resources: Resources, sealed: Seeded) -> None:
    with Session(resources.engine) as db:
        record = records.collect_record(db, resources.store, sealed.engagement_id)
    text = text_of(stored_certificate(resources, sealed.engagement_id))

    [document] = record.documents
    for expected in (
        "Certificate of Completion",
        "tax year 2025",
        "Lovelace Tax",
        "Form 8879.pdf - 2 page(s) - signed by: Taxpayer, Spouse",
        f"SHA-256 as sent: {document.sha256_sent}",
        f"SHA-256 as signed: {document.sha256_signed}",
        "Shelby O'Neil",
        "Jordan O'Neil",
        "shelby",
        "she*****com",
        "70*****42",
        "Password + one-time code sent by email",
        "Drawn signature adopted once",
        "203.0.113.9",
        "198.51.100.23",
        "Safari/605.1.15",
        "Timeline (UTC)",
        "registration.mismatch",
        "verification.completed",
    ):
        assert expected in text, expected
    for signature in document.signatures:
        assert records.utc(signature.signed_at) in text
    assert text.count("Signature image SHA-256:") == 2


def test_the_sealed_document_carries_the_certificate_on_its_last_page(
    resources: Resources, sealed: Seeded
) -> None:
    with Session(resources.engine) as db:
        doc = db.get(Document, sealed.document_id)
        assert doc is not None
        sealed_pdf = resources.store.get(doc.current_key)
    last_page = pdfs.page_text(sealed_pdf, pdfs.page_count(sealed_pdf))
    for expected in (
        "Certificate of Completion",
        "Shelby O'Neil",
        "Jordan O'Neil",
        "203.0.113.9",
        doc.sha256,
    ):
        assert expected in last_page, expected


def test_a_long_timeline_still_fits_the_single_page(resources: Resources, sealed: Seeded) -> None:
    with Session(resources.engine) as db:
        for number in range(300):
            db.add(
                AuditEntry(
                    engagement_id=sealed.engagement_id,
                    actor="system",
                    action="reminder.signature_reminder",
                    detail=json.dumps({"number": str(number)}),
                    at=sealed.started + timedelta(minutes=5, seconds=number),
                )
            )
        db.commit()
        record = records.collect_record(db, resources.store, sealed.engagement_id)

    page = render_certificate_page(record, 612, 792)
    reader = PdfReader(io.BytesIO(page))
    assert len(reader.pages) == 1
    assert float(reader.pages[0].mediabox.height) <= 792 * 2.1
    assert "earlier events: see the full certificate" in text_of(page)
    assert len(PdfReader(io.BytesIO(render_certificate(record))).pages) > 3  # the full one keeps them all


def test_record_json_is_complete_and_machine_readable(resources: Resources, sealed: Seeded) -> None:
    with Session(resources.engine) as db:
        record = records.collect_record(db, resources.store, sealed.engagement_id)
    data = json.loads(records.record_json(record))

    assert data["record_version"] == 1 and data["engagement_id"] == sealed.engagement_id
    taxpayer = data["signers"][0]
    for key in ("username", "masked_email", "masked_phone", "identity_verification", "authentication"):
        assert taxpayer[key]
    assert base64.b64decode(taxpayer["signature_png"]).startswith(b"\x89PNG")
    assert taxpayer["signatures"][0]["ip"] == "203.0.113.9"
    assert taxpayer["signatures"][0]["signed_at"].endswith("+00:00")
    assert data["documents"][0]["sha256_signed"] and data["certificate_sha256"]
    assert {"at", "actor", "action", "ip", "user_agent", "detail"} <= set(data["timeline"][0])


def test_export_is_a_zip_of_pdfs_certificate_and_json(resources: Resources, sealed: Seeded) -> None:
    with Session(resources.engine) as db:
        archive = zipfile.ZipFile(
            io.BytesIO(records.export_record(db, resources.store, sealed.engagement_id))
        )
        doc = db.get(Document, sealed.document_id)
        assert doc is not None

    name = f"{doc.id}-Form 8879.pdf"
    assert sorted(archive.namelist()) == sorted(
        ["certificate-of-completion.pdf", "e-signature-record.json", f"signed/{name}", f"as-sent/{name}"]
    )
    assert archive.read(f"as-sent/{name}") == sealed.original
    assert archive.read("certificate-of-completion.pdf") == stored_certificate(
        resources, sealed.engagement_id
    )
    assert json.loads(archive.read("e-signature-record.json"))["documents"][0]["sealed_at"]


def test_export_waits_for_the_seal(resources: Resources, tmp_path: Path) -> None:
    signer, _ = dev_signer(tmp_path / "keys")
    seeded = seed_joint_engagement(resources)
    sign_and_seal(resources, signer, seeded, seal=False)
    with Session(resources.engine) as db, pytest.raises(records.RecordNotReady):
        records.export_record(db, resources.store, seeded.engagement_id)


# ---- contact changes after verification ------------------------------------------------------------------


def code_sent(resources: Resources, seeded: Seeded, role: str, channel: str, destination: str) -> None:
    """The outbox row the workflow's send_message leaves for a verification code."""
    with Session(resources.engine) as db:
        db.add(
            OutboxMessage(
                idempotency_key=f"t1-engagement-{seeded.engagement_id}:code:{role}:1",
                engagement_id=seeded.engagement_id,
                purpose="code",
                channel=channel,
                destination=destination,
                subject="",
                body_encrypted=b"",
                backend="outbox",
                status="sent",
            )
        )
        db.commit()


def contact_changed(
    resources: Resources, seeded: Seeded, role: Role, kind: str, new: str, masked: tuple[str, str]
) -> None:
    """What services/account_changes.py leaves behind: both rows changed, the change audited."""
    with Session(resources.engine) as db:
        signer = db.exec(
            select(Signer).where(Signer.engagement_id == seeded.engagement_id, Signer.role == role)
        ).one()
        account = db.exec(select(TaxpayerAccount).where(TaxpayerAccount.signer_id == signer.id)).one()
        setattr(signer, kind, new)
        setattr(account, kind, new)
        db.add_all([signer, account])
        db.add(
            AuditEntry(
                firm_id=seeded.firm_id,
                engagement_id=seeded.engagement_id,
                actor=f"taxpayer:{role.value}",
                action=f"account.{kind}_changed",
                detail=json.dumps({"from": masked[0], "to": masked[1]}),
                at=seeded.started + timedelta(minutes=20),
            )
        )
        db.commit()


def test_record_names_where_the_code_went_not_the_address_in_use_now(
    resources: Resources, tmp_path: Path
) -> None:
    signer, _ = dev_signer(tmp_path / "keys")
    seeded = seed_joint_engagement(resources)
    code_sent(resources, seeded, "taxpayer", "email", "shelby.oneil@example.com")
    contact_changed(
        resources, seeded, Role.TAXPAYER, "email", "shelby.new@example.org", ("she*****com", "she*****org")
    )
    # The spouse's code has no outbox row here: the change's own audit entry names the address it replaced.
    contact_changed(resources, seeded, Role.SPOUSE, "phone", "+17025550123", ("70*****42", "70*****23"))
    sign_and_seal(resources, signer, seeded)
    with Session(resources.engine) as db:
        record = records.collect_record(db, resources.store, seeded.engagement_id)

    taxpayer, spouse = record.signers
    assert taxpayer.masked_email == "she*****org" and spouse.masked_phone == "70*****23"
    assert "one-time code sent by email to she*****com," in taxpayer.authentication
    assert "one-time code sent by text message to 70*****42," in spouse.authentication
    assert "account.email_changed" in {e.action for e in taxpayer.authentication_events}
    assert "account.phone_changed" in {e.action for e in spouse.authentication_events}
    text = text_of(stored_certificate(resources, seeded.engagement_id))
    assert "Password + one-time code sent by email to she*****com" in text
    assert "email address changed from she*****com to she*****org" in text
    assert "phone number changed from 70*****42 to 70*****23" in text


def test_the_code_s_outbox_row_is_the_witness_whatever_the_rows_say_now(
    resources: Resources, sealed: Seeded
) -> None:
    """Contact rows edited outside Portico's audited paths (say, in the database) do not move the record."""
    code_sent(resources, sealed, "taxpayer", "email", "shelby.oneil@example.com")
    code_sent(resources, sealed, "spouse", "email", "not.this.one@example.net")  # another signer's code
    with Session(resources.engine) as db:
        before = records.collect_record(db, resources.store, sealed.engagement_id)
        signer = db.exec(select(Signer).where(Signer.email == "shelby.oneil@example.com")).one()
        account = db.exec(select(TaxpayerAccount).where(TaxpayerAccount.signer_id == signer.id)).one()
        signer.email = account.email = "shelby@work.example"
        db.add_all([signer, account])
        db.commit()
        after = records.collect_record(db, resources.store, sealed.engagement_id)
    assert after.signers[0].masked_email == "she*****ple"
    assert before.signers[0].authentication == after.signers[0].authentication
    assert "one-time code sent by email to she*****com," in after.signers[0].authentication
