"""Tests for esign.pdfsign: dev certificates, key loading, signing, pre-send checks, validation."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pdfs
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.sign import signers

from esign.pdfsign import (
    DevCertificates,
    PdfRejected,
    SigningSetupError,
    check_pdf_for_sending,
    ensure_dev_certificates,
    load_signer,
    read_signatures,
    sign_pdf,
)
from services.upload_checks import pdf_problem

MAX_BYTES = 100_000


@pytest.fixture(scope="module")
def dev_certs(tmp_path_factory: pytest.TempPathFactory) -> DevCertificates:
    paths, _ = ensure_dev_certificates(tmp_path_factory.mktemp("data"))
    return paths


@pytest.fixture(scope="module")
def signer(dev_certs: DevCertificates) -> signers.SimpleSigner:
    return load_signer(dev_certs.signing_key, dev_certs.signing_cert, chain=[dev_certs.ca_cert])


@pytest.fixture(scope="module")
def joint_return(signer: signers.SimpleSigner) -> bytes:
    """Form 8879 signed by the taxpayer, then incrementally by the spouse."""
    taxpayer_signed = sign_pdf(pdfs.make_pdf(pages=2), signer, field_name="Taxpayer", signer_name="Pat Doe")
    return sign_pdf(taxpayer_signed, signer, field_name="Spouse", signer_name="Sam Doe", location="Online")


def tamper(pdf: bytes) -> bytes:
    """Change one byte of the document title, which lies inside both signatures' byte ranges."""
    at = pdf.index(b"Form 8879") + len("Form 887")
    return pdf[:at] + b"8" + pdf[at + 1 :]


# --- development certificates ---


def test_dev_certificates_are_created_once(tmp_path: Path) -> None:
    paths, created_now = ensure_dev_certificates(tmp_path)
    before = {path: path.read_bytes() for path in (paths.ca_cert, paths.signing_key, paths.signing_cert)}

    again, created_again = ensure_dev_certificates(tmp_path)

    assert created_now and not created_again
    assert again == paths
    assert {path: path.read_bytes() for path in before} == before
    assert all(path.parent == tmp_path / "signing" for path in before)
    assert stat.S_IMODE(paths.signing_key.stat().st_mode) == 0o600


def test_dev_certificates_form_a_ca_chain_for_document_signing(dev_certs: DevCertificates) -> None:
    ca = x509.load_pem_x509_certificate(dev_certs.ca_cert.read_bytes())
    leaf = x509.load_pem_x509_certificate(dev_certs.signing_cert.read_bytes())

    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.subject == ca.issuer == leaf.issuer
    assert "Portico Development CA" in ca.subject.rfc4514_string()
    leaf.verify_directly_issued_by(ca)
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert 2 * 365 < lifetime.days <= 3 * 366


def test_regenerates_an_incomplete_set(tmp_path: Path) -> None:
    paths, _ = ensure_dev_certificates(tmp_path)
    paths.signing_cert.unlink()  # as after a crash midway through the first start

    _, created_now = ensure_dev_certificates(tmp_path)

    assert created_now
    load_signer(paths.signing_key, paths.signing_cert, chain=[paths.ca_cert])


# --- loading the signer ---


def _encrypted_copy_of_key(dev_certs: DevCertificates, target: Path, passphrase: bytes) -> Path:
    key = serialization.load_pem_private_key(dev_certs.signing_key.read_bytes(), password=None)
    target.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
    )
    return target


def test_loads_an_encrypted_key_with_its_passphrase(dev_certs: DevCertificates, tmp_path: Path) -> None:
    key = _encrypted_copy_of_key(dev_certs, tmp_path / "key.pem", b"correct horse")
    loaded = load_signer(key, dev_certs.signing_cert, passphrase=b"correct horse")
    assert loaded.signing_cert is not None


def test_wrong_passphrase_is_a_setup_error(dev_certs: DevCertificates, tmp_path: Path) -> None:
    key = _encrypted_copy_of_key(dev_certs, tmp_path / "key.pem", b"correct horse")
    with pytest.raises(SigningSetupError, match=r"key\.pem.*passphrase"):
        load_signer(key, dev_certs.signing_cert, passphrase=b"battery staple")


def test_corrupt_key_file_is_a_setup_error(dev_certs: DevCertificates, tmp_path: Path) -> None:
    key = tmp_path / "corrupt.pem"
    key.write_bytes(dev_certs.signing_key.read_bytes()[:200])
    with pytest.raises(SigningSetupError, match=r"corrupt\.pem"):
        load_signer(key, dev_certs.signing_cert)


