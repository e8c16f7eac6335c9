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
    DECLINED = "declined"  # a signer declined a document: the preparer corrects it or takes it on paper


class Role(StrEnum):
    TAXPAYER = "taxpayer"
    SPOUSE = "spouse"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class Direction(StrEnum):
    TO_CLIENT = "to_client"
    TO_PREPARER = "to_preparer"


class SignatureStatus(StrEnum):
    """Where one document's signatures stand: the one list the portal, the dashboard, the engagement page
    and the API all show."""

    AWAITING = "awaiting_signature"
    PARTIAL = "partially_signed"  # a joint document one spouse has signed
    E_SIGNED = "e_signed"
    DECLINED = "declined"
    MANUAL = "manually_signed"  # every signature in, at least one of them on paper
    DOWNLOADED = "downloaded_by_firm"  # signed, and the firm has downloaded the signed copy
    REPLACED = "replaced"  # a corrected copy took its place: nothing more is signed on this one


SIGNATURE_STATUS_LABELS: dict[str, str] = {
    SignatureStatus.AWAITING: "Awaiting signature",
    SignatureStatus.PARTIAL: "Partially signed",
    SignatureStatus.E_SIGNED: "E-signed",
    SignatureStatus.DECLINED: "Declined",
    SignatureStatus.MANUAL: "Manually signed",
    SignatureStatus.DOWNLOADED: "Downloaded by the firm",
    SignatureStatus.REPLACED: "Replaced by a corrected copy",
}


def signature_status(
    required: int,
    signed: int,
    *,
    declined: bool = False,
    on_paper: bool = False,
    replaced: bool = False,
    downloaded: bool = False,
) -> SignatureStatus | None:
    """One document's status from its counts; None for a document nobody signs."""
    if required == 0:
        return None
    if replaced:
        return SignatureStatus.REPLACED
    if declined:
        return SignatureStatus.DECLINED
    if signed < required:
        return SignatureStatus.PARTIAL if signed else SignatureStatus.AWAITING
    if downloaded:
        return SignatureStatus.DOWNLOADED
    return SignatureStatus.MANUAL if on_paper else SignatureStatus.E_SIGNED
