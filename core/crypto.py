"""AES-GCM encryption for data at rest, and keyed digests for values we only ever compare."""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12
_WRAPPED_DEK = _NONCE + 32 + 16  # nonce + encrypted 32-byte key + GCM tag
_BLOB_VERSION = 1


class DecryptionError(Exception):
    """Ciphertext was altered, truncated or made under another key."""


class Cipher:
    """Encrypts small values (SSNs, message bodies) under the master key, bound to a purpose."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("master key must be 32 bytes")
        self._aead = AESGCM(master_key)
        self._digest_key = hmac.new(master_key, b"portico digest key", hashlib.sha256).digest()

    def encrypt(self, plaintext: bytes, purpose: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, purpose.encode())

    def decrypt(self, token: bytes, purpose: str) -> bytes:
        try:
            return self._aead.decrypt(token[:_NONCE], token[_NONCE:], purpose.encode())
        except Exception as exc:  # InvalidTag and short input both mean "not ours"
            raise DecryptionError(f"cannot decrypt {purpose}") from exc

    def encrypt_text(self, text: str, purpose: str) -> bytes:
        return self.encrypt(text.encode(), purpose)

    def decrypt_text(self, token: bytes, purpose: str) -> str:
        return self.decrypt(token, purpose).decode()

    def digest(self, purpose: str, value: str) -> str:
        """A keyed HMAC: lets us compare identity answers and codes without storing them."""
        mac = hmac.new(self._digest_key, f"{purpose}\x00{value}".encode(), hashlib.sha256)
        return mac.hexdigest()

    def derive_key(self, purpose: str) -> bytes:
        """A separate 32-byte key per purpose (invite tokens, Temporal payloads), derived from the master."""
        return hmac.new(self._digest_key, f"derive:{purpose}".encode(), hashlib.sha256).digest()

    def seal_blob(self, data: bytes, purpose: str) -> bytes:
        """Envelope encryption for documents: a fresh data key per blob, wrapped by the master key."""
        data_key = AESGCM.generate_key(bit_length=256)
        wrapped = self.encrypt(data_key, f"dek:{purpose}")
        nonce = os.urandom(_NONCE)
        body = AESGCM(data_key).encrypt(nonce, data, purpose.encode())
        return struct.pack(">B", _BLOB_VERSION) + wrapped + nonce + body

    def open_blob(self, sealed: bytes, purpose: str) -> bytes:
        if not sealed or sealed[0] != _BLOB_VERSION:
            raise DecryptionError(f"unknown blob format for {purpose}")
        wrapped = sealed[1 : 1 + _WRAPPED_DEK]
        nonce = sealed[1 + _WRAPPED_DEK : 1 + _WRAPPED_DEK + _NONCE]
        body = sealed[1 + _WRAPPED_DEK + _NONCE :]
        data_key = self.decrypt(wrapped, f"dek:{purpose}")
        try:
            return AESGCM(data_key).decrypt(nonce, body, purpose.encode())
        except Exception as exc:
            raise DecryptionError(f"cannot decrypt {purpose}") from exc


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
