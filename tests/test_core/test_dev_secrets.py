"""Development secrets: generated once, shared by every process that starts at the same moment."""

from __future__ import annotations

import base64
import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from core import dev_secrets
from core.config import Settings


def test_processes_starting_together_share_one_development_key(tmp_path: Path) -> None:
    # `portico up` starts the API and the worker at once on a fresh data folder: both must read data
    # the other encrypted, so both must end up with the same key.
    with ProcessPoolExecutor(max_workers=4) as pool:
        keys = set(pool.map(dev_secrets.ensure_dev_key, [tmp_path] * 8))
    assert len(keys) == 1
    (key,) = keys
    assert len(base64.urlsafe_b64decode(key)) == 32
    key_file = tmp_path / dev_secrets.DEV_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert dev_secrets.read_dev_key(tmp_path) == key


def test_settings_use_the_generated_key_in_development(tmp_path: Path) -> None:
    settings = Settings(environment="development", data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    first = settings.master_key()
    assert first == base64.urlsafe_b64decode(dev_secrets.ensure_dev_key(tmp_path))
    assert settings.master_key() == first  # generated once, then read back


def test_development_certificates_are_written_once(tmp_path: Path) -> None:
    paths, created = dev_secrets.ensure_dev_certificates(tmp_path)
    again, created_again = dev_secrets.ensure_dev_certificates(tmp_path)
    assert (created, created_again) == (True, False)
    assert paths == again and paths.signing_key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(paths.signing_key.stat().st_mode) == 0o600
