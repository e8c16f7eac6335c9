"""`portico verify-pdf`, `portico export-record` and their preparer endpoints, on good and tampered files."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path

import pytest
from journey import login_preparer, make_preparer
from signing_fixtures import Seeded, dev_signer, seed_joint_engagement, sign_and_seal
from sqlmodel import Session, select
from typer.testing import CliRunner

from core.config import Settings
from core.context import Resources
from core.crypto import sha256_hex
from core.models import Document, Signature
from esign import verification
from portico import cli


def tamper(pdf: bytes) -> bytes:
    at = pdf.index(b"Form 8879") + len("Form 887")
    return pdf[:at] + b"8" + pdf[at + 1 :]


def seal_one(resources: Resources, data_dir: Path) -> Seeded:
    signer, _ = dev_signer(data_dir)  # the settings' own data folder: verify trusts this dev CA
    seeded = seed_joint_engagement(resources)
    sign_and_seal(resources, signer, seeded)
    return seeded


@pytest.fixture
def sealed(resources: Resources, settings: Settings) -> Seeded:
    return seal_one(resources, settings.data_dir)


def versions(resources: Resources, document_id: int) -> dict[str, bytes]:
    with Session(resources.engine) as db:
        doc = db.get(Document, document_id)
        assert doc is not None
        by_role = {
            s.role.value: s for s in db.exec(select(Signature).where(Signature.document_id == document_id))
        }
        return {
            "sent": resources.store.get(doc.storage_key),
            "taxpayer": resources.store.get(by_role["taxpayer"].version_key or ""),
            "sealed": resources.store.get(doc.current_key),
        }


def test_a_sealed_document_verifies_and_matches_the_record(
    resources: Resources, settings: Settings, sealed: Seeded
) -> None:
    pdf = versions(resources, sealed.document_id)["sealed"]
    with Session(resources.engine) as db:
        report = verification.verify_pdf(pdf, verification.trust_roots(settings), db)

    assert report.all_signatures_hold and report.sealed and report.pages == 3
    assert [(s.field_name, s.signer_name) for s in report.signatures][:2] == [
        ("Taxpayer", "Shelby O'Neil"),
        ("Spouse", "Jordan O'Neil"),
    ]
    assert report.record == verification.RecordMatch(
        sealed.engagement_id, sealed.document_id, "Form 8879.pdf", "sealed"
    )
    text = verification.describe(report, "form.pdf")
    assert (
        "PorticoSeal: Lovelace Tax (Portico e-signature seal) (seal (locks the document), PAdES B-B)" in text
    )
    assert text.count("trusted (Portico CA): yes") == 3
    assert "Result: every signature holds; sealed against changes." in text


@pytest.mark.parametrize(
    ("version", "expected"), [("sent", "as sent"), ("taxpayer", "after the taxpayer's signature")]
)
def test_earlier_versions_are_recognised(
    resources: Resources, settings: Settings, sealed: Seeded, version: str, expected: str
) -> None:
    with Session(resources.engine) as db:
        report = verification.verify_pdf(versions(resources, sealed.document_id)[version], [], db)
    assert report.record is not None and report.record.version == expected


def test_a_tampered_copy_fails_and_matches_nothing(
    resources: Resources, settings: Settings, sealed: Seeded
) -> None:
    pdf = tamper(versions(resources, sealed.document_id)["sealed"])
    with Session(resources.engine) as db:
        report = verification.verify_pdf(pdf, verification.trust_roots(settings), db)

    assert report.record is None and not report.all_signatures_hold
    assert not any(s.intact for s in report.signatures)
    text = verification.describe(report)
    assert "intact: NO" in text and "no match" in text and "NOT every signature holds" in text


@pytest.mark.parametrize(
    ("data", "problem"),
    [(b"just text", "not a PDF"), (b"%PDF-1.7\n1 0 obj <<", "cannot be read")],
    ids=["not a PDF", "damaged"],
)
def test_unreadable_files_get_a_report_not_a_crash(data: bytes, problem: str) -> None:
    report = verification.verify_pdf(data, [])
    assert report.problem is not None and problem in report.problem
    assert not report.all_signatures_hold and "Problem: " in verification.describe(report)


def test_another_firms_documents_are_not_confirmed(resources: Resources, sealed: Seeded) -> None:
    pdf = versions(resources, sealed.document_id)["sealed"]
    with Session(resources.engine) as db:
        assert verification.find_in_record(db, sha256_hex(pdf), sealed.firm_id) is not None
        assert verification.find_in_record(db, sha256_hex(pdf), sealed.firm_id + 99) is None


# --- the commands ---


@pytest.fixture
def run(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    return CliRunner()


def test_verify_pdf_command(run: CliRunner, resources: Resources, sealed: Seeded, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.pdf", tmp_path / "bad.pdf"
    good.write_bytes(versions(resources, sealed.document_id)["sealed"])
    bad.write_bytes(tamper(good.read_bytes()))

    passed = run.invoke(cli.app, ["verify-pdf", str(good)])
    failed = run.invoke(cli.app, ["verify-pdf", str(bad)])

    assert passed.exit_code == 0, passed.output
    assert "1. Taxpayer: Shelby O'Neil (approval, PAdES B-B)" in passed.output
    assert "matches 'Form 8879.pdf' (sealed)" in passed.output
    assert failed.exit_code == 1 and "intact: NO" in failed.output


def test_export_record_command(run: CliRunner, resources: Resources, sealed: Seeded, tmp_path: Path) -> None:
    target = tmp_path / "record.zip"
    done = run.invoke(cli.app, ["export-record", str(sealed.engagement_id), "--output", str(target)])

    assert done.exit_code == 0, done.output
    names = zipfile.ZipFile(target).namelist()
    assert "certificate-of-completion.pdf" in names and "e-signature-record.json" in names
    assert any(name.startswith("signed/") for name in names)
    missing = run.invoke(cli.app, ["export-record", "999"])
    assert missing.exit_code == 1 and "no engagement 999" in missing.output


# --- the preparer's endpoints ---


async def test_preparer_verifies_an_upload_and_downloads_the_record(
    api, resources: Resources, settings: Settings
) -> None:  # type: ignore[no-untyped-def]
    sealed = await asyncio.to_thread(seal_one, resources, settings.data_dir)
    email = make_preparer(resources, "ada@lovelace.test", "Lovelace Tax")
    other = make_preparer(resources, "bob@elsewhere.test", "Elsewhere Tax")
    pdf = versions(resources, sealed.document_id)["sealed"]
    async with api.client() as ada, api.client() as bob, api.client() as nobody:
        await login_preparer(ada, email)
        await login_preparer(bob, other)
        upload = {"file": ("Form 8879.pdf", pdf, "application/pdf")}

        checked = await ada.post("/api/verify", files=upload)
        assert checked.status_code == 200, checked.text
        body = checked.json()
        assert body["all_signatures_hold"] and body["sealed"]
        assert [s["kind"] for s in body["signatures"]] == ["approval", "approval", "seal"]
        assert body["record"]["version"] == "sealed"
        tampered = await ada.post("/api/verify", files={"file": ("x.pdf", tamper(pdf), "application/pdf")})
        assert tampered.json()["all_signatures_hold"] is False and tampered.json()["record"] is None
        assert (await bob.post("/api/verify", files=upload)).json()["record"] is None  # not Bob's firm
        assert (await nobody.post("/api/verify", files=upload)).status_code == 401

        record = await ada.get(f"/api/engagements/{sealed.engagement_id}/record")
        assert record.status_code == 200 and record.headers["content-type"] == "application/zip"
        assert "e-signature-record.json" in zipfile.ZipFile(io.BytesIO(record.content)).namelist()
        assert (await bob.get(f"/api/engagements/{sealed.engagement_id}/record")).status_code == 404
