"""The signer keeps the private key it parsed at start-up: signatures stay valid, the key is parsed once."""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pdfs
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from journey import signature_png
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers

from esign import pdfsign, stamp
from esign.signing_keys import KeptKeySigner


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> pdfsign.DevCertificates:
    paths, _ = pdfsign.ensure_dev_certificates(tmp_path_factory.mktemp("keys"))
    return paths


def _ec_key_and_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed P-256 document-signing certificate: ECDSA goes through the kept key as RSA does."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Portico test ECDSA signer")])
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = folder / "ec-key.pem", folder / "ec-cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def _rsa_pss(keys: pdfsign.DevCertificates) -> tuple[signers.SimpleSigner, Path]:
    loaded = pdfsign.load_signer(keys.signing_key, keys.signing_cert, [keys.ca_cert])
    loaded.prefer_pss = True
    return loaded, keys.ca_cert


def _signer_and_root(
    mechanism: str, keys: pdfsign.DevCertificates, folder: Path
) -> tuple[signers.SimpleSigner, Path]:
    if mechanism == "rsa-pkcs1v15":
        return pdfsign.load_signer(keys.signing_key, keys.signing_cert, [keys.ca_cert]), keys.ca_cert
    if mechanism == "rsa-pss":
        return _rsa_pss(keys)
    key_path, cert_path = _ec_key_and_certificate(folder)
    return pdfsign.load_signer(key_path, cert_path), cert_path


def _sign_as_portico(pdf: bytes, signer: signers.SimpleSigner, field: str = "Taxpayer") -> bytes:
    """As the signing activity does: the visible stamp with a drawn signature, the certificate page."""
    visible = pdfsign.VisibleSignature(
        signature_png(), stamp.StampText("Shelby Oneil", "Taxpayer - signed electronically")
    )
    return pdfsign.sign_pdf(
        pdf,
        signer,
        field_name=field,
        signer_name="Shelby Oneil",
        visible=visible,
        reserve_certificate_page=True,
    )


def _signature_algorithm(pdf: bytes) -> str:
    [embedded] = PdfFileReader(io.BytesIO(pdf)).embedded_regular_signatures
    return str(embedded.signer_info["signature_algorithm"]["algorithm"].native)


@pytest.mark.parametrize("mechanism", ["rsa-pkcs1v15", "rsa-pss", "ecdsa"])
def test_kept_key_signatures_validate_in_pyhanko(
    mechanism: str, keys: pdfsign.DevCertificates, tmp_path: Path
) -> None:
    signer, root = _signer_and_root(mechanism, keys, tmp_path)
    assert isinstance(signer, KeptKeySigner)

    signed = _sign_as_portico(pdfs.make_pdf(), signer)

    [report] = pdfsign.read_signatures(signed, trust_roots=[root])
    assert report.intact and report.valid and report.trusted, report
    expected = {"rsa-pkcs1v15": "rsa", "rsa-pss": "rsassa_pss", "ecdsa": "ecdsa"}[mechanism]
    assert expected in _signature_algorithm(signed)


@pytest.fixture
def pdfsig() -> str:
    found = shutil.which("pdfsig") or ("/usr/bin/pdfsig" if Path("/usr/bin/pdfsig").exists() else None)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pdfsig is missing on CI: install poppler-utils")
        pytest.skip("pdfsig (poppler-utils) not installed")
    return found


def test_poppler_accepts_a_joint_return_signed_with_the_kept_key(
    pdfsig: str, keys: pdfsign.DevCertificates, tmp_path: Path
) -> None:
    signer = pdfsign.load_signer(keys.signing_key, keys.signing_cert, [keys.ca_cert])
    taxpayer = _sign_as_portico(pdfs.make_pdf(), signer, "Taxpayer")
    joint = _sign_as_portico(taxpayer, signer, "Spouse")
    path = tmp_path / "joint.pdf"
    path.write_bytes(joint)

    output = subprocess.run(
        [pdfsig, str(path)], capture_output=True, text=True, timeout=60, check=False
    ).stdout

    assert output.count("Signature is Valid") == 2, output


class _KeyParses:
    """Counts every DER or PEM private-key parse, wherever pyHanko or Portico asks cryptography for one."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        for name in ("load_der_private_key", "load_pem_private_key"):
            original = getattr(serialization, name)
            monkeypatch.setattr(serialization, name, self._counting(original))

    def _counting(self, original: Callable[..., object]) -> Callable[..., object]:
        def parse(*args: object, **kwargs: object) -> object:
            self.count += 1
            return original(*args, **kwargs)

        return parse


def test_the_key_is_parsed_at_start_up_and_never_per_signature(
    keys: pdfsign.DevCertificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses = _KeyParses(monkeypatch)
    signer = pdfsign.load_signer(keys.signing_key, keys.signing_cert, [keys.ca_cert])
    at_start_up = parses.count
    pdf = pdfs.make_pdf()

    for field in ("Taxpayer", "Spouse", "Preparer"):
        pdf = _sign_as_portico(pdf, signer, field)

    assert at_start_up >= 1  # the check that the key matches its certificate parses it, once
    assert parses.count == at_start_up, "a signature parsed the private key again"
    assert len(pdfsign.read_signatures(pdf, trust_roots=[keys.ca_cert])) == 3


def test_the_counter_sees_pyhankos_own_per_signature_parse(
    keys: pdfsign.DevCertificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control for the test above: pyHanko's stock signer parses the key at each signature, and the
    counter notices, so a zero there means the kept key was used, not that the counter saw nothing."""
    stock = signers.SimpleSigner.load(
        str(keys.signing_key), str(keys.signing_cert), ca_chain_files=[str(keys.ca_cert)]
    )
    assert stock is not None
    parses = _KeyParses(monkeypatch)

    _sign_as_portico(_sign_as_portico(pdfs.make_pdf(), stock, "Taxpayer"), stock, "Spouse")

    assert parses.count == 2


def test_the_kept_key_is_the_one_checked_against_the_certificate(keys: pdfsign.DevCertificates) -> None:
    signer = pdfsign.load_signer(keys.signing_key, keys.signing_cert, [keys.ca_cert])
    kept = signer.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert signer.signing_cert is not None
    assert kept == signer.signing_cert.public_key.dump()
