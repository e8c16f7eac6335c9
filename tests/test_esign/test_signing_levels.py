"""PAdES levels: B-B by default, B-T with a time-stamp authority (a local one, started by the test)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pdfs
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from tsa_server import TimeStampServer

from core.config import Settings
from esign import pdfsign
from worker.main import load_pdf_signer


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> pdfsign.DevCertificates:
    paths, _ = pdfsign.ensure_dev_certificates(tmp_path_factory.mktemp("keys"))
    return paths


@pytest.fixture(scope="module")
def signer(keys: pdfsign.DevCertificates) -> signers.SimpleSigner:
    return pdfsign.load_signer(keys.signing_key, keys.signing_cert, [keys.ca_cert])


@pytest.fixture
def tsa(tmp_path: Path) -> Iterator[TimeStampServer]:
    with TimeStampServer(tmp_path) as server:
        yield server


def signed_attributes(pdf: bytes) -> set[str]:
    [embedded] = PdfFileReader(io.BytesIO(pdf)).embedded_regular_signatures
    return {attr["type"].native for attr in embedded.signer_info["signed_attrs"]}


def test_default_is_pades_baseline_b_b(signer: signers.SimpleSigner, keys: pdfsign.DevCertificates) -> None:
    signed = pdfsign.sign_pdf(pdfs.make_pdf(), signer, field_name="Taxpayer", signer_name="Pat Doe")

    [report] = pdfsign.read_signatures(signed, [keys.ca_cert])
    assert report.level == "PAdES B-B" and report.timestamp_time is None and report.holds
    assert b"/SubFilter /ETSI.CAdES.detached" in signed
    attributes = signed_attributes(signed)
    # PAdES baseline: the ESS signing-certificate-v2 attribute, and no CMS signing-time (the /M entry has it).
    assert "signing_certificate_v2" in attributes and "signing_time" not in attributes


def test_with_a_time_stamp_authority_signatures_are_b_t(
    signer: signers.SimpleSigner, keys: pdfsign.DevCertificates, tsa: TimeStampServer
) -> None:
    timestamper = pdfsign.timestamper_for(tsa.url)
    signed = pdfsign.sign_pdf(
        pdfs.make_pdf(), signer, field_name="Taxpayer", signer_name="Pat Doe", timestamper=timestamper
    )

    [report] = pdfsign.read_signatures(signed, [keys.ca_cert, tsa.ca_cert_path])
    assert report.level == "PAdES B-T" and report.holds
    assert report.timestamp_time is not None and report.timestamp_ok
    assert report.signing_time is not None
    assert abs((report.timestamp_time - report.signing_time).total_seconds()) < 60
    # Space was reserved for the token (measured once), not guessed by a dry-run signature.
    assert pdfsign.contents_reservation(signer, timestamper) > pdfsign.contents_reservation(signer)


def test_each_b_t_signature_gets_its_own_token(
    signer: signers.SimpleSigner, keys: pdfsign.DevCertificates, tsa: TimeStampServer
) -> None:
    timestamper = pdfsign.timestamper_for(tsa.url)
    first = pdfsign.sign_pdf(
        pdfs.make_pdf(), signer, field_name="Taxpayer", signer_name="A", timestamper=timestamper
    )
    before = tsa.requests
    second = pdfsign.sign_pdf(first, signer, field_name="Spouse", signer_name="B", timestamper=timestamper)

    assert tsa.requests == before + 1  # one token per signature: no size-estimating dry run
    reports = pdfsign.read_signatures(second, [keys.ca_cert, tsa.ca_cert_path])
    assert [(r.level, r.holds) for r in reports] == [("PAdES B-T", True), ("PAdES B-T", True)]


def test_an_unreachable_time_stamp_authority_is_a_retryable_error(
    signer: signers.SimpleSigner, tsa: TimeStampServer
) -> None:
    timestamper = pdfsign.timestamper_for(tsa.url)
    pdfsign.contents_reservation(signer, timestamper)  # the worker measured the token at start-up
    tsa.fail = True
    # An OSError (not a ValueError): the activity lets Temporal retry it until the authority is back.
    with pytest.raises(OSError):
        pdfsign.sign_pdf(
            pdfs.make_pdf(), signer, field_name="Taxpayer", signer_name="A", timestamper=timestamper
        )


def test_tsa_url_must_be_http(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PORTICO_TSA_URL"):
        Settings(environment="test", data_dir=tmp_path, tsa_url="ftp://tsa.example", _env_file=None)  # type: ignore[call-arg]


# --- the worker's start-up checks ---


def test_worker_start_up_measures_the_time_stamp_authority(
    settings: Settings, tsa: TimeStampServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings.tsa_url = tsa.url
    with caplog.at_level(logging.INFO, logger="portico.worker"):
        load_pdf_signer(settings)
    assert f"time-stamped by {tsa.url}" in caplog.text
    assert tsa.requests == 1


def test_a_broken_signing_key_stops_the_worker_at_start(
    settings: Settings, keys: pdfsign.DevCertificates, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "broken-key.pem"
    broken.write_bytes(keys.signing_key.read_bytes()[:300])
    settings.signing_key, settings.signing_cert = broken, keys.signing_cert

    with pytest.raises(pdfsign.SigningSetupError, match=r"broken-key\.pem"):
        load_pdf_signer(settings)
    assert "cannot start" in caplog.text and "broken-key.pem" in caplog.text


def test_a_signing_key_pyhanko_cannot_use_stops_the_worker(
    signer: signers.SimpleSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> bytes:
        raise ValueError("unsupported key")

    monkeypatch.setattr(pdfsign, "sign_pdf", refuse)
    with pytest.raises(pdfsign.SigningSetupError, match="cannot sign a PDF: unsupported key"):
        pdfsign.self_test(signer)
