"""A joint return: two incremental signatures, then the seal with the certificate of completion.

Checked by pyHanko (Portico's own reading) and cross-checked by poppler's pdfsig, an independent validator.
"""

from __future__ import annotations

import io
import itertools
import subprocess
from pathlib import Path

import pdfs
import pytest
from journey import signature_png
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from signing_fixtures import dev_signer, seed_joint_engagement, sign_and_seal
from sqlmodel import Session, select
from temporalio.testing import ActivityEnvironment

from activities.types import SealDocuments
from core.context import Resources
from core.models import Document, Engagement, Signature
from esign import pdfsign, seal, stamp
from esign.pdfsign import VisibleSignature
from esign.stamp import StampText


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[signers.SimpleSigner, Path]:
    return dev_signer(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def versions(keys: tuple[signers.SimpleSigner, Path]) -> dict[str, bytes]:
    """Form 8879 as sent, after the taxpayer, after the spouse, and sealed."""
    signer, _ = keys
    sent = pdfs.make_form_8879(pages=2, with_fields=True)
    taxpayer = _sign(sent, signer, "Taxpayer", "Shelby O'Neil")
    spouse = _sign(taxpayer, signer, "Spouse", "Jordan O'Neil")
    certificate = pdfs.make_pdf(1, "Certificate of Completion - sample")
    sealed = seal.seal_pdf(spouse, signer, certificate_page=certificate, sealer_name="Lovelace Tax (Portico)")
    return {"sent": sent, "taxpayer": taxpayer, "spouse": spouse, "sealed": sealed}


def _sign(pdf: bytes, signer: signers.SimpleSigner, field: str, name: str) -> bytes:
    visible = VisibleSignature(signature_png(), StampText(name, f"{field} - signed electronically"))
    return pdfsign.sign_pdf(
        pdf, signer, field_name=field, signer_name=name, visible=visible, reserve_certificate_page=True
    )


def tamper(pdf: bytes) -> bytes:
    """One changed byte in the form's title, inside every signature's byte range."""
    at = pdf.index(b"Form 8879") + len("Form 887")
    return pdf[:at] + b"8" + pdf[at + 1 :]


# --- pyHanko ---


def test_two_incremental_signatures_and_the_seal_all_hold(
    versions: dict[str, bytes], keys: tuple[signers.SimpleSigner, Path]
) -> None:
    _, ca = keys
    taxpayer, spouse, sealing = pdfsign.read_signatures(versions["sealed"], [ca])

    assert (taxpayer.field_name, spouse.field_name, sealing.field_name) == (
        "Taxpayer",
        "Spouse",
        "PorticoSeal",
    )
    for report in (taxpayer, spouse, sealing):
        assert report.holds, report
    # The signers' signatures see only later signatures (form filling), never a page added after them.
    assert taxpayer.coverage == spouse.coverage == "ENTIRE_REVISION"
    assert taxpayer.modification_level == spouse.modification_level == "FORM_FILLING"
    assert sealing.coverage == "ENTIRE_FILE" and sealing.modification_level == "NONE"
    assert sealing.locks_document and not (taxpayer.locks_document or spouse.locks_document)


def test_each_version_is_an_incremental_update_of_the_last(versions: dict[str, bytes]) -> None:
    order = ["sent", "taxpayer", "spouse", "sealed"]
    for earlier, later in itertools.pairwise(order):
        assert versions[later].startswith(versions[earlier]), f"{later} rewrote {earlier}"


def test_the_certificate_fills_the_page_reserved_by_the_first_signature(versions: dict[str, bytes]) -> None:
    assert pdfs.page_count(versions["sent"]) == 2
    assert pdfs.page_count(versions["taxpayer"]) == pdfs.page_count(versions["sealed"]) == 3
    assert "Portico completes this page" in pdfs.page_text(versions["spouse"], 3)
    sealed_page = pdfs.page_text(versions["sealed"], 3)
    assert "Certificate of Completion - sample" in sealed_page
    assert "Portico completes this page" not in sealed_page  # the seal's appearance covers the placeholder
    assert seal.certificate_page_size(versions["sealed"]) == (612.0, 792.0)


def test_a_sealed_document_refuses_more_signatures_and_a_second_seal(
    versions: dict[str, bytes], keys: tuple[signers.SimpleSigner, Path]
) -> None:
    signer, _ = keys
    assert seal.is_sealed(versions["sealed"]) and not seal.is_sealed(versions["spouse"])
    with pytest.raises(seal.AlreadySealed):
        seal.seal_pdf(versions["sealed"], signer, certificate_page=pdfs.make_pdf(1), sealer_name="again")
    with pytest.raises(ValueError, match="sealed against changes"):
        pdfsign.sign_pdf(versions["sealed"], signer, field_name="Preparer", signer_name="Ada")
    with pytest.raises(pdfsign.PdfRejected, match="sealed against changes"):
        pdfsign.check_pdf_for_sending(versions["sealed"], max_bytes=10_000_000)


def test_a_change_after_the_seal_breaks_it(
    versions: dict[str, bytes], keys: tuple[signers.SimpleSigner, Path]
) -> None:
    _, ca = keys
    writer = IncrementalPdfFileWriter(io.BytesIO(versions["sealed"]))
    writer.root["/Lang"] = generic.TextStringObject("en-US")  # any change at all in a later revision
    writer.update_root()
    changed = io.BytesIO()
    writer.write(changed)

    *_, sealing = pdfsign.read_signatures(changed.getvalue(), [ca])
    assert sealing.intact and sealing.docmdp_ok is False and not sealing.holds


def test_a_tampered_byte_breaks_every_signature(
    versions: dict[str, bytes], keys: tuple[signers.SimpleSigner, Path]
) -> None:
    _, ca = keys
    reports = pdfsign.read_signatures(tamper(versions["sealed"]), [ca])
    assert len(reports) == 3 and not any(r.intact for r in reports)


def test_documents_signed_before_pages_were_reserved_get_an_invisible_seal(
    keys: tuple[signers.SimpleSigner, Path],
) -> None:
    signer, ca = keys
    legacy = pdfsign.sign_pdf(pdfs.make_pdf(1), signer, field_name="Taxpayer", signer_name="Pat")
    sealed = seal.seal_pdf(legacy, signer, certificate_page=pdfs.make_pdf(1), sealer_name="Portico")

    assert pdfs.page_count(sealed) == 1  # no page added after the signature
    assert [(r.field_name, r.holds, r.locks_document) for r in pdfsign.read_signatures(sealed, [ca])] == [
        ("Taxpayer", True, False),
        ("PorticoSeal", True, True),
    ]


# --- poppler's pdfsig, an independent validator ---


@pytest.fixture(scope="module")
def pdfsig() -> str:
    return pdfs.poppler_tool("pdfsig")


def run_pdfsig(pdfsig: str, pdf: bytes, folder: Path) -> str:
    path = folder / "document.pdf"
    path.write_bytes(pdf)
    # -nocert: certificate trust is Portico's CA, checked by pyHanko above; pdfsig checks the bytes.
    done = subprocess.run(
        [pdfsig, "-nocert", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    return done.stdout


def test_pdfsig_finds_every_signature_valid_and_the_file_wholly_sealed(
    pdfsig: str, versions: dict[str, bytes], tmp_path: Path
) -> None:
    output = run_pdfsig(pdfsig, versions["sealed"], tmp_path)
    assert output.count("Signature Validation: Signature is Valid.") == 3, output
    for field in ("Taxpayer", "Spouse", "PorticoSeal"):
        assert f"Signature Field Name: {field}" in output
    seal_part = output.split("Signature #3:")[1]
    assert "Total document signed" in seal_part and "Not total" not in seal_part  # nothing after the seal
    assert "ETSI.CAdES.detached" in output


def test_pdfsig_reports_a_tampered_copy_as_modified(
    pdfsig: str, versions: dict[str, bytes], tmp_path: Path
) -> None:
    output = run_pdfsig(pdfsig, tamper(versions["sealed"]), tmp_path)
    assert output.count("Digest Mismatch") == 3, output
    assert "Signature is Valid" not in output


# --- the seal_documents activity ---


def test_sealing_is_idempotent_and_keeps_every_version(resources: Resources, tmp_path: Path) -> None:
    signer, ca = dev_signer(tmp_path / "keys")
    seeded = seed_joint_engagement(resources)
    activities = sign_and_seal(resources, signer, seeded)
    with Session(resources.engine) as db:
        doc = db.get(Document, seeded.document_id)
        engagement = db.get(Engagement, seeded.engagement_id)
        assert doc is not None and engagement is not None
        sealed_key, sealed_sha, certificate_key = (
            doc.current_key,
            doc.current_sha256,
            engagement.certificate_key,
        )
        assert doc.sealed_at is not None and certificate_key is not None

    again = ActivityEnvironment().run(
        activities.seal_documents, SealDocuments(seeded.engagement_id, seeded.started)
    )

    assert again.document_ids == [seeded.document_id]
    with Session(resources.engine) as db:
        doc = db.get(Document, seeded.document_id)
        engagement = db.get(Engagement, seeded.engagement_id)
        assert doc is not None and engagement is not None
        assert (doc.current_key, doc.current_sha256) == (sealed_key, sealed_sha)  # not sealed twice
        assert engagement.certificate_key == certificate_key
        versions = [s.version_key for s in db.exec(select(Signature).where(Signature.document_id == doc.id))]
        kept = [doc.storage_key, *versions, doc.current_key]
    assert len(set(kept)) == 4 and all(resources.store.exists(key or "") for key in kept)
    sealed = resources.store.get(sealed_key)
    assert [r.field_name for r in pdfsign.read_signatures(sealed, [ca]) if r.holds] == [
        "Taxpayer",
        "Spouse",
        stamp.SEAL_FIELD,
    ]
