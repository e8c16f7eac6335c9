"""The PDF layer of e-signing: key loading, signing, pre-send checks and signature reports.

Pure functions over bytes and files — no database, no Temporal — so the signing activity stays thin and
this module can be tested without a worker. pyHanko's sync entry points call `asyncio.run`, so call
`sign_pdf` and `read_signatures` from a worker thread (a sync activity), never inside a running event loop.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import io
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from pyhanko.keys import load_cert_from_pemder, load_certs_from_pemder, load_private_key_from_pemder
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import read_certification_data, validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pypdf import PdfReader

PKCS12_SUFFIXES = frozenset({".p12", ".pfx"})
PDF_MAGIC = b"%PDF-"
# What people most often upload by mistake, so the rejection can say what the file really is.
KNOWN_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"MZ": "a Windows program",
    b"PK\x03\x04": "a ZIP archive or Office document",
    b"\xd0\xcf\x11\xe0": "an old-style Office document",
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
}
# Room in /Contents beyond the certificates: signature value, signed attributes, DER overhead.
# Generous on purpose (running out fails the signing); add the token's size here once timestamps arrive.
CMS_OVERHEAD_BYTES = 8192
SIGNING_DIR_NAME = "signing"


class SigningSetupError(Exception):
    """The signing key or certificates cannot be used; raised at start-up, before any client signs."""


class PdfRejected(Exception):
    """A PDF the preparer tried to send cannot be signed; `reason` is shown to them as is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DevCertificates:
    """Development signing material written into the data folder."""

    ca_cert: Path
    """Self-signed 'Portico Development CA' certificate (PEM); trust it to see dev signatures as valid."""
    signing_key: Path
    """Private key of the document-signing certificate (PEM, unencrypted, mode 600)."""
    signing_cert: Path
    """Document-signing certificate issued by the development CA (PEM)."""


@dataclass(frozen=True)
class SignatureReport:
    """What a validator concluded about one embedded signature."""

    field_name: str
    """Name of the signature form field, e.g. 'Taxpayer'."""
    signer_name: str
    """The /Name the signer gave, else the certificate's subject."""
    signing_time: dt.datetime | None
    """Signing time as claimed by the signer (not a trusted timestamp)."""
    intact: bool
    """The signed bytes are unchanged."""
    valid: bool
    """The cryptographic signature checks out."""
    trusted: bool
    """The certificate chains to one of the given trust roots."""
    coverage: str
    """SignatureCoverageLevel name: ENTIRE_FILE, ENTIRE_REVISION, ..."""
    modification_level: str
    """ModificationLevel name of later changes (NONE, FORM_FILLING, ...), or UNKNOWN."""


# --- development certificates -------------------------------------------------------------------------


def ensure_dev_certificates(data_dir: Path) -> tuple[DevCertificates, bool]:
    """Create a development CA and signing certificate under `data_dir`/signing once; (paths, created_now)."""
    folder = data_dir / SIGNING_DIR_NAME
    paths = DevCertificates(
        ca_cert=folder / "dev-ca-cert.pem",
        signing_key=folder / "dev-signing-key.pem",
        signing_cert=folder / "dev-signing-cert.pem",
    )
    folder.mkdir(parents=True, exist_ok=True)
    # The API and the worker may both start at once on a fresh install; without the lock they could
    # interleave writes and leave a key that does not match its certificate.
    with _exclusive_lock(folder / ".dev-certificates.lock"):
        if all(path.exists() for path in (paths.ca_cert, paths.signing_key, paths.signing_cert)):
            return paths, False
        _write_dev_certificates(paths)
        return paths, True


@contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _write_dev_certificates(paths: DevCertificates) -> None:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # tolerate small clock skew between hosts
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_cert = _build_dev_ca(ca_key, now)
    signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signing_cert = _build_dev_signing_cert(signing_key, ca_key, ca_cert, now)
    # The CA key is deliberately never written: the CA can then issue nothing else, which keeps it
    # harmless for developers who add it to their PDF viewer's trust list.
    key_pem = signing_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_atomically(paths.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    _write_atomically(paths.signing_key, key_pem, mode=0o600)
    # Written last, so a crash midway leaves the set incomplete and it is regenerated on the next start.
    _write_atomically(paths.signing_cert, signing_cert.public_bytes(serialization.Encoding.PEM), mode=0o644)


def _build_dev_ca(ca_key: rsa.RSAPrivateKey, now: dt.datetime) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Portico Development CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Portico (development only)"),
        ]
    )
    ca_usage = x509.KeyUsage(
        digital_signature=False, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=5 * 365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ca_usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _build_dev_signing_cert(
    key: rsa.RSAPrivateKey, ca_key: rsa.RSAPrivateKey, ca_cert: x509.Certificate, now: dt.datetime
) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Portico Development Document Signing"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Portico (development only)"),
        ]
    )
    # digitalSignature + nonRepudiation is what PDF validators expect of a document-signing key.
    signing_usage = x509.KeyUsage(
        digital_signature=True, content_commitment=True, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3 * 365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(signing_usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _write_atomically(path: Path, content: bytes, *, mode: int) -> None:
    temporary = path.with_name(path.name + ".tmp")
    # Create with the final mode so the key is never readable by others, not even for a moment.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    os.chmod(temporary, mode)  # O_CREAT's mode is filtered by the umask and ignored for existing files
    os.replace(temporary, path)


# --- loading the signer ------------------------------------------------------------------------------


def load_signer(
    key_path: Path,
    cert_path: Path | None,
    chain: Sequence[Path] = (),
    passphrase: bytes | None = None,
) -> signers.SimpleSigner:
    """Load the signing key and certificate (PEM/DER pair, or one PKCS#12 .p12/.pfx file) once at start-up.

    For PKCS#12, `cert_path` may be None; if given it is treated as one more chain certificate.
    The chain certificates are embedded in every signature so validators can build the path.
    """
    is_pkcs12 = key_path.suffix.lower() in PKCS12_SUFFIXES
    chain_files = list(chain)
    if is_pkcs12:
        # The bundle holds its own certificate; a separate one can only be useful as part of the chain.
        chain_files += [cert_path] if cert_path is not None else []
        cert_path = None
    elif cert_path is None:
        raise SigningSetupError(f"The signing key {key_path} needs a certificate file next to it.")
    for path in [key_path, cert_path, *chain_files]:
        if path is not None and not path.is_file():
            raise SigningSetupError(f"Signing file not found: {path}")

    chain_names = [str(path) for path in chain_files] or None
    if is_pkcs12:
        signer = signers.SimpleSigner.load_pkcs12(
            pfx_file=str(key_path), ca_chain_files=chain_names, passphrase=passphrase
        )
    else:
        signer = signers.SimpleSigner.load(
            key_file=str(key_path), cert_file=str(cert_path), ca_chain_files=chain_names,
            key_passphrase=passphrase,
        )  # fmt: skip
    if signer is None:
        # pyHanko only logs the cause and returns None; find which file is bad to say so.
        raise SigningSetupError(_diagnose_load_failure(key_path, cert_path, chain_files, passphrase))
    _check_signer_usable(signer, key_path)
    return signer


def _diagnose_load_failure(
    key_path: Path, cert_path: Path | None, chain: Sequence[Path], passphrase: bytes | None
) -> str:
    try:
        if key_path.suffix.lower() in PKCS12_SUFFIXES:
            pkcs12.load_key_and_certificates(key_path.read_bytes(), passphrase)
        else:
            load_private_key_from_pemder(str(key_path), passphrase=passphrase)
    except (ValueError, TypeError) as error:
        return f"Cannot read the signing key {key_path} (wrong passphrase or not a key file): {error}"
    for path in [p for p in (cert_path, *chain) if p is not None]:
        try:
            list(load_certs_from_pemder([str(path)]))
            if path == cert_path:
                load_cert_from_pemder(str(path))  # the signer's own file must hold exactly one certificate
        except (ValueError, TypeError, OSError) as error:
            return f"Cannot read the certificate file {path}: {error}"
    return f"Cannot load the signing key {key_path}; see the log for pyHanko's reason."


def _check_signer_usable(signer: signers.SimpleSigner, key_path: Path) -> None:
    """Catch a key/certificate mix-up or an expired certificate now, not at the first client's signature."""
    cert = signer.signing_cert
    assert signer.signing_key is not None and cert is not None  # guaranteed by a successful load
    private_key = serialization.load_der_private_key(signer.signing_key.dump(), password=None)
    public_der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if public_der != cert.public_key.dump():
        raise SigningSetupError(
            f"The signing key {key_path} does not belong to the certificate '{cert.subject.human_friendly}'."
        )
    if cert.not_valid_after < dt.datetime.now(dt.UTC):
        subject, expired = cert.subject.human_friendly, f"{cert.not_valid_after:%Y-%m-%d}"
        raise SigningSetupError(f"The signing certificate '{subject}' expired on {expired}.")


# --- signing -----------------------------------------------------------------------------------------


def sign_pdf(
    pdf: bytes,
    signer: signers.SimpleSigner,
    *,
    field_name: str,
    signer_name: str,
    reason: str = "Signed with Portico",
    location: str | None = None,
) -> bytes:
    """Add one invisible PAdES B-B signature as an incremental update, keeping earlier signatures valid."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=True)
    if any(fields.enumerate_sig_fields(writer, filled_status=True, with_name=field_name)):
        raise ValueError(f"Signature field {field_name!r} is already signed")
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        name=signer_name,
        reason=reason,
        location=location,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
    )
    pdf_signer = signers.PdfSigner(meta, signer, new_field_spec=fields.SigFieldSpec(field_name))
    output = io.BytesIO()
    # Reserving the space up front skips pyHanko's dry-run signature, which otherwise doubles the work.
    pdf_signer.sign_pdf(writer, bytes_reserved=_contents_reservation(signer), output=output)
    return output.getvalue()


def _contents_reservation(signer: signers.SimpleSigner) -> int:
    """Hex digits to reserve for /Contents: every embedded certificate plus fixed headroom."""
    certificates = [signer.signing_cert, *signer.cert_registry]
    der_bytes = sum(len(cert.dump()) for cert in certificates if cert is not None) + CMS_OVERHEAD_BYTES
    return 2 * der_bytes  # hex encoding doubles the size; the result is even as pyHanko requires


# --- checks before sending ---------------------------------------------------------------------------


def check_pdf_for_sending(pdf: bytes, max_bytes: int) -> int:
    """Return the page count of a PDF that can be sent for signature, or raise PdfRejected saying why not."""
    if len(pdf) > max_bytes:
        size, limit = _megabytes(len(pdf)), _megabytes(max_bytes)
        raise PdfRejected(f"This file is {size}; the largest file Portico accepts is {limit}.")
    if not pdf.startswith(PDF_MAGIC):
        raise PdfRejected(_not_a_pdf_reason(pdf))
    reader = _open_for_checks(pdf)
    if reader.encrypted:
        raise PdfRejected(
            "This file is encrypted or password-protected. Save an unprotected copy and upload that."
        )
    _reject_if_locked_by_certification(reader)
    pages = _count_pages(pdf, reader)
    if pages == 0:
        raise PdfRejected("This PDF has no pages.")
    return pages


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _not_a_pdf_reason(data: bytes) -> str:
    for magic, kind in KNOWN_MAGIC.items():
        if data.startswith(magic):
            return f"This file is {kind}, not a PDF. Export or print it to PDF and upload that."
    return "This file is not a PDF. Export or print it to PDF and upload that."


def _damaged(error: Exception) -> PdfRejected:
    return PdfRejected(f"This PDF is damaged and cannot be signed ({error}). Re-export it and upload again.")


def _open_for_checks(pdf: bytes) -> PdfFileReader:
    # pyHanko is what will sign the file, so its strict reader is the gate: what it cannot read, we cannot
    # sign. Damaged files fail in many ways (PdfReadError, KeyError, ...), hence the broad except.
    # The reader is lazy: this only reads the trailer and cross-references; the body is checked later.
    try:
        return PdfFileReader(io.BytesIO(pdf), strict=True)
    except Exception as error:
        raise _damaged(error) from error


def _reject_if_locked_by_certification(reader: PdfFileReader) -> None:
    try:
        certification = read_certification_data(reader)
    except Exception as error:
        raise _damaged(error) from error
    if certification is not None and certification.permission == fields.MDPPerm.NO_CHANGES:
        raise PdfRejected(
            "This PDF is certified by its author with 'no changes allowed', so adding signatures would "
            "break that certification. Upload a copy without the certification signature."
        )


def _count_pages(pdf: bytes, reader: PdfFileReader) -> int:
    # pypdf walks the page tree and decodes each page's content: a second, independent parser that finds
    # damage inside streams which pyHanko's lazy reader never touches. Lenient mode, because pyHanko's
    # strict reader has already vouched for the file structure; this pass looks for broken content only.
    try:
        pages = PdfReader(io.BytesIO(pdf), strict=False).pages
        for page in pages:
            contents = page.get_contents()
            if contents is not None:
                contents.get_data()
        declared = int(reader.root["/Pages"]["/Count"])
    except Exception as error:
        raise _damaged(error) from error
    if declared != len(pages):
        raise _damaged(ValueError(f"page tree says {declared} pages, found {len(pages)}"))
    return len(pages)


# --- reading signatures ------------------------------------------------------------------------------


def read_signatures(pdf: bytes, trust_roots: Sequence[Path] = ()) -> list[SignatureReport]:
    """Validate every signature in the PDF, in signing order, trusting only `trust_roots` (no network)."""
    roots = [cert for path in trust_roots for cert in load_certs_from_pemder([str(path)])]
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)  # report on imperfect files rather than refuse
    # No fetching: the server has no business calling out to OCSP/CRL URLs named inside uploaded files.
    context = ValidationContext(trust_roots=roots, allow_fetching=False)
    reports = []
    for embedded in reader.embedded_regular_signatures:
        status = validate_pdf_signature(embedded, signer_validation_context=context)
        reports.append(
            SignatureReport(
                field_name=embedded.field_name,
                signer_name=_signer_name(embedded.sig_object, status.signing_cert),
                signing_time=embedded.self_reported_timestamp,
                intact=status.intact,
                valid=status.valid,
                trusted=status.trusted,
                coverage=status.coverage.name if status.coverage is not None else "UNKNOWN",
                modification_level=(
                    status.modification_level.name if status.modification_level is not None else "UNKNOWN"
                ),
            )
        )
    return reports


def _signer_name(sig_object: dict[str, object], cert: asn1_x509.Certificate) -> str:
    name = sig_object.get("/Name")
    return str(name) if name else str(cert.subject.human_friendly)