def test_corrupt_certificate_is_a_setup_error(dev_certs: DevCertificates, tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not a certificate")
    with pytest.raises(SigningSetupError, match=r"cert\.pem"):
        load_signer(dev_certs.signing_key, cert)


@pytest.mark.parametrize("missing", ["key", "cert", "chain"])
def test_missing_file_is_a_setup_error(dev_certs: DevCertificates, tmp_path: Path, missing: str) -> None:
    absent = tmp_path / "absent.pem"
    key = absent if missing == "key" else dev_certs.signing_key
    cert = absent if missing == "cert" else dev_certs.signing_cert
    chain = [absent] if missing == "chain" else []
    with pytest.raises(SigningSetupError, match=r"not found: .*absent\.pem"):
        load_signer(key, cert, chain=chain)


def test_key_not_matching_certificate_is_a_setup_error(dev_certs: DevCertificates, tmp_path: Path) -> None:
    other_key = tmp_path / "other.pem"
    other_key.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(SigningSetupError, match="does not belong"):
        load_signer(other_key, dev_certs.signing_cert)


def _pkcs12_bundle(dev_certs: DevCertificates, target: Path, passphrase: bytes) -> Path:
    key = serialization.load_pem_private_key(dev_certs.signing_key.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    cert = x509.load_pem_x509_certificate(dev_certs.signing_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(dev_certs.ca_cert.read_bytes())
    target.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"portico", key, cert, [ca], serialization.BestAvailableEncryption(passphrase)
        )
    )
    return target


def test_loads_pkcs12_and_signs(dev_certs: DevCertificates, tmp_path: Path) -> None:
    bundle = _pkcs12_bundle(dev_certs, tmp_path / "signer.p12", b"pfx-pass")
    loaded = load_signer(bundle, None, passphrase=b"pfx-pass")

    signed = sign_pdf(pdfs.make_pdf(), loaded, field_name="Taxpayer", signer_name="Pat Doe")

    [report] = read_signatures(signed, trust_roots=[dev_certs.ca_cert])
    assert report.intact and report.valid and report.trusted


def test_pkcs12_wrong_passphrase_is_a_setup_error(dev_certs: DevCertificates, tmp_path: Path) -> None:
    bundle = _pkcs12_bundle(dev_certs, tmp_path / "signer.pfx", b"pfx-pass")
    with pytest.raises(SigningSetupError, match=r"signer\.pfx"):
        load_signer(bundle, None, passphrase=b"nope")


def test_pem_key_without_certificate_is_a_setup_error(dev_certs: DevCertificates) -> None:
    with pytest.raises(SigningSetupError, match="certificate"):
        load_signer(dev_certs.signing_key, None)


# --- signing and reading signatures ---


def test_joint_return_carries_two_valid_trusted_signatures(
    joint_return: bytes, dev_certs: DevCertificates
) -> None:
    taxpayer, spouse = read_signatures(joint_return, trust_roots=[dev_certs.ca_cert])

    assert (taxpayer.field_name, taxpayer.signer_name) == ("Taxpayer", "Pat Doe")
    assert (spouse.field_name, spouse.signer_name) == ("Spouse", "Sam Doe")
    for report in (taxpayer, spouse):
        assert report.intact and report.valid and report.trusted
        assert report.signing_time is not None
    # The spouse's incremental update must not count against the taxpayer's signature.
    assert taxpayer.coverage == "ENTIRE_REVISION"
    assert taxpayer.modification_level in {"NONE", "FORM_FILLING"}
    assert spouse.coverage == "ENTIRE_FILE"
    assert spouse.modification_level == "NONE"


def test_signing_keeps_the_pages(joint_return: bytes) -> None:
    assert pdfs.page_count(joint_return) == 2
    assert check_pdf_for_sending(joint_return, max_bytes=MAX_BYTES) == 2


def test_signatures_are_untrusted_without_the_root(joint_return: bytes) -> None:
    reports = read_signatures(joint_return)
    assert [(r.intact, r.valid, r.trusted) for r in reports] == [(True, True, False)] * 2


def test_tampered_byte_breaks_integrity(joint_return: bytes, dev_certs: DevCertificates) -> None:
    reports = read_signatures(tamper(joint_return), trust_roots=[dev_certs.ca_cert])
    assert len(reports) == 2
    assert not any(report.intact for report in reports)


def test_signing_the_same_field_twice_is_refused(joint_return: bytes, signer: signers.SimpleSigner) -> None:
    with pytest.raises(ValueError, match="already signed"):
        sign_pdf(joint_return, signer, field_name="Spouse", signer_name="Sam Doe")


# --- checks before sending ---


def test_accepts_a_good_pdf_and_counts_its_pages() -> None:
    assert check_pdf_for_sending(pdfs.make_pdf(pages=3), max_bytes=MAX_BYTES) == 3


REJECTED: dict[str, tuple[Callable[[signers.SimpleSigner], bytes], str]] = {
    "random bytes": (lambda _: os.urandom(4096), "not a PDF"),
    "empty file": (lambda _: b"", "not a PDF"),
    "renamed PNG": (lambda _: pdfs.make_png(), "PNG image"),
    "renamed EXE": (lambda _: pdfs.make_exe(), "Windows program"),
    "truncated PDF": (lambda _: pdfs.make_truncated_pdf(), "damaged"),
    "encrypted PDF": (lambda _: pdfs.make_encrypted_pdf(), "encrypted"),
    "certified no-changes PDF": (pdfs.make_certified_pdf, "no changes allowed"),
    "oversize PDF": (lambda _: pdfs.make_padded_pdf(MAX_BYTES), "largest file"),
}


@pytest.mark.parametrize("case", REJECTED)
def test_rejects_files_that_cannot_be_sent(case: str, signer: signers.SimpleSigner) -> None:
    build, reason_fragment = REJECTED[case]
    with pytest.raises(PdfRejected) as rejected:
        check_pdf_for_sending(build(signer), max_bytes=MAX_BYTES)
    assert reason_fragment in rejected.value.reason


ACTIVE_CONTENT: dict[str, tuple[Callable[[], bytes], str]] = {
    "indirect /S launch action": (pdfs.make_indirect_launch_pdf, "contains scripts"),
    "XFA form": (pdfs.make_xfa_pdf, "XFA (dynamic) form"),
    "embedded file": (pdfs.make_embedded_file_pdf, "files attached inside it"),
}


@pytest.mark.parametrize("case", ACTIVE_CONTENT)
def test_item13_indirect_actions_xfa_and_embedded_files_are_refused_before_sending(case: str) -> None:
    """Security round two, item 13: the checks before sending and both upload routes refuse them."""
    build, reason_fragment = ACTIVE_CONTENT[case]
    pdf = build()
    assert pdfs.page_count(pdf) == 1  # otherwise a good PDF: refused for what it carries
    with pytest.raises(PdfRejected) as rejected:
        check_pdf_for_sending(pdf, max_bytes=MAX_BYTES)
    assert reason_fragment in rejected.value.reason
    problem = pdf_problem(pdf)
    assert problem is not None and reason_fragment in problem
    assert pdf_problem(pdfs.make_pdf(pages=1)) is None


def test_rejects_a_pdf_without_pages() -> None:
    with pytest.raises(PdfRejected, match="no pages"):
        check_pdf_for_sending(pdfs.make_pageless_pdf(), max_bytes=MAX_BYTES)


def test_oversize_pdf_is_otherwise_valid() -> None:
    """Guards the oversize case above: it is rejected for its size, not for being broken."""
    big = pdfs.make_padded_pdf(MAX_BYTES)
    assert check_pdf_for_sending(big, max_bytes=len(big)) == 1


# --- cross-check with poppler ---


@pytest.fixture
def pdfsig() -> str:
    found = shutil.which("pdfsig") or ("/usr/bin/pdfsig" if Path("/usr/bin/pdfsig").exists() else None)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pdfsig is missing on CI: install poppler-utils")
        pytest.skip("pdfsig (poppler-utils) not installed")
    return found


def run_pdfsig(pdfsig: str, pdf: bytes, folder: Path) -> str:
    path = folder / "signed.pdf"
    path.write_bytes(pdf)
    completed = subprocess.run([pdfsig, str(path)], capture_output=True, text=True, timeout=60, check=False)
    return completed.stdout


def test_poppler_accepts_both_signatures(pdfsig: str, joint_return: bytes, tmp_path: Path) -> None:
    output = run_pdfsig(pdfsig, joint_return, tmp_path)
    assert output.count("Signature is Valid") == 2, output
    assert "Signature Field Name: Taxpayer" in output and "Signature Field Name: Spouse" in output


def test_poppler_rejects_a_tampered_copy(pdfsig: str, joint_return: bytes, tmp_path: Path) -> None:
    output = run_pdfsig(pdfsig, tamper(joint_return), tmp_path)
    assert "Signature #2" in output, output
    assert "Signature is Valid" not in output, output
