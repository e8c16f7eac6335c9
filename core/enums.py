"""The words every floor shares: pipeline stages, signer roles, message channels, upload directions.

Plain enums with no heavy imports, so the workflow sandbox, the database tables and the pages all name a
stage or a role the same way.
"""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    CREATED = "created"
    INVITED = "invited"
    REGISTERED = "registered"
    VERIFIED = "verified"
    DOCUMENTS_SENT = "documents_sent"
    SIGNING = "signing"
    SIGNED = "signed"
    COMPLETED = "completed"
    NEEDS_ATTENTION = "needs_attention"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Role(StrEnum):
    TAXPAYER = "taxpayer"
    SPOUSE = "spouse"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class Direction(StrEnum):
    TO_CLIENT = "to_client"
    TO_PREPARER = "to_preparer"
