"""Structured logs: one JSON object a line, carrying the request id, with secrets redacted on the way out.

`configure_logging(settings)` is called once by `portico api`, `portico worker` and `portico up`. The
request id lives in a context variable: the API sets it per request (portico/observability.py), the worker
sets it for the workflow update or signal that carried it (worker/telemetry.py), and every record logged
meanwhile carries it. Redaction is defence in depth: code must not log SSNs, codes, tokens or message
bodies in the first place; the filter catches what slips through in the obvious shapes.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

REQUEST_ID: ContextVar[str | None] = ContextVar("portico_request_id", default=None)
REQUEST_ID_HEADER = "X-Request-ID"

# An incoming id is kept only when it is short and plain, so a caller cannot inject text into our logs.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def accept_request_id(incoming: str | None) -> str:
    """The caller's X-Request-ID when it is sane, else a new one."""
    if incoming and _SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return str(uuid.uuid4())


@contextmanager
def request_id_bound(request_id: str | None) -> Iterator[None]:
    """Logs written inside carry `request_id` (nothing changes when it is None)."""
    if request_id is None:
        yield
        return
    token = REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        _reset(token)


def _reset(token: Token[str | None]) -> None:
    # A coroutine left waiting (a workflow handler when its workflow is evicted) is closed later by the
    # garbage collector, in whatever Context runs then: that Context never held our value, so there is
    # nothing to undo, and raising here would only surface as an "exception ignored" warning.
    with suppress(ValueError):
        REQUEST_ID.reset(token)


# ---- redaction ----------------------------------------------------------------------------------------

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # `password=…`, `token: …`, `code=…`, `Authorization: Bearer …`: the value, whatever it looks like.
    (
        re.compile(
            r"(?i)\b(password|passwd|secret|token|code|otp|ssn|authorization|api[_-]?key)"
            r"(\"?\s*[:=]\s*\"?)(bearer\s+)?[^\s\"',;&]+"
        ),
        r"\1\2[redacted]",
    ),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer [redacted]"),
    # Invitation tokens (`<base64url>.<base64url>`) and other long opaque strings.
    (re.compile(r"[A-Za-z0-9_-]{12,}\.[A-Za-z0-9_-]{12,}"), "[token]"),
    # (A canonical UUID, such as a run id or a request id we made, is not a secret: kept.)
    (
        re.compile(
            r"(?<![A-Za-z0-9_-])(?!" + _UUID + r"(?![A-Za-z0-9_-]))[A-Za-z0-9_-]{32,}(?![A-Za-z0-9_-])"
        ),
        "[token]",
    ),
    # SSNs: 123-45-6789, 123 45 6789, 123456789.
    (re.compile(r"(?<!\d)\d{3}([- ]?)\d{2}\1\d{4}(?!\d)"), "[ssn]"),
    # One-time codes: six digits standing alone.
    (re.compile(r"(?<![\d.:-])\d{6}(?![\d:])"), "[code]"),
)


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value))


class RedactSecrets(logging.Filter):
    """Rewrites each record's message (arguments merged in) through `redact`; on the handler, so every
    logger's records pass it, ours and the libraries'."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the template, drop the arguments
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        return True


# ---- formatting ---------------------------------------------------------------------------------------

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged as a field.
# (`color_message` is uvicorn's copy of the message with terminal colours.)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: timestamp (UTC), level, logger, message, request_id, then any extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = _redact_value(value)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = redact(record.exc_text)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """For a person at a terminal: the classic line, the request id when there is one, redacted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        return redact(f"{line} [request_id={request_id}]" if request_id else line)


def configure_logging(
    fmt: Literal["json", "text"] = "json", level: str | int = "INFO", stream: TextIO | None = None
) -> logging.Handler:
    """Routes every logger (uvicorn's and Temporal's too) through one redacting handler on stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Uvicorn's own handlers would print plain text; let its records reach ours instead. Its access log
    # names raw paths (an invitation link carries its token): portico/observability.py logs each request
    # by route template instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    return handler
