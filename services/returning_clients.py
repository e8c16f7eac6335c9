"""A returning client adds a new return to the account they already have.

The invitation to someone whose firm already knows them (a verified account of the same firm uses the email
or phone on the return) says so and offers to sign in. Signed in, the person gives the same identity details
as registration (last name and last four of the SSN); the account's own verified email and phone stand in
for the contact. The workflow decides (`link_account`): a mismatch links nothing and counts toward the
invitation's lock exactly as a failed registration does.
"""

from __future__ import annotations

import contextlib

from sqlmodel import Session, col, select
from temporalio.client import Client

from core.account_emails import accounts_with_email
from core.client_accounts import account_of_signer
from core.context import Resources
from core.identity import (
    InvalidContact,
    contact_digest,
    identity_digest,
    normalise_email,
    normalise_phone,
)
from core.models import Engagement, TaxpayerAccount
from services import Refusal, ServiceError, workflow_calls
from services.accounts import LOCKED, MISMATCH, Invitation, invitation_state, read_invitation
from services.context import TaxpayerContext
from services.schemas import InvitationOut
from workflows.engagement import EngagementWorkflow
from workflows.types import LinkAccount, RegisterResult

OTHER_FIRM = (
    "This invitation is from another firm, and an account belongs to one firm. Log out, then open the link "
    "again to create an account with them."
)


def account_for_invitation(db: Session, invitation: Invitation) -> TaxpayerAccount | None:
    """A verified account of the invitation's firm that uses its email (any verified one) or phone: the
    person, most likely, already has an account with this firm. (Said only to whoever holds the
    invitation.)"""
    signer = invitation.signer
    firm_id = invitation.engagement.firm_id
    if account_of_signer(db, signer.id or 0) is not None:
        return None
    with contextlib.suppress(InvalidContact):  # any verified email of the account, not only its primary one
        by_email = accounts_with_email(db, normalise_email(signer.email or ""), firm_id)
        if by_email:
            return by_email[0]
    with contextlib.suppress(InvalidContact):
        return db.exec(
            select(TaxpayerAccount).where(
                TaxpayerAccount.firm_id == firm_id,
                col(TaxpayerAccount.verified_at).is_not(None),
                col(TaxpayerAccount.phone) == normalise_phone(signer.phone or ""),
            )
        ).first()
    return None


async def invitation_for(
    db: Session, resources: Resources, client: Client, token: str
) -> tuple[InvitationOut, Invitation]:
    """The invitation's state (`services.accounts.invitation_state`), saying whether the person already
    has an account with the firm, when the invitation is still open."""
    out, invitation = await invitation_state(db, resources, client, token)
    if out.state == "open" and account_for_invitation(db, invitation) is not None:
        out = out.model_copy(update={"has_account": True})
    return out, invitation


async def link_return(ctx: TaxpayerContext, token: str, *, last_name: str, ssn_last4: str) -> Engagement:
    """Adds the invitation's return to the signed-in client's account; answers its engagement."""
    invitation = read_invitation(ctx.db, ctx.resources, token)
    engagement, account = invitation.engagement, ctx.account
    if account.firm_id != engagement.firm_id:
        raise ServiceError(Refusal.CONFLICT, OTHER_FIRM)
    mine = account_of_signer(ctx.db, invitation.signer.id or 0)
    if mine is not None and mine.id == account.id:
        return engagement  # added already (a second click, or a retry after a timeout)
    last_name, ssn_last4 = last_name.strip(), ssn_last4.strip()
    if not last_name:
        raise ServiceError(Refusal.INVALID, "Enter your last name as on your tax return.", "last_name")
    if len(ssn_last4) != 4 or not ssn_last4.isdigit():
        raise ServiceError(Refusal.INVALID, "Enter the last four digits of your SSN.", "ssn_last4")
    cipher = ctx.resources.cipher
    email = _email_on_return(ctx.db, account, invitation)
    result: RegisterResult = await workflow_calls.update(
        ctx.client,
        engagement.id or 0,
        EngagementWorkflow.link_account,
        LinkAccount(
            role=invitation.signer.role.value,
            invite_seq=invitation.invite_seq,
            identity_digest=identity_digest(cipher, last_name, ssn_last4),
            email_digest=contact_digest(cipher, "email", email) if email else "",
            phone_digest=contact_digest(cipher, "sms", account.phone) if account.phone else "",
            account_id=account.id or 0,
            actor=ctx.actor,
        ),
    )
    if not result.ok:
        if result.locked:
            raise ServiceError(Refusal.LOCKED, LOCKED)
        left = "1 attempt" if result.attempts_left == 1 else f"{result.attempts_left} attempts"
        raise ServiceError(Refusal.INVALID, f"{MISMATCH} ({left} left)")
    return engagement


def _email_on_return(db: Session, account: TaxpayerAccount, invitation: Invitation) -> str:
    """The account's verified email that the return names, when one does (an invitation to an added
    address); else the primary one. It stands in for the contact in the identity match."""
    with contextlib.suppress(InvalidContact):
        on_return = normalise_email(invitation.signer.email or "")
        if any(a.id == account.id for a in accounts_with_email(db, on_return, account.firm_id)):
            return on_return
    return account.email
