"""Encrypted document storage: blobs live under the data folder, never in a served directory."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from core.crypto import Cipher


class DocumentNotFound(Exception):
    pass


class DocumentStore:
    """Stores each blob encrypted under its own data key. Keys are opaque, random and path-safe."""

    def __init__(self, root: Path, cipher: Cipher) -> None:
        self.root = root
        self.cipher = cipher
        self.root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def new_key(prefix: str) -> str:
        return f"{prefix}/{secrets.token_hex(16)}"

    def _path(self, key: str) -> Path:
        prefix, _, name = key.partition("/")
        if not prefix.isidentifier() or len(name) != 32 or not all(c in "0123456789abcdef" for c in name):
            raise DocumentNotFound(key)
        return self.root / prefix / name[:2] / name

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write, flush to disk, then rename: a crash (of the process or the machine) mid-write never
        # leaves a half-written blob under the real name, and a blob the database already points to
        # (a signed return) survives a power cut.
        tmp = path.with_suffix(".partial")
        with tmp.open("wb") as out:
            out.write(self.cipher.seal_blob(data, key))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        _fsync_directory(path.parent)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        if not path.exists():
            raise DocumentNotFound(key)
        return self.cipher.open_blob(path.read_bytes(), key)

    def exists(self, key: str) -> bool:
        try:
            return self._path(key).exists()
        except DocumentNotFound:
            return False

    def delete(self, key: str) -> None:
        with contextlib.suppress(DocumentNotFound):
            self._path(key).unlink(missing_ok=True)


def _fsync_directory(folder: Path) -> None:
    """Makes a rename in `folder` durable (POSIX: the directory entry is data of the directory)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
