"""Long-term validity: with a time-stamp authority, sealed returns reach PAdES B-LTA and still validate after
Portico's signing certificate expires.

Against a real test PKI served on 127.0.0.1 (certomancer: a root and an issuing CA with OCSP and CRLs, and
an RFC 3161 time-stamp authority), cross-checked by poppler's pdfsig.
"""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pdfs
import pytest
from journey import signature_png
from pki_server import TestPki
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend

from esign import long_term, pdfsign, seal, verification
from esign.pdfsign import VisibleSignature
from esign.stamp import StampText


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestPki]:
    with TestPki(tmp_path_factory.mktemp("pki")) as served:
        yield served


@pytest.fixture(scope="module")
def signer(pki: TestPki) -> signers.SimpleSigner:
    return pdfsign.load_signer(pki.signer_key, pki.signer_cert, [pki.intermediate_cert, pki.root_cert])


def context_for(signer: signers.SimpleSigner, timeout: float = 5) -> ValidationContext:
    return long_term.validation_context(list(signer.cert_registry), timeout)


@pytest.fixture(scope="module")
def versions(pki: TestPki, signer: signers.SimpleSigner) -> dict[str, bytes]:
    """Form 8879 signed by both spouses (B-T, as the signing activity does), then sealed with B-LTA."""
    timestamper = pdfsign.timestamper_for(pki.tsa_url)
    signed = pdfs.make_form_8879(pages=2, with_fields=True)
    for field, name in (("Taxpayer", "Shelby O'Neil"), ("Spouse", "Jordan O'Neil")):
        visible = VisibleSignature(signature_png(), StampText(name, f"{field} - signed electronically"))
        signed = pdfsign.sign_pdf(
            signed, signer, field_name=field, signer_name=name, visible=visible,
            timestamper=timestamper, reserve_certificate_page=True,
        )  # fmt: skip
    sealed = seal.seal_pdf(
        signed,
        signer,
        certificate_page=pdfs.make_pdf(1, "Certificate of Completion - sample"),
        sealer_name="Lovelace Tax (Portico e-signature seal)",
        timestamper=timestamper,
        long_term=context_for(signer),
    )
    return {"signed": signed, "sealed": sealed}


def test_a_sealed_return_reaches_b_lta_and_verify_pdf_says_so(
    pki: TestPki, versions: dict[str, bytes]
) -> None:
    asked = len(pki.requests)
    report = verification.verify_pdf(versions["sealed"], [pki.root_cert])

    assert len(pki.requests) == asked  # from the file's own material: verify-pdf never calls the CA
    assert [s.field_name for s in report.signatures] == ["Taxpayer", "Spouse", "PorticoSeal"]
    assert all(s.level == "PAdES B-LTA" and s.holds for s in report.signatures), report.signatures
    assert report.sealed and report.all_signatures_hold
    text = verification.describe(report, "8879.pdf")
    assert "1. Taxpayer: Shelby O'Neil (approval, PAdES B-LTA)" in text
    assert "(Portico e-signature seal) (seal (locks the document), PAdES B-LTA)" in text
    # Revocation information came from the CA's own OCSP responder and CRL, while the certificate was valid.
    reader = PdfFileReader(io.BytesIO(versions["sealed"]))
    dss = reader.root["/DSS"]
    assert len(dss["/OCSPs"]) >= 1 and len(dss["/CRLs"]) >= 1
    assert [ts.field_name.startswith("Timestamp") for ts in reader.embedded_timestamp_signatures] == [True]


def test_before_the_seal_the_signatures_are_b_t(pki: TestPki, versions: dict[str, bytes]) -> None:
    report = verification.verify_pdf(versions["signed"], [pki.root_cert])
    assert [s.level for s in report.signatures] == ["PAdES B-T", "PAdES B-T"]


