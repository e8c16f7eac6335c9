"""The update validators, as functions of the engagement's state: each refuses what cannot happen now.

They only read the state (a validator must not change anything) and raise `InvalidRequest`, which the
API shows to the person as it is.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta

from temporalio.exceptions import ApplicationError

from core.enums import Channel, Role
from workflows.state import PipelineState
from workflows.types import (
    ChangeContact,
    ChangeTimeZone,
    DeclineDocument,
    DocumentStatus,
    LinkAccount,
    Register,
    RequestCode,
    SaveSignature,
    SendDocuments,
    SendInvite,
    SignDocument,
    SignerProfile,
    SignerStatus,
    SignOnPaper,
    Unlock,
    VerifyCode,
)


def invalid(message: str) -> ApplicationError:
    """A rejection the API shows to the person as it is."""
    return ApplicationError(message, type="InvalidRequest", non_retryable=True)


def check_open(state: PipelineState) -> None:
    if state.cancelled:
        raise invalid("This engagement was cancelled.")
    if state.completed:
        raise invalid("This engagement is complete.")


def profile(state: PipelineState, role: str) -> SignerProfile:
    found = state.profiles.get(role)
    if found is None:
        raise invalid(f"This return has no {role}.")
    return found


def registered(state: PipelineState, role: str) -> SignerStatus:
    profile(state, role)
    signer = state.signers[role]
    if signer.registered_at is None:
        raise invalid("Create your account first.")
    return signer


def verified(state: PipelineState, role: str) -> SignerStatus:
    signer = registered(state, role)
    if signer.verified_at is None:
        raise invalid("Verify your account first.")
    return signer


def check_invite(state: PipelineState, req: SendInvite) -> None:
    check_open(state)
    signer_profile = profile(state, req.role)
    if req.channel not in (Channel.EMAIL, Channel.SMS):
        raise invalid("Choose email or text message.")
    expected = signer_profile.digest_for(req.channel)
    if expected is None:
        raise invalid(
            f"The return has no {'email address' if req.channel == Channel.EMAIL else 'phone number'}"
            f" for the {req.role}."
        )
    if req.destination_digest is not None and not hmac.compare_digest(req.destination_digest, expected):
        raise invalid("Invitations go only to the contact on the return.")
    if state.signers[req.role].registered_at is not None:
        raise invalid(f"The {req.role} has already created an account.")


def check_change_contact(state: PipelineState, req: ChangeContact) -> None:
    check_open(state)
    profile(state, req.role)
    if req.channel not in (Channel.EMAIL, Channel.SMS):
        raise invalid("Choose email or text message.")
    if not req.digest or not req.masked:
        raise invalid("Enter the new email address or phone number.")
    if state.signers[req.role].registered_at is not None:
        raise invalid(
            f"The {req.role} has already created an account: they change their contact details in the portal."
        )


def check_change_time_zone(state: PipelineState, req: ChangeTimeZone) -> None:
    check_open(state)
    if not req.time_zone or len(req.time_zone) > 64:
        raise invalid("Choose a time zone from the list.")
    profile(state, req.role)


def check_register(state: PipelineState, req: Register | LinkAccount) -> None:
    check_open(state)
    signer = state.signers[profile(state, req.role).role]
    if signer.registered_at is not None:
        raise invalid("An account already exists for this invitation. Log in instead.")
    if signer.invite_seq == 0 or req.invite_seq != signer.invite_seq:
        raise invalid("This invitation link has been replaced. Use the newest link, or ask your preparer.")
    if signer.invite_expired:
        raise invalid("This invitation has expired. Ask your preparer to send a new link.")
    if signer.registration_locked:
        raise invalid("This invitation is locked. Ask your preparer to send a new link.")


def check_code_lock(state: PipelineState, role: str) -> None:
    if state.tries_left(role) == 0:
        raise invalid("Too many wrong codes. Ask your preparer to unlock your account.")


def check_request_code(state: PipelineState, req: RequestCode, now: datetime) -> None:
    check_open(state)
    signer = registered(state, req.role)
    if (
        req.channel not in (Channel.EMAIL, Channel.SMS)
        or state.profiles[req.role].digest_for(req.channel) is None
    ):
        raise invalid("That way of receiving a code is not available.")
    if signer.verified_at is not None:
        raise invalid("Your account is already verified.")
    check_code_lock(state, req.role)
    if signer.code_sent_at is not None:
        wait = signer.code_sent_at + state.schedule.code_resend_cooldown - now
        if wait > timedelta(0):
            raise invalid(
                f"Please wait {int(wait.total_seconds()) + 1} seconds before asking for a new code."
            )


def check_verify(state: PipelineState, req: VerifyCode) -> None:
    check_open(state)
    signer = registered(state, req.role)
    if signer.verified_at is not None:
        raise invalid("Your account is already verified.")
    check_code_lock(state, req.role)
    if signer.code_seq == 0:
        raise invalid("Ask for a code first.")


def check_send_documents(state: PipelineState, req: SendDocuments) -> None:
    check_open(state)
    if state.finalising:
        raise invalid(
            "Every signature is in and the documents are being sealed: send more documents in a new "
            "engagement."
        )
    if state.signers[Role.TAXPAYER].verified_at is None:
        raise invalid("Documents can be sent once the taxpayer has verified their portal account.")
    if not req.documents:
        raise invalid("Choose at least one document.")
    for spec in req.documents:
        unknown = set(spec.required_roles) - set(state.profiles)
        if unknown:
            raise invalid(f"{spec.name}: this return has no {', '.join(sorted(unknown))} to sign.")
    if req.replaces is not None:
        old_copy = state.documents.get(req.replaces)
        if old_copy is None:
            raise invalid("No such document to correct.")
        if not old_copy.live:
            raise invalid(f"{old_copy.name} was already replaced by a corrected copy.")
        if old_copy.fully_signed:
            raise invalid(f"{old_copy.name} is already signed: send a new document instead.")
        if len(req.documents) != 1:
            raise invalid("Send one corrected copy in place of one document.")


def check_save_signature(state: PipelineState, req: SaveSignature) -> None:
    check_open(state)
    verified(state, req.role)


def check_sign(state: PipelineState, req: SignDocument) -> None:
    check_open(state)
    signer = verified(state, req.role)
    doc = _unsigned(state, req.document_id, req.role)
    if req.role in doc.declined:
        raise invalid(f"You declined {doc.name}. Your preparer will send a corrected copy.")
    _check_turn(state, doc, req.role)
    if not signer.signature_on_file:
        raise invalid("Add your signature first.")


def _check_turn(state: PipelineState, doc: DocumentStatus, role: str) -> None:
    first = state.waits_for(doc, role)
    if first is not None:
        name = state.profiles[first].display_name
        raise invalid(f"{name} signs {doc.name} first: you can sign it once they have.")


def check_decline(state: PipelineState, req: DeclineDocument) -> None:
    check_open(state)
    verified(state, req.role)
    doc = _unsigned(state, req.document_id, req.role)
    if req.role in doc.declined:
        raise invalid(f"You already declined {doc.name}.")
    if not req.reason.strip():
        raise invalid("Tell your preparer why you decline, so they can correct it.")
    if len(req.reason) > MAX_REASON:
        raise invalid(f"Keep the reason under {MAX_REASON:,} characters.")


def check_sign_on_paper(state: PipelineState, req: SignOnPaper) -> None:
    check_open(state)
    if not req.roles:
        raise invalid("Choose whose signature the scan shows.")
    client = req.actor.kind == "taxpayer"
    if client:  # a client vouches for their own signature only
        if req.roles != [req.actor.id]:
            raise invalid("Upload the scan of your own signature.")
        verified(state, req.actor.id)
    for role in req.roles:
        profile(state, role)
        doc = _unsigned(state, req.document_id, role)
        if client:  # the preparer, holding the hand-signed paper, records it in any order
            _check_turn(state, doc, role)


MAX_REASON = 1000


def _unsigned(state: PipelineState, document_id: int, role: str) -> DocumentStatus:
    """The document, when `role` may still sign it now."""
    doc = state.documents.get(document_id)
    if doc is None:
        raise invalid("No such document.")
    if not doc.live:
        raise invalid(f"{doc.name} was replaced by a corrected copy: sign that one instead.")
    if role not in doc.required_roles:
        raise invalid(f"{doc.name} does not need the {role}'s signature.")
    if role in doc.signed_roles or (document_id, role) in state.signing_in_progress:
        raise invalid(f"{doc.name} is already signed.")
    if state.finalising:
        raise invalid("Every signature is in and the documents are being sealed.")
    return doc


def check_unlock(state: PipelineState, req: Unlock) -> None:
    check_open(state)
    profile(state, req.role)
