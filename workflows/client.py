"""Connecting to Temporal the same way everywhere: API, worker, CLI and tests share this converter."""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
from collections.abc import Sequence
from typing import Self

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
)
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from core.config import Settings
from core.crypto import Cipher

# v1: AES-GCM without associated data. Still decoded (histories written before v2 must replay), never
# written. v2: AES-GCM bound to the namespace and workflow id the payload belongs to.
_ENCODING_V1 = b"binary/portico-aes-gcm"
_ENCODING_V2 = b"binary/portico-aes-gcm-bound"
# Metadata: what a v2 payload is bound to (its AAD), for the few decodes the SDK makes without a context.
_BINDING = "portico-binding"
# What the SDK itself writes before any codec: the only encodings `accept_plain` lets through.
_PLAIN_ENCODINGS = frozenset(
    {b"binary/null", b"json/plain", b"json/protobuf", b"binary/protobuf", b"binary/plain"}
)

log = logging.getLogger("portico.temporal")


class PayloadRefused(ValueError):
    """A payload the codec will not decode: not encrypted, or bound to another workflow, or tampered with."""


def _binding(context: SerializationContext | None) -> bytes:
    """Namespace and workflow id, where the SDK gives them (workflow and activity contexts carry both)."""
    namespace = getattr(context, "namespace", None) or ""
    workflow_id = getattr(context, "workflow_id", None) or ""
    return f"{namespace}\x00{workflow_id}".encode()


class EncryptionCodec(PayloadCodec, WithSerializationContext):
    """Encrypts every payload before it reaches Temporal, so workflow history holds no readable PII.

    Fails closed: a payload that is not ours (e.g. a plain one a tool wrote into history) is refused, not
    passed through. Each payload's associated data is its namespace and workflow id (the SDK hands the
    codec a serialization context for every workflow, activity, signal, query and update payload), so
    ciphertext copied from one workflow's history into another's does not decode there.
    """

    def __init__(self, key: bytes, *, accept_plain: bool = False) -> None:
        self._aead = AESGCM(key)
        self._accept_plain = accept_plain
        self._context: SerializationContext | None = None

    def with_context(self, context: SerializationContext) -> Self:
        bound = copy.copy(self)
        bound._context = context
        return bound

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        binding = _binding(self._context)
        out = []
        for payload in payloads:
            nonce = os.urandom(12)
            sealed = nonce + self._aead.encrypt(nonce, payload.SerializeToString(), binding)
            out.append(Payload(metadata={"encoding": _ENCODING_V2, _BINDING: binding}, data=sealed))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decode_one(payload) for payload in payloads]

    def _decode_one(self, payload: Payload) -> Payload:
        encoding = payload.metadata.get("encoding")
        if encoding == _ENCODING_V2:
            # With a context, the AAD is what the context says, whatever the metadata claims; without one
            # (a few client reads), the metadata's binding, which GCM still authenticates.
            binding = _binding(self._context) if self._context else payload.metadata.get(_BINDING, b"")
            return self._open(payload.data, binding)
        if encoding == _ENCODING_V1:
            return self._open(payload.data, None)
        if self._accept_plain and encoding in _PLAIN_ENCODINGS:
            log.warning(
                "decoded an unencrypted %s payload (PORTICO_TEMPORAL_ACCEPT_PLAIN_PAYLOADS)", encoding
            )
            return payload
        raise PayloadRefused(
            f"refusing an unencrypted or unknown payload (encoding {encoding!r}): Portico only decodes "
            "payloads it encrypted"
        )

    def _open(self, data: bytes, binding: bytes | None) -> Payload:
        try:
            plain = self._aead.decrypt(data[:12], data[12:], binding)
        except Exception as exc:  # InvalidTag: another key, another workflow, or altered
            raise PayloadRefused(
                "a payload does not decrypt here (another key, or another workflow's, or altered)"
            ) from exc
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded


def data_converter(cipher: Cipher, *, accept_plain_payloads: bool = False) -> DataConverter:
    """Pydantic payloads, encrypted by `EncryptionCodec`; failure messages and stack traces are moved into
    an encoded (so encrypted) attribute, so an error naming an email address never reaches history in
    clear."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(
            cipher.derive_key("temporal-payloads"), accept_plain=accept_plain_payloads
        ),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(settings: Settings, cipher: Cipher, *, runtime: Runtime | None = None) -> Client:
    tls: bool | TLSConfig = False
    if settings.temporal_tls:
        tls = TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes() if settings.temporal_tls_cert else None,
            client_private_key=settings.temporal_tls_key.read_bytes() if settings.temporal_tls_key else None,
            server_root_ca_cert=(
                settings.temporal_tls_server_ca.read_bytes() if settings.temporal_tls_server_ca else None
            ),
        )
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        tls=tls,
        api_key=settings.temporal_api_key.get_secret_value() or None,
        data_converter=data_converter(cipher, accept_plain_payloads=settings.temporal_accept_plain_payloads),
        runtime=runtime,
    )