def test_pdfsig_accepts_the_signatures_and_reads_the_document_time_stamp(
    versions: dict[str, bytes], tmp_path: Path
) -> None:
    path = tmp_path / "sealed.pdf"
    path.write_bytes(versions["sealed"])
    output = subprocess.run(
        [pdfs.poppler_tool("pdfsig"), "-nocert", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    ).stdout  # fmt: skip
    blocks = {block.split("\n", 1)[0]: block for block in output.split("  - Signature Field Name: ")[1:]}
    for field in ("Taxpayer", "Spouse", "PorticoSeal"):
        assert "Signature Validation: Signature is Valid." in blocks[field], output
    [stamp_block] = [block for name, block in blocks.items() if name.startswith("Timestamp")]
    # poppler 22 reads the RFC 3161 document time-stamp but does not validate that type of signature.
    assert "Signer Certificate Common Name: Test Time-Stamp Authority" in stamp_block


def test_it_still_validates_after_the_signing_certificate_expired(
    pki: TestPki, versions: dict[str, bytes]
) -> None:
    later = pki.signer_expires + dt.timedelta(days=400)
    root = load_cert_from_pemder(str(pki.root_cert))
    # Years later a validator asks the time-stamp authority's CA about the newest document time-stamp
    # (what LTA renewals keep fresh); the signer's own status comes only from the file.
    pki.animator.fixed_time = later
    try:
        fetcher = RequestsFetcherBackend(per_request_timeout=5)
        sealed = long_term.assess(versions["sealed"], [root], at=later, fetcher=fetcher)
        signed_only = long_term.assess(versions["signed"], [root], at=later, fetcher=fetcher)
    finally:
        pki.animator.fixed_time = None
    assert all(s.validates and s.archived_at is not None for s in sealed), sealed
    assert not any(s.validates for s in signed_only)  # B-T alone: the expired certificate fails


def test_without_a_time_stamp_authority_nothing_changes(
    pki: TestPki, signer: signers.SimpleSigner, versions: dict[str, bytes]
) -> None:
    plain = pdfsign.sign_pdf(
        pdfs.make_pdf(), signer, field_name="Taxpayer", signer_name="Pat", reserve_certificate_page=True
    )
    requests = len(pki.requests)
    sealed = seal.seal_pdf(
        plain, signer, certificate_page=pdfs.make_pdf(1, "Certificate"), sealer_name="Firm"
    )

    report = verification.verify_pdf(sealed, [pki.root_cert])
    assert [s.level for s in report.signatures] == ["PAdES B-B", "PAdES B-B"]
    assert b"/DSS" not in sealed and len(pki.requests) == requests  # no call to the CA
    with pytest.raises(ValueError, match="time-stamp authority"):
        seal.seal_pdf(plain, signer, certificate_page=b"", sealer_name="Firm", long_term=context_for(signer))


def test_an_unreachable_ca_fails_the_seal_with_a_clear_error(
    pki: TestPki, signer: signers.SimpleSigner, versions: dict[str, bytes]
) -> None:
    timestamper = pdfsign.timestamper_for(pki.tsa_url)
    pki.down = True
    try:
        with pytest.raises(long_term.RevocationUnavailable) as refused:
            seal.seal_pdf(
                versions["signed"], signer, certificate_page=b"", sealer_name="Firm",
                timestamper=timestamper, long_term=context_for(signer),
            )  # fmt: skip
    finally:
        pki.down = False
    message = str(refused.value)
    assert "Portico Test Firm e-signature seal" in message  # whose revocation information
    assert f"{pki.url}/portico-test/ocsp/interm" in message  # and where it was asked for


def test_a_ca_that_hangs_cannot_hold_the_seal(
    pki: TestPki, signer: signers.SimpleSigner, versions: dict[str, bytes]
) -> None:
    timestamper = pdfsign.timestamper_for(pki.tsa_url)
    pki.stall = 60
    started = time.monotonic()
    try:
        with pytest.raises(long_term.RevocationUnavailable, match="Cannot get revocation information"):
            seal.seal_pdf(
                versions["signed"], signer, certificate_page=b"", sealer_name="Firm",
                timestamper=timestamper, long_term=context_for(signer, timeout=0.5),
            )  # fmt: skip
    finally:
        pki.stall = 0
    assert time.monotonic() - started < 10
