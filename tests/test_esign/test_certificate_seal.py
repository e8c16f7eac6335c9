"""The certificate of completion on its own is sealed like the documents, so a copy sent alone is
tamper-evident; and the real signing and sealing activities, given a time-stamp authority, leave B-LTA files.
"""

from __future__ import annotations

import io
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pdfs
import pytest
from pki_server import TestPki
from signing_fixtures import Seeded, dev_signer, seed_joint_engagement, sign_and_seal
from sqlmodel import Session, select
from temporalio.testing import ActivityEnvironment
from typer.testing import CliRunner

from activities import signing
from activities.engagement import EngagementActivities
from activities.types import SealDocuments
from core.config import Settings
from core.context import Resources
from core.crypto import sha256_hex
from core.models import Document, Engagement, Role, Signature
from esign import pdfsign, verification
from esign.records import export_record
from portico import cli


def downloaded_certificate(resources: Resources, engagement_id: int) -> bytes:
    """The certificate of completion as the preparer downloads it, from the e-signature record."""
    with Session(resources.engine) as db:
        archive = zipfile.ZipFile(io.BytesIO(export_record(db, resources.store, engagement_id)))
    return archive.read("certificate-of-completion.pdf")


def pdfsig(pdf: bytes, folder: Path) -> str:
    path = folder / "checked.pdf"
    path.write_bytes(pdf)
    # -nocert: trust in Portico's CA is pyHanko's check; pdfsig checks the signed bytes independently.
    done = subprocess.run(
        [pdfs.poppler_tool("pdfsig"), "-nocert", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return done.stdout


def change_one_byte(pdf: bytes) -> bytes:
    """One letter of the certificate's producer entry, inside the seal's signed range, changed."""
    at = pdf.index(b"/Producer (") + len(b"/Producer (")
    return pdf[:at] + bytes([pdf[at] ^ 0x01]) + pdf[at + 1 :]


@pytest.fixture
def sealed(resources: Resources, settings: Settings) -> tuple[Seeded, EngagementActivities]:
    signer, _ = dev_signer(settings.data_dir)  # the settings' own data folder: verify trusts this dev CA
    seeded = seed_joint_engagement(resources)
    return seeded, sign_and_seal(resources, signer, seeded)


def test_the_downloaded_certificate_is_sealed_and_tamper_evident(
    resources: Resources, settings: Settings, sealed: tuple[Seeded, EngagementActivities], tmp_path: Path
) -> None:
    seeded, _ = sealed
    certificate = downloaded_certificate(resources, seeded.engagement_id)
    roots = verification.trust_roots(settings)

    [seal] = pdfsign.read_signatures(certificate, roots)
    assert seal.holds and seal.locks_document and seal.coverage == "ENTIRE_FILE"
    assert seal.signer_name == "Lovelace Tax (Portico e-signature seal)"
    with Session(resources.engine) as db:
        report = verification.verify_pdf(certificate, roots, db)
    assert report.sealed and report.all_signatures_hold
    assert "matches the certificate of completion (as issued)" in verification.describe(report)
    checked = pdfsig(certificate, tmp_path)
    assert "Signature Validation: Signature is Valid." in checked and "Total document signed" in checked

    tampered = change_one_byte(certificate)
    [broken] = pdfsign.read_signatures(tampered, roots)
    assert not broken.intact and not broken.holds
    assert "Signature is Valid." not in pdfsig(tampered, tmp_path)
    with Session(resources.engine) as db:
        assert verification.verify_pdf(tampered, roots, db).record is None


def test_sealing_again_keeps_the_one_sealed_certificate(
    resources: Resources, sealed: tuple[Seeded, EngagementActivities]
) -> None:
    seeded, activities = sealed
    with Session(resources.engine) as db:
        engagement = db.get(Engagement, seeded.engagement_id)
        assert engagement is not None and engagement.certificate_key and engagement.certificate_sha256
        key, digest = engagement.certificate_key, engagement.certificate_sha256
    first = resources.store.get(key)

    ActivityEnvironment().run(activities.seal_documents, SealDocuments(seeded.engagement_id, seeded.started))

    with Session(resources.engine) as db:
        engagement = db.get(Engagement, seeded.engagement_id)
        assert engagement is not None
        assert (engagement.certificate_key, engagement.certificate_sha256) == (key, digest)
    assert downloaded_certificate(resources, seeded.engagement_id) == first
    assert sha256_hex(first) == digest


# --- the activities with a time-stamp authority and the test PKI ------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestPki]:
    with TestPki(tmp_path_factory.mktemp("pki")) as served:
        yield served


def test_with_a_time_stamp_authority_the_activities_leave_b_lta_files(
    pki: TestPki, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    long_term_settings = settings.model_copy(
        update={
            "tsa_url": pki.tsa_url,
            "signing_chain": [pki.intermediate_cert, pki.root_cert],
            "trust_roots": [pki.root_cert],
        }
    )
    resources = Resources.from_settings(long_term_settings)
    signer = pdfsign.load_signer(pki.signer_key, pki.signer_cert, [pki.intermediate_cert, pki.root_cert])
    seeded = seed_joint_engagement(resources)
    sign_and_seal(resources, signer, seeded)
    with Session(resources.engine) as db:
        doc = db.get(Document, seeded.document_id)
        assert doc is not None
        sealed_return = resources.store.get(doc.current_key)
        first = db.exec(
            select(Signature).where(Signature.document_id == doc.id, Signature.role == Role.TAXPAYER)
        ).one()
        after_taxpayer = resources.store.get(first.version_key or "")
    # Each signature embeds its revocation information as it is made: B-LT before any seal.
    [taxpayer] = verification.verify_pdf(after_taxpayer, [pki.root_cert]).signatures
    assert taxpayer.level == "PAdES B-LT" and taxpayer.holds
    certificate = downloaded_certificate(resources, seeded.engagement_id)
    resources.engine.dispose()

    monkeypatch.setattr(cli, "get_settings", lambda: long_term_settings)
    outputs = []
    for name, pdf in (("form-8879.pdf", sealed_return), ("certificate.pdf", certificate)):
        (tmp_path / name).write_bytes(pdf)
        done = CliRunner().invoke(cli.app, ["verify-pdf", str(tmp_path / name)])
        assert done.exit_code == 0, done.output
        outputs.append(done.output)
    form, alone = outputs
    for line in (
        "1. Taxpayer: Shelby O'Neil (approval, PAdES B-LTA)",
        "2. Spouse: Jordan O'Neil (approval, PAdES B-LTA)",
    ):
        assert line in form, form
    assert (
        "3. PorticoSeal: Lovelace Tax (Portico e-signature seal) (seal (locks the document), PAdES B-LTA)"
        in form
    )
    assert "matches 'Form 8879.pdf' (sealed)" in form
    assert (
        "1. PorticoSeal: Lovelace Tax (Portico e-signature seal) (seal (locks the document), PAdES B-LTA)"
        in alone
    )
    assert "matches the certificate of completion (as issued)" in alone


def test_a_ca_that_does_not_answer_leaves_a_signature_at_b_t_instead_of_failing_it(
    pki: TestPki, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    long_term_settings = settings.model_copy(update={"tsa_url": pki.tsa_url})
    signer = pdfsign.load_signer(pki.signer_key, pki.signer_cert, [pki.intermediate_cert, pki.root_cert])
    timestamper = pdfsign.timestamper_for(pki.tsa_url)
    signed = pdfsign.sign_pdf(
        pdfs.make_pdf(), signer, field_name="Taxpayer", signer_name="Pat", timestamper=timestamper
    )
    pki.down = True
    try:
        kept = signing.with_validation_info(long_term_settings, signer, signed)
    finally:
        pki.down = False
    assert kept == signed  # the client's signature stands; the seal will insist on the information
    assert (
        "signature kept at PAdES B-T" in caplog.text and f"{pki.url}/portico-test/ocsp/interm" in caplog.text
    )
    with_info = signing.with_validation_info(long_term_settings, signer, signed)
    assert with_info.startswith(signed) and b"/DSS" in with_info[len(signed) :]
