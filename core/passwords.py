"""Password hashing (argon2id) and the NIST SP 800-63B rules: length and a block list, no composition."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8
MAX_LENGTH = 128

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@lru_cache
def _common_passwords() -> frozenset[str]:
    text = (
        resources.files("core").joinpath("common_passwords.txt").read_text()
    )  # 30,000 most common, from zxcvbn (MIT)
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def password_problems(password: str, *context: str) -> list[str]:
    """What is wrong with a new password, in words a person understands; empty when it is fine."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"Use at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        problems.append(f"Use at most {MAX_LENGTH} characters.")
    lowered = password.lower()
    if lowered in _common_passwords():
        problems.append("This password is too common; choose another.")
    elif any(item and item.lower() == lowered for item in context):
        problems.append("Don't use your user name or email as your password.")
    return problems
