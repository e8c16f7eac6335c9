"""What the Account page shows of a client's security settings: sign-in emails, sessions, remembered
browsers (the rules and the reading are in `services.security_settings`)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request

from services import security_settings
from services.context import TaxpayerContext

SECURITY_NOTICES = {
    "email-added": "The email address is added. You can sign in with it.",
    "email-removed": "The email address is removed.",
    "session-ended": "That session is logged out.",
    "device-forgotten": "That browser is forgotten. Its next login asks for a code.",
}

_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"))
_SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("Mac OS X", "Mac"),
    ("Macintosh", "Mac"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def device_name(user_agent: str) -> str:
    """`Chrome on Windows` from a user agent string; the start of the string when it is none we know."""
    browser = next((name for mark, name in _BROWSERS if mark in user_agent), None)
    if browser is None and "Safari/" in user_agent:
        browser = "Safari"
    system = next((name for mark, name in _SYSTEMS if mark in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    short = re.sub(r"\s+", " ", user_agent).strip()[:40]
    return browser or system or short or "Unknown browser"


def security_view(ctx: TaxpayerContext, request: Request) -> dict[str, Any]:
    """The Account page's context for its security settings."""
    return {
        "emails": security_settings.emails(ctx),
        "sessions": security_settings.signed_in(ctx, request),
        "devices": security_settings.remembered(ctx, request),
        "device_name": device_name,
    }
