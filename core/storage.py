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
        # Write then rename: a crash mid-write never leaves a half-written blob under the real name.
        tmp = path.with_suffix(".partial")
        tmp.write_bytes(self.cipher.seal_blob(data, key))
        os.replace(tmp, path)

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
