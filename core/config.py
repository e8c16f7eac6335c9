"""One settings object for every Portico process, read from `PORTICO_*` variables and `.env`."""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_KEY_FILE = "dev-encryption.key"


class Settings(BaseSettings):
    """Everything configurable. Durations accept seconds or ISO 8601 (`P2D`, `PT1H`)."""

    model_config = SettingsConfigDict(env_prefix="PORTICO_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("var")
    database_url: str = ""
    public_url: str = "http://127.0.0.1:8000"
    api_host: str = "127.0.0.1"
    api_port: int = 8000

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_tls: bool = False
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_ui_port: int = 8233
    task_queue: str = "portico-engagements"

    email_backend: Literal["outbox", "smtp", "sendgrid"] = "outbox"
    sms_backend: Literal["outbox", "twilio"] = "outbox"
    email_from: str = "Portico <no-reply@portico.localhost>"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = False
    sendgrid_api_key: SecretStr = SecretStr("")
    sendgrid_host: str = "https://api.sendgrid.com"
    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_from_number: str = ""
    twilio_api_base: str = ""

    invite_reminder_interval: timedelta = timedelta(days=2)
    invite_reminders_max: int = 3
    invite_expires_after: timedelta = timedelta(days=14)
    verify_reminder_after: timedelta = timedelta(hours=1)
    verify_reminders_max: int = 1
    signature_reminder_first: timedelta = timedelta(days=2)
    signature_reminder_interval: timedelta = timedelta(days=3)
    signature_reminders_max: int = 4
    quiet_hours_start: Annotated[int, Field(ge=0, le=23, description="hour texts stop (taxpayer's time)")] = (
        21
    )
    quiet_hours_end: Annotated[int, Field(ge=0, le=23, description="hour texts may go out again")] = 8
    code_lifetime: timedelta = timedelta(minutes=10)
    code_max_failures: int = 5
    code_resend_cooldown: timedelta = timedelta(seconds=30)
    registration_max_failures: int = 5

    encryption_key: SecretStr = SecretStr("")
    signing_key: Path | None = None
    signing_cert: Path | None = None
    signing_chain: list[Path] = []
    signing_key_passphrase: SecretStr = SecretStr("")

    session_idle_timeout: timedelta = timedelta(minutes=30)
    session_absolute_timeout: timedelta = timedelta(hours=12)
    preparer_idle_timeout: timedelta = timedelta(minutes=15)
    max_upload_bytes: int = 25 * 1024 * 1024

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _defaults_and_secrets(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'portico.db'}"
        if self.environment == "production":
            if not self.encryption_key.get_secret_value():
                raise ValueError("PORTICO_ENCRYPTION_KEY is required outside development")
            dev_key = _read_dev_key(self.data_dir)
            if dev_key is not None and dev_key == self.encryption_key.get_secret_value():
                raise ValueError("PORTICO_ENCRYPTION_KEY is the generated development key; use a real one")
        return self

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    def master_key(self) -> bytes:
        """The 32-byte AES key for data at rest; generated into the data folder in development."""
        configured = self.encryption_key.get_secret_value()
        if configured:
            return _decode_key(configured)
        if self.environment == "production":  # pragma: no cover - the validator already refused this
            raise RuntimeError("no encryption key configured")
        existing = _read_dev_key(self.data_dir)
        if existing is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path = self.data_dir / DEV_KEY_FILE
            existing = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
            path.write_text(existing + "\n")
            path.chmod(0o600)
        return _decode_key(existing)


def _read_dev_key(data_dir: Path) -> str | None:
    path = data_dir / DEV_KEY_FILE
    return path.read_text().strip() if path.exists() else None


def _decode_key(encoded: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(encoded.encode())
    except ValueError as exc:
        raise ValueError("the encryption key must be 32 bytes, base64url-encoded") from exc
    if len(key) != 32:
        raise ValueError("the encryption key must be 32 bytes, base64url-encoded")
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
