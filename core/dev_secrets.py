"""Every secret Portico generates for itself in development, in one place, written once into the data folder.

The development encryption key (data at rest and Temporal payloads) and the development signing CA and
certificate. Production configures real ones and refuses these (see core.config). Each is created under an
exclusive file lock and written atomically: `portico up` starts the API and the worker at the same moment,
and both must end up with the same key.
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

DEV_KEY_FILE = "dev-encryption.key"
SIGNING_DIR_NAME = "signing"


# --- the development encryption key ----------------------------------------------------------------------


def read_dev_key(data_dir: Path) -> str | None:
    """The generated development key (base64url), or None when none was generated here."""
    path = data_dir / DEV_KEY_FILE
    return path.read_text().strip() if path.exists() else None


def ensure_dev_key(data_dir: Path) -> str:
    """The development encryption key (base64url of 32 random bytes), generated on first use."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(data_dir / ".dev-encryption.lock"):
        existing = read_dev_key(data_dir)
        if existing is not None:
            return existing
        key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        _write_atomically(data_dir / DEV_KEY_FILE, (key + "\n").encode(), mode=0o600)
        return key


# --- the development signing CA and certificate ------------------------------------------------------------


@dataclass(frozen=True)
class DevCertificates:
    """Development signing material written into the data folder."""

    ca_cert: Path
    """Self-signed 'Portico Development CA' certificate (PEM); trust it to see dev signatures as valid."""
    signing_key: Path
    """Private key of the document-signing certificate (PEM, unencrypted, mode 600)."""
    signing_cert: Path
    """Document-signing certificate issued by the development CA (PEM)."""


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
