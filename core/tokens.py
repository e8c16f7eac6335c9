"""Signed, stateless invitation tokens: the workflow decides whether a token is still the current one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class InvitePayload:
    engagement_id: int
    role: str
    invite_seq: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_invite_token(key: bytes, payload: InvitePayload) -> str:
    """Deterministic for the same invite, so a retried send builds the same link."""
    body = _b64(json.dumps([payload.engagement_id, payload.role, payload.invite_seq]).encode())
    mac = hmac.new(key, b"invite:" + body.encode(), hashlib.sha256).digest()[:18]
    return f"{body}.{_b64(mac)}"


def read_invite_token(key: bytes, token: str) -> InvitePayload:
    body, _, mac = token.partition(".")
    expected = hmac.new(key, b"invite:" + body.encode(), hashlib.sha256).digest()[:18]
    # Compare the canonical text, not decoded bytes: base64 decoding would forgive appended junk.
    if not hmac.compare_digest(mac.encode(), _b64(expected).encode()):
        raise InvalidToken("bad signature")
    try:
        engagement_id, role, seq = json.loads(_unb64(body))
    except (ValueError, TypeError) as exc:
        raise InvalidToken("malformed token") from exc
    if not isinstance(engagement_id, int) or role not in ("taxpayer", "spouse") or not isinstance(seq, int):
        raise InvalidToken("malformed token")
    return InvitePayload(engagement_id, role, seq)
