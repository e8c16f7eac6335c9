"""Signing keys: loading the configured key (or the development one from core.dev_secrets) once at start-up,
and a signer that keeps the parsed key for every signature after that.

Re-exported by esign.pdfsign, which is what the rest of Portico imports.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.keys import load_cert_from_pemder, load_certs_from_pemder, load_private_key_from_pemder
from pyhanko.sign import signers
from pyhanko_certvalidator.util import get_pyca_cryptography_hash, process_pss_params

PKCS12_SUFFIXES = frozenset({".p12", ".pfx"})


class SigningSetupError(Exception):
    """The signing key or certificates cannot be used; raised at start-up, before any client signs."""


# --- loading the signer ------------------------------------------------------------------------------


class KeptKeySigner(signers.SimpleSigner):
    """A pyHanko SimpleSigner that signs with a private key parsed (and checked) once, at start-up.

    SimpleSigner.sign_raw parses the DER key again on every signature, and for RSA OpenSSL then re-runs
    its key consistency check: about 35 ms of a 49 ms signature on RSA-2048, where the RSA operation
    itself takes 0.2 ms. RSA and ECDSA sign here with the kept key; other mechanisms go to pyHanko.
    """

    def __init__(self, loaded: signers.SimpleSigner, private_key: PrivateKeyTypes) -> None:
        assert loaded.signing_cert is not None  # guaranteed by a successful load
        super().__init__(
            signing_cert=loaded.signing_cert,
            signing_key=loaded.signing_key,
            cert_registry=loaded.cert_registry,
            signature_mechanism=loaded.signature_mechanism,
            prefer_pss=loaded.prefer_pss,
            embed_roots=loaded.embed_roots,
        )
        self.private_key = private_key

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
        try:
            name = mechanism.signature_algo  # "rsassa_pkcs1v15", "rsassa_pss", "ecdsa", …
        except ValueError:  # a mechanism asn1crypto has no family name for: pyHanko's own path below
            name = mechanism["algorithm"].native
        key = self.private_key
        if isinstance(key, RSAPrivateKey) and name == "rsassa_pkcs1v15":
            return key.sign(data, PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm))
        if isinstance(key, RSAPrivateKey) and name == "rsassa_pss":
            padding, hash_algorithm = process_pss_params(mechanism["parameters"])
            return key.sign(data, padding, hash_algorithm)
        if isinstance(key, EllipticCurvePrivateKey) and name == "ecdsa":
            return key.sign(data, ECDSA(get_pyca_cryptography_hash(digest_algorithm)))
        return super().sign_raw(data, digest_algorithm)  # rarer mechanisms: pyHanko's own, key re-parsed


def load_signer(
    key_path: Path,
    cert_path: Path | None,
    chain: Sequence[Path] = (),
    passphrase: bytes | None = None,
) -> KeptKeySigner:
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
    return KeptKeySigner(signer, _check_signer_usable(signer, key_path))


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


def _check_signer_usable(signer: signers.SimpleSigner, key_path: Path) -> PrivateKeyTypes:
    """Catch a key/certificate mix-up or an expired certificate now, not at the first client's signature.

    Returns the private key, parsed with OpenSSL's full key check: the one check every signature relies on.
    """
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
    return private_key
