"""The long-lived resources a Portico process builds once from settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from core.config import Settings
from core.crypto import Cipher
from core.db import create_tables, make_engine
from core.storage import DocumentStore, open_store


@dataclass
class Resources:
    settings: Settings
    engine: Engine
    cipher: Cipher
    store: DocumentStore

    @classmethod
    def from_settings(cls, settings: Settings, *, create: bool | None = None) -> Resources:
        """`create`: make missing tables from the models; by default only under test settings. Everywhere
        else the schema is the migrations' (`portico db upgrade`, which `portico up` runs itself)."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.database_url)
        if settings.environment == "test" if create is None else create:
            create_tables(engine)
        cipher = Cipher(settings.master_key())
        return cls(settings, engine, cipher, open_store(settings, cipher))
