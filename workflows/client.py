"""Connecting to Temporal the same way everywhere: API, worker, CLI and tests share this converter."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec
from temporalio.service import TLSConfig

from core.config import Settings
from core.crypto import Cipher

_ENCODING = b"binary/portico-aes-gcm"


class EncryptionCodec(PayloadCodec):
    """Encrypts every payload before it reaches Temporal, so workflow history holds no readable PII."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            nonce = os.urandom(12)
            sealed = nonce + self._aead.encrypt(nonce, payload.SerializeToString(), None)
            out.append(Payload(metadata={"encoding": _ENCODING}, data=sealed))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != _ENCODING:
                out.append(payload)  # written before encryption was on, or by a tool: pass through
                continue
            plain = self._aead.decrypt(payload.data[:12], payload.data[12:], None)
            decoded = Payload()
            decoded.ParseFromString(plain)
            out.append(decoded)
        return out


def data_converter(cipher: Cipher) -> DataConverter:
    return dataclasses.replace(
        pydantic_data_converter, payload_codec=EncryptionCodec(cipher.derive_key("temporal-payloads"))
    )


async def connect(settings: Settings, cipher: Cipher) -> Client:
    tls: bool | TLSConfig = False
    if settings.temporal_tls:
        tls = TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes() if settings.temporal_tls_cert else None,
            client_private_key=settings.temporal_tls_key.read_bytes() if settings.temporal_tls_key else None,
        )
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        tls=tls,
        data_converter=data_converter(cipher),
    )
