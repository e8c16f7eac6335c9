"""What the benchmark's child processes share, kept light so a worker's memory is a real worker's."""

from __future__ import annotations

from core.config import Settings

READY = "BENCH-READY"


def settings_from_env() -> Settings:
    """In a child process: the parent's settings, ignoring any .env file in the working folder."""
    return Settings(_env_file=None)  # type: ignore[call-arg]
