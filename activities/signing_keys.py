"""Signing keys: the development CA and certificate, and loading the configured key once at start-up.

Re-exported by activities.pdfsign, which is what the rest of Portico imports.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from pyhanko.keys import load_cert_from_pemder, load_certs_from_pemder, load_private_key_from_pemder
from pyhanko.sign import signers

PKCS12_SUFFIXES = frozenset({".p12", ".pfx"})
SIGNING_DIR_NAME = "signing"


class SigningSetupError(Exception):
    """The signing key or certificates cannot be used; raised at start-up, before any client signs."""


@dataclass(frozen=True)
class DevCertificates:
    """Development signing material written into the data folder."""

    ca_cert: Path
    """Self-signed 'Portico Development CA' certificate (PEM); trust it to see dev signatures as valid."""
    signing_key: Path
    """Private key of the document-signing certificate (PEM, unencrypted, mode 600)."""
    signing_cert: Path
    """Document-signing certificate issued by the development CA (PEM)."""


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
