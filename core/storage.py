"""Encrypted document storage: Portico seals every blob, then keeps it in a folder or an S3 bucket.

`DocumentStore` is what every caller uses (`new_key`, `put`, `get`, `exists`, `delete`); it encrypts
and decrypts. Where the sealed bytes live is a `BlobStore`: `FolderBlobs` (the data folder, the default)
or `S3Blobs` (any S3-compatible service). A blob store only ever sees ciphertext.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.crypto import Cipher

if TYPE_CHECKING:
    from core.config import Settings


class DocumentNotFound(Exception):
    pass


class BlobStore(Protocol):
    """Where sealed blobs live, by key. Writes are atomic: a reader sees the old blob or the new one."""

    def read(self, key: str) -> bytes:
        """The sealed bytes; DocumentNotFound when there are none."""
        ...

    def write(self, key: str, sealed: bytes) -> None: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Removes the blob; nothing happens when it is already gone."""
        ...

    def all_keys(self) -> Iterator[str]:
        """Every key stored (for `portico storage migrate`)."""
        ...

    def describe(self) -> str:
        """Where the blobs are, for an operator."""
        ...


def valid_key(key: str) -> bool:
    """Keys are `<prefix>/<32 hex digits>` as `new_key` makes them: opaque, random and path-safe."""
    prefix, _, name = key.partition("/")
    return prefix.isidentifier() and len(name) == 32 and all(c in "0123456789abcdef" for c in name)


class DocumentStore:
    """Stores each blob encrypted under its own data key, in the blob store it is given."""

    def __init__(self, blobs: BlobStore | Path, cipher: Cipher) -> None:
        self.blobs: BlobStore = FolderBlobs(blobs) if isinstance(blobs, Path) else blobs
        self.cipher = cipher

    @property
    def root(self) -> Path:
        """The folder of a local store."""
        if not isinstance(self.blobs, FolderBlobs):
            raise AttributeError(f"documents are not in a folder but in {self.blobs.describe()}")
        return self.blobs.root

    @staticmethod
    def new_key(prefix: str) -> str:
        return f"{prefix}/{secrets.token_hex(16)}"

    def put(self, key: str, data: bytes) -> None:
        self._check(key)
        # The key is the blob's associated data: a blob copied under another key does not decrypt.
        self.blobs.write(key, self.cipher.seal_blob(data, key))

    def get(self, key: str) -> bytes:
        self._check(key)
        return self.cipher.open_blob(self.blobs.read(key), key)

    def exists(self, key: str) -> bool:
        return valid_key(key) and self.blobs.exists(key)

    def delete(self, key: str) -> None:
        if valid_key(key):
            self.blobs.delete(key)

    def all_keys(self) -> Iterator[str]:
        return (key for key in self.blobs.all_keys() if valid_key(key))

    @staticmethod
    def _check(key: str) -> None:
        if not valid_key(key):
            raise DocumentNotFound(key)


class FolderBlobs:
    """Blobs under a folder of the data directory (never a served one): `<prefix>/<2 hex>/<name>`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        prefix, _, name = key.partition("/")
        return self.root / prefix / name[:2] / name

    def write(self, key: str, sealed: bytes) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write, flush to disk, then rename: a crash (of the process or the machine) mid-write never
        # leaves a half-written blob under the real name, and a blob the database already points to
        # (a signed return) survives a power cut.
        tmp = path.with_suffix(".partial")
        with tmp.open("wb") as out:
            out.write(sealed)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        _fsync_directory(path.parent)

    def read(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise DocumentNotFound(key) from None

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def all_keys(self) -> Iterator[str]:
        for path in sorted(self.root.glob("*/??/*")):
            if path.is_file() and path.suffix != ".partial":
                yield f"{path.parent.parent.name}/{path.name}"

    def describe(self) -> str:
        return str(self.root)


def _fsync_directory(folder: Path) -> None:
    """Makes a rename in `folder` durable (POSIX: the directory entry is data of the directory)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Codes S3 and the compatible services answer for a key that is not there (HEAD has no body, so "404").
_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3Blobs:
    """Blobs as objects `<prefix><key>` in an S3 bucket (AWS, MinIO, Ceph, R2, ...), through boto3.

    Each write is one PutObject carrying a Content-MD5: S3 stores the whole object or nothing, so a
    reader never sees half a blob under the real key, and a body damaged on the way is refused.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "", kms_key_id: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.kms_key_id = kms_key_id

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Blobs:
        import boto3
        from botocore.config import Config

        if not settings.storage_bucket:
            raise ValueError("PORTICO_STORAGE_BUCKET is required for S3 document storage")
        custom = bool(settings.storage_endpoint_url)
        config = Config(
            connect_timeout=10,
            read_timeout=60,
            retries={"mode": "standard", "max_attempts": 5},
            max_pool_connections=32,  # the worker's and the API's thread pools share one client
            # MinIO and Ceph answer on one host name (path-style); AWS picks for itself.
            s3={"addressing_style": "path" if custom else "auto"},
            # botocore's newer default checksums are not understood by every S3-compatible service;
            # Content-MD5 (sent on every write) is.
            request_checksum_calculation="when_required" if custom else "when_supported",
            response_checksum_validation="when_required" if custom else "when_supported",
        )
        secret = settings.storage_secret_access_key.get_secret_value()
        client = boto3.client(
            "s3",
            endpoint_url=settings.storage_endpoint_url or None,
            region_name=settings.storage_region or None,
            # Empty: boto3's own chain (environment, instance or task role) supplies credentials.
            aws_access_key_id=settings.storage_access_key_id or None,
            aws_secret_access_key=secret or None,
            config=config,
        )
        return cls(client, settings.storage_bucket, settings.storage_prefix, settings.storage_kms_key_id)

    def _name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def write(self, key: str, sealed: bytes) -> None:
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id} if self.kms_key_id else {}
        md5 = hashlib.md5(sealed, usedforsecurity=False).digest()  # S3's own integrity check, not ours
        self.client.put_object(
            Bucket=self.bucket,
            Key=self._name(key),
            Body=sealed,
            ContentMD5=base64.b64encode(md5).decode(),
            ContentType="application/octet-stream",
            **extra,
        )

    def read(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._name(key))
        except Exception as exc:
            if _is_missing(exc):
                raise DocumentNotFound(key) from None
            raise
        body = response["Body"]
        with contextlib.closing(body):
            data: bytes = body.read()
        return data

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except Exception as exc:
            if _is_missing(exc):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def all_keys(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for item in page.get("Contents", []):
                yield str(item["Key"])[len(self.prefix) :]

    def describe(self) -> str:
        where = f" at {self.client.meta.endpoint_url}" if self.client.meta.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"


def _is_missing(exc: Exception) -> bool:
    """Whether `exc` is botocore's ClientError for a key that is not in the bucket."""
    response = getattr(exc, "response", None)
    return isinstance(response, dict) and str(response.get("Error", {}).get("Code", "")) in _MISSING


def open_store(settings: Settings, cipher: Cipher, backend: str | None = None) -> DocumentStore:
    """The document store the settings choose (or `backend`: "local" or "s3")."""
    chosen = backend or settings.storage
    if chosen == "s3":
        return DocumentStore(S3Blobs.from_settings(settings), cipher)
    return DocumentStore(settings.data_dir / "documents", cipher)
