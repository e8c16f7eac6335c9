"""One settings object for every Portico process, read from `PORTICO_*` variables and `.env`."""

from __future__ import annotations

import base64
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core import dev_secrets


class Settings(BaseSettings):
    """Everything configurable. Durations accept seconds or ISO 8601 (`P2D`, `PT1H`)."""

    model_config = SettingsConfigDict(env_prefix="PORTICO_", env_file=".env", extra="ignore")

    # Production unless said otherwise: development mounts the unauthenticated dev outbox (every code and
    # link, decrypted), so it must be asked for (`make run` / `portico up` do), never fallen into.
    environment: Literal["development", "test", "production"] = "production"
    data_dir: Path = Path("var")
    database_url: str = ""
    public_url: str = "http://127.0.0.1:8000"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Proxies whose X-Forwarded-For we believe: the audit log's client IPs (the IRS record) depend on it.
    forwarded_allow_ips: str = "127.0.0.1"
    # Observability (README, "Metrics, logs and readiness"). /metrics is never on the public port: the API
    # serves it on metrics_port and each worker the Temporal SDK's metrics on worker_metrics_port, both
    # off unless set, on metrics_host (loopback; 0.0.0.0 inside a container network).
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    worker_metrics_port: int | None = None
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_tls: bool = False
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_tls_server_ca: Path | None = None  # the CA of the server's certificate when not a public one
    # Sent as `Authorization: Bearer …`: a Temporal Cloud API key, or a JWT for a server whose authorizer
    # maps claims to namespace roles (docker-compose.yml, "Temporal in production").
    temporal_api_key: SecretStr = SecretStr("")
    temporal_ui_port: int = 8233
    # Off: every payload must be one Portico encrypted. On: a worker also decodes unencrypted payloads of
    # the SDK's own encodings (e.g. a signal sent with `temporal workflow signal --input`), logging each.
    # Only to finish workflows whose history holds such payloads; Portico itself never writes any.
    temporal_accept_plain_payloads: bool = False
    task_queue: str = "portico-engagements"
    # Lets several installations (or test runs) share one Temporal namespace without id clashes.
    workflow_id_prefix: str = ""
    # Engagements a worker keeps in memory (~370 KiB each); others wait on their timers in Temporal and
    # are replayed from history when one fires. Bounds the worker's memory whatever the season's size.
    worker_cache_size: Annotated[int, Field(ge=1)] = 500

    email_backend: Literal["outbox", "smtp", "sendgrid"] = "outbox"
    sms_backend: Literal["outbox", "twilio"] = "outbox"
    email_from: str = "Portico <no-reply@portico.localhost>"
    smtp_host: str = ""
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

    # Entries at the start of the audit chain linked before the chain had a key (Portico before security
    # round two), which `portico audit verify` may check with the old unkeyed hash (core/audit_chain.py).
    audit_legacy_entries: Annotated[int, Field(ge=0)] = 0

    session_idle_timeout: timedelta = timedelta(minutes=30)
    session_absolute_timeout: timedelta = timedelta(hours=12)
    preparer_idle_timeout: timedelta = timedelta(minutes=15)
    max_upload_bytes: int = 25 * 1024 * 1024
    # Request bodies (portico/request_guards.py), refused with 413 from the Content-Length or as the bytes
    # stream in, before any route reads them: every request but an upload is small; an upload request is
    # all its files together. Keep the proxy's limit (nginx `client_max_body_size`) at the upload one.
    max_request_bytes: Annotated[int, Field(ge=1024)] = 1024 * 1024
    max_upload_request_bytes: Annotated[int, Field(ge=1024)] = 100 * 1024 * 1024
    max_files_per_request: Annotated[int, Field(ge=1)] = 20
    # Countries (ISO 3166 codes) whose phone numbers Portico texts codes to when a taxpayer changes their
    # number: a code sent abroad costs the firm and is the classic SMS toll-fraud target. JSON in the
    # environment: PORTICO_SMS_COUNTRIES='["US","CA"]'.
    sms_countries: list[str] = ["US", "CA"]
    contact_codes_per_day: Annotated[int, Field(ge=1)] = 10
    # /docs, /redoc and /openapi.json: on in development and tests; in production only when set.
    api_docs: bool = False

    # Where documents live, always encrypted by Portico first: `local` is the data folder (one host, or a
    # shared volume), `s3` a bucket on AWS S3 or an S3-compatible service (MinIO, Ceph, R2), which every
    # API and worker host reaches. `portico storage migrate --to s3` moves existing documents over.
    storage: Literal["local", "s3"] = "local"
    storage_bucket: str = ""
    storage_prefix: str = ""  # e.g. `portico/`: several installations can share a bucket
    storage_endpoint_url: str = ""  # empty: AWS; else e.g. http://minio:9000
    storage_region: str = ""
    storage_access_key_id: str = ""  # both empty: boto3's own chain (environment, instance/task role)
    storage_secret_access_key: SecretStr = SecretStr("")
    storage_kms_key_id: str = ""  # set: the bucket also encrypts each object with this SSE-KMS key

    tsa_url: str = ""  # RFC 3161 time-stamp authority: B-T signatures (B-LT with revocation), B-LTA seal
    tsa_timeout_seconds: float = 10
    # Identity proofing (services.proofing): a firm that chooses the `http` provider reaches its bureau's
    # gateway here, with this bearer token (docs/identity-proofing.md). The `dev` provider needs neither.
    proofing_provider: Literal["dev", "http"] = "dev"  # a firm's own choice in its settings wins
    proofing_forms: str = "8879,8878"  # the forms that need it, unless a firm chose: 8879, 8878, other
    proofing_url: str = ""
    proofing_token: SecretStr = SecretStr("")
    proofing_timeout_seconds: float = 10
    trust_roots: list[Path] = []  # extra CA certificates verify-pdf trusts, e.g. the time-stamp authority's

    @field_validator("tsa_url")
    @classmethod
    def _http_tsa_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("PORTICO_TSA_URL must be an http:// or https:// URL")
        return value

    @field_validator("proofing_url")
    @classmethod
    def _http_proofing_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("PORTICO_PROOFING_URL must be an http:// or https:// URL")
        return value

    @field_validator("proofing_forms")
    @classmethod
    def _known_forms(cls, value: str) -> str:
        forms = [f.strip() for f in value.split(",") if f.strip()]
        if any(f not in ("8879", "8878", "other") for f in forms):
            raise ValueError("PORTICO_PROOFING_FORMS lists forms among 8879, 8878 and other")
        return ",".join(forms)

    @field_validator("storage_endpoint_url")
    @classmethod
    def _http_storage_endpoint(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("PORTICO_STORAGE_ENDPOINT_URL must be an http:// or https:// URL")
        return value

    @field_validator("storage_prefix")
    @classmethod
    def _folder_like_prefix(cls, value: str) -> str:
        value = value.strip("/")
        return f"{value}/" if value else ""

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _defaults_and_secrets(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'portico.db'}"
        if self.environment == "production":
            self._check_production()
        if self.environment == "development":
            self._check_development()
        return self

    def _check_development(self) -> None:
        """Development shows every message on the unauthenticated dev outbox page: never send real ones."""
        real = [
            f"PORTICO_{name.upper()}={value}"
            for name, value in (("email_backend", self.email_backend), ("sms_backend", self.sms_backend))
            if value != "outbox"
        ]
        if real:
            raise ValueError(
                f"{' and '.join(real)} sends real messages, which development refuses (its dev outbox "
                "shows every code and link to anyone); set PORTICO_ENVIRONMENT=production, or use the "
                "outbox backends"
            )

    def _check_production(self) -> None:
        """Refuse, at start-up, settings that would run but quietly lose messages or protect nothing."""
        key = self.encryption_key.get_secret_value()
        if not key:
            raise ValueError("PORTICO_ENCRYPTION_KEY is required in production")
        _decode_key(key)
        dev_key = dev_secrets.read_dev_key(self.data_dir)
        if dev_key is not None and dev_key == key:
            raise ValueError("PORTICO_ENCRYPTION_KEY is the generated development key; use a real one")
        if self.email_backend == "outbox" or self.sms_backend == "outbox":
            raise ValueError(
                "the outbox backend only stores messages; set PORTICO_EMAIL_BACKEND (smtp or "
                "sendgrid) and PORTICO_SMS_BACKEND (twilio) in production"
            )
        missing = [name for name, value in self._backend_credentials() if not value]
        if missing:
            raise ValueError(f"missing settings for the chosen message backends: {', '.join(missing)}")
        if not self.public_url.startswith("https://"):
            raise ValueError("PORTICO_PUBLIC_URL must be the https:// address clients open")
        if self.storage == "s3" and not self.storage_bucket:
            raise ValueError("PORTICO_STORAGE=s3 needs PORTICO_STORAGE_BUCKET, the bucket documents go to")

    def _backend_credentials(self) -> list[tuple[str, str]]:
        needed: list[tuple[str, str]] = []
        if self.email_backend == "smtp":
            needed.append(("PORTICO_SMTP_HOST", self.smtp_host))
        if self.email_backend == "sendgrid":
            needed.append(("PORTICO_SENDGRID_API_KEY", self.sendgrid_api_key.get_secret_value()))
        if self.sms_backend == "twilio":
            needed += [
                ("PORTICO_TWILIO_ACCOUNT_SID", self.twilio_account_sid),
                ("PORTICO_TWILIO_AUTH_TOKEN", self.twilio_auth_token.get_secret_value()),
                ("PORTICO_TWILIO_FROM_NUMBER", self.twilio_from_number),
            ]
        return needed

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
        return _decode_key(dev_secrets.ensure_dev_key(self.data_dir))


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
