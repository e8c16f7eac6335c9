"""Where an engagement stands, derived from the workflow's state: stage, who it waits on, since when."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from workflows.types import Stage

if TYPE_CHECKING:
    from workflows.engagement import EngagementWorkflow


def stage_of(wf: EngagementWorkflow) -> str:
    if wf.cancelled:
        return Stage.CANCELLED
    if wf.completed:
        return Stage.COMPLETED
    stage = main_stage(wf)
    # An expired link says more than "needs attention": both wait on the preparer, this one says why.
    if wf.attention is not None and stage != Stage.EXPIRED:
        return Stage.NEEDS_ATTENTION
    return stage


def main_stage(wf: EngagementWorkflow) -> str:
    """The furthest step reached, ignoring side outcomes. The taxpayer's progress leads the early steps."""
    taxpayer = wf.signers["taxpayer"]
    if wf.documents:
        if wf._all_signed():
            return Stage.SIGNED
        if any(doc.signed_roles for doc in wf.documents.values()):
            return Stage.SIGNING
        return Stage.DOCUMENTS_SENT
    if taxpayer.verified_at is not None:
        return Stage.VERIFIED
    if taxpayer.registered_at is not None:
        return Stage.REGISTERED
    if taxpayer.invite_expired:
        return Stage.EXPIRED
    if taxpayer.invite_seq > 0:
        return Stage.INVITED
    return Stage.CREATED


def waiting_on(wf: EngagementWorkflow) -> tuple[str | None, datetime | None]:
    """Who must act next ("preparer", "taxpayer", "spouse", "taxpayer, spouse") and since when."""
    if wf.cancelled or wf.completed:
        return None, None
    if wf.attention is not None:
        return "preparer", wf.attention_since
    taxpayer = wf.signers["taxpayer"]
    stage = main_stage(wf)
    if stage in (Stage.CREATED, Stage.EXPIRED):
        return "preparer", taxpayer.invited_at or wf.created_at
    if stage == Stage.INVITED:
        return "taxpayer", taxpayer.invited_at
    if stage == Stage.REGISTERED:
        return "taxpayer", taxpayer.registered_at
    if stage == Stage.VERIFIED:
        return "preparer", taxpayer.verified_at
    if stage == Stage.SIGNED:
        return "system", wf.last_signed_at
    owing = wf._roles_owing_signatures()
    if any(wf.signers[role].invite_seq == 0 for role in owing):
        return "preparer", wf.documents_sent_at  # the spouse must be invited before they can sign
    return ", ".join(owing), wf.last_signed_at or wf.documents_sent_at


def summary(wf: EngagementWorkflow) -> dict[str, str]:
    """Per-signer progress for the dashboard's step indicator, as flat strings."""
    out: dict[str, str] = {}
    for role, signer in wf.signers.items():
        step = "created"
        if signer.invite_seq:
            step = "expired" if signer.invite_expired else "invited"
        if signer.registered_at:
            step = "registered"
        if signer.verified_at:
            step = "verified"
        out[f"{role}_step"] = step
        out[f"{role}_name"] = wf.profiles[role].display_name
    owing = [doc for doc in wf.documents.values() if doc.required_roles]
    out["documents"] = str(len(wf.documents))
    out["documents_signed"] = str(sum(doc.fully_signed for doc in owing))
    out["documents_to_sign"] = str(len(owing))
    return out
