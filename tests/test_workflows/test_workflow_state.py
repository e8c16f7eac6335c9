"""The engagement's state object and its validators, without Temporal: the rules as plain functions."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from activities.types import DocumentSpec, Transition
from core.actor import SYSTEM, Actor
from core.enums import Channel, Role, Stage
from core.progress import Progress, SignerProgress
from workflows import validators
from workflows.state import PREPARER, PipelineState
from workflows.types import (
    DocumentStatus,
    EngagementInput,
    Register,
    RequestCode,
    Schedule,
    SendDocuments,
    SendInvite,
    SignDocument,
    SignerProfile,
    VerifyCode,
)

T0 = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
CLIENT = Actor(kind="taxpayer", id="taxpayer", ip="198.51.100.7")


def profile(role: Role, *, phone: bool = True) -> SignerProfile:
    return SignerProfile(
        role=role,
        display_name=f"{role.capitalize()} Jones",
        time_zone="America/New_York",
        identity_digest=f"id-{role}",
        email_digest=f"email-{role}",
        phone_digest=f"phone-{role}" if phone else None,
        masked_email="she*****com",
        masked_phone="70*****97" if phone else None,
    )


def new_state(*, joint: bool = False, spouse_phone: bool = True) -> PipelineState:
    signers = [profile(Role.TAXPAYER)] + ([profile(Role.SPOUSE, phone=spouse_phone)] if joint else [])
    inp = EngagementInput(engagement_id=1, firm_id=2, preparer_id=3, tax_year=2024, signers=signers)
    return PipelineState.start(inp, T0)


def verified(state: PipelineState, role: Role, at: datetime = T0) -> None:
    state.invite(role, Channel.EMAIL, at)
    signer = state.signers[role]
    signer.registered_at = signer.verified_at = at


def send(state: PipelineState, *docs: tuple[int, list[str]], at: datetime = T0) -> None:
    for doc_id, roles in docs:
        state.documents[doc_id] = DocumentStatus(doc_id, f"doc {doc_id}", roles)
    state.documents_sent_at = at


def refusal(check: object, *args: object) -> str:
    with pytest.raises(ApplicationError) as caught:
        check(*args)  # type: ignore[operator]
    assert caught.value.type == "InvalidRequest" and caught.value.non_retryable
    return caught.value.message


def spec(name: str, roles: list[str]) -> DocumentSpec:
    return DocumentSpec("ref", "key", name, "sha", 10, 1, required_roles=roles)


# ---- stage and waiting -----------------------------------------------------------------------------


def test_the_taxpayer_leads_the_early_stages_and_waits_move_with_them() -> None:
    state = new_state(joint=True)
    assert (state.stage, state.waiting()) == (Stage.CREATED, (PREPARER, T0))
    state.invite(Role.TAXPAYER, Channel.SMS, T0 + HOUR)
    assert (state.stage, state.waiting()) == (Stage.INVITED, (Role.TAXPAYER, T0 + HOUR))
    state.signers[Role.SPOUSE].registered_at = T0 + 2 * HOUR  # the spouse's progress does not count
    assert state.stage == Stage.INVITED
    state.signers[Role.TAXPAYER].invite_expired = True
    assert (state.stage, state.waiting()) == (Stage.EXPIRED, (PREPARER, T0 + HOUR))
    verified(state, Role.TAXPAYER, T0 + 3 * HOUR)
    assert (state.stage, state.waiting()) == (Stage.VERIFIED, (PREPARER, T0 + 3 * HOUR))


def test_attention_overrides_the_stage_but_not_an_expired_link_and_closing_ends_all_waiting() -> None:
    state = new_state()
    state.invite(Role.TAXPAYER, Channel.EMAIL, T0)
    state.flag("no answer", T0 + HOUR)
    state.flag("a later reason", T0 + 2 * HOUR)  # the first reason and its time stand
    assert (state.stage, state.attention, state.waiting()) == (
        Stage.NEEDS_ATTENTION,
        "no answer",
        (PREPARER, T0 + HOUR),
    )
    state.signers[Role.TAXPAYER].invite_expired = True
    assert state.stage == Stage.EXPIRED
    state.cancelled = True
    assert (state.stage, state.waiting()) == (Stage.CANCELLED, (None, None))


def test_signing_stages_and_who_still_owes_a_signature() -> None:
    state = new_state(joint=True)
    verified(state, Role.TAXPAYER)
    send(state, (10, ["taxpayer", "spouse"]), (11, []), at=T0 + HOUR)
    assert state.stage == Stage.DOCUMENTS_SENT
    assert state.roles_owing_signatures() == ["spouse", "taxpayer"]
    # The spouse was never invited: the preparer must act before anybody can be reminded.
    assert state.waiting() == (PREPARER, T0 + HOUR)
    assert state.remindable() == ["taxpayer"]
    state.documents[10].signed_roles.append("taxpayer")
    state.last_signed_at = T0 + 2 * HOUR
    assert state.stage == Stage.SIGNING and not state.all_signed()
    verified(state, Role.SPOUSE)
    assert state.waiting() == ("spouse", T0 + 2 * HOUR)
    state.documents[10].signed_roles.append("spouse")
    assert (state.stage, state.all_signed(), state.waiting()) == (
        Stage.SIGNED,
        True,
        ("system", T0 + 2 * HOUR),
    )


def test_documents_nobody_signs_never_make_an_engagement_signed() -> None:
    state = new_state()
    verified(state, Role.TAXPAYER)
    send(state, (10, []))
    assert not state.all_signed() and state.stage == Stage.DOCUMENTS_SENT


# ---- tries, locks ----------------------------------------------------------------------------------


def test_wrong_codes_count_down_to_a_lock_that_unlock_lifts() -> None:
    state = new_state()
    limit = state.schedule.code_max_failures
    state.signers[Role.TAXPAYER].code_failures = limit - 1
    assert (state.tries_left(Role.TAXPAYER), state.locked_out(Role.TAXPAYER)) == (1, False)
    state.signers[Role.TAXPAYER].code_failures = limit + 2  # never below zero
    assert (state.tries_left(Role.TAXPAYER), state.locked_out(Role.TAXPAYER)) == (0, True)
    state.flag("too many wrong codes", T0)
    state.unlock(Role.TAXPAYER)
    assert (state.tries_left(Role.TAXPAYER), state.locked_out(Role.TAXPAYER), state.attention) == (
        limit,
        False,
        None,
    )


def test_identity_mismatches_lock_the_invitation_and_a_new_invitation_reopens_it() -> None:
    inp = new_state().inp
    state = PipelineState.start(dataclasses.replace(inp, schedule=Schedule(registration_max_failures=2)), T0)
    state.invite(Role.TAXPAYER, Channel.EMAIL, T0)
    assert state.registration_mismatch(Role.TAXPAYER) == 1 and not state.locked_out(Role.TAXPAYER)
    assert state.registration_mismatch(Role.TAXPAYER) == 0 and state.locked_out(Role.TAXPAYER)
    assert state.invite(Role.TAXPAYER, Channel.SMS, T0 + HOUR).invite_seq == 2
    assert not state.locked_out(Role.TAXPAYER) and state.signers[Role.TAXPAYER].registration_failures == 0


def test_identity_needs_the_identity_and_one_contact_to_match() -> None:
    state = new_state()

    def attempt(identity: str, email: str, phone: str) -> bool:
        req = Register("taxpayer", 1, identity, email, phone, "u", "h", "e", "p", CLIENT)
        return state.identity_matches(req)

    assert attempt("id-taxpayer", "nope", "phone-taxpayer")
    assert attempt("id-taxpayer", "email-taxpayer", "nope")
    assert not attempt("id-taxpayer", "nope", "nope")
    assert not attempt("id-spouse", "email-taxpayer", "phone-taxpayer")


# ---- the progress record ---------------------------------------------------------------------------


def test_progress_reports_each_signer_and_the_documents() -> None:
    state = new_state(joint=True)
    verified(state, Role.TAXPAYER)
    state.invite(Role.SPOUSE, Channel.EMAIL, T0 + HOUR)
    state.signers[Role.SPOUSE].registration_locked = True
    send(state, (10, ["taxpayer"]), (11, ["taxpayer", "spouse"]), (12, []))
    state.documents[10].signed_roles.append("taxpayer")
    progress = state.progress()
    assert progress.signers == [
        SignerProgress(Role.TAXPAYER, "Taxpayer Jones", Stage.VERIFIED, locked_out=False, step_since=T0),
        SignerProgress(Role.SPOUSE, "Spouse Jones", Stage.INVITED, locked_out=True, step_since=T0 + HOUR),
    ]
    assert (progress.documents, progress.documents_to_sign, progress.documents_signed) == (3, 2, 1)
    assert Progress.from_json(progress.to_json()) == progress
    assert state.status().progress == progress


def test_progress_reads_the_string_projections_written_before_it_and_refuses_nothing() -> None:
    old = {"taxpayer_step": "expired", "taxpayer_name": "Shelby Jones", "documents": "2"}
    old |= {"documents_to_sign": "2", "documents_signed": "2"}
    progress = Progress.from_json(json.dumps(old))
    assert progress.step_of(Role.TAXPAYER) == Stage.EXPIRED and progress.signer(Role.SPOUSE) is None
    assert progress.all_documents_signed and not progress.locked_out(Role.TAXPAYER)
    assert Progress.from_json("not json") == Progress() == Progress.from_json("[1]")
    strange = Progress.from_json('{"taxpayer_step": "signing", "documents": "many"}')
    assert (strange.step_of(Role.TAXPAYER), strange.documents) == (Stage.CREATED, 0)


def test_a_transition_recorded_by_the_earlier_workflow_still_decodes() -> None:
    # An activity task scheduled before the upgrade: no `progress`, its progress as strings in `detail`.
    payload = {
        "workflow_id": "engagement-1",
        "engagement_id": 1,
        "firm_id": 2,
        "version": 4,
        "stage": "invited",
        "waiting_on": "taxpayer",
        "waiting_since": T0.isoformat(),
        "reminders_sent": 0,
        "needs_attention": False,
        "last_activity_at": T0.isoformat(),
        "event": {"action": "invite.sent", "actor": dataclasses.asdict(SYSTEM), "at": T0.isoformat()},
        "detail": {"taxpayer_step": "invited", "taxpayer_name": "Shelby Jones", "documents": "0"},
    }
    converter = pydantic_data_converter.payload_converter
    (encoded,) = converter.to_payloads([payload])
    (transition,) = converter.from_payloads([encoded], [Transition])
    assert transition.stage == Stage.INVITED and transition.progress is None
    assert transition.projection().signers == [SignerProgress(Role.TAXPAYER, "Shelby Jones", Stage.INVITED)]


# ---- validators ------------------------------------------------------------------------------------


def test_invitations_go_only_to_a_contact_on_the_return_and_only_before_an_account() -> None:
    state = new_state(joint=True, spouse_phone=False)
    assert "email or text" in refusal(validators.check_invite, state, SendInvite("taxpayer", "fax", CLIENT))
    sms_to_spouse = SendInvite("spouse", Channel.SMS, CLIENT)
    assert "no phone number for the spouse" in refusal(validators.check_invite, state, sms_to_spouse)
    elsewhere = SendInvite("taxpayer", Channel.EMAIL, CLIENT, destination_digest="email-spouse")
    assert "only to the contact" in refusal(validators.check_invite, state, elsewhere)
    validators.check_invite(state, SendInvite("taxpayer", Channel.EMAIL, CLIENT, "email-taxpayer"))
    assert "no dependent" in refusal(validators.check_invite, state, SendInvite("dependent", "email", CLIENT))
    state.signers[Role.TAXPAYER].registered_at = T0
    assert "already created" in refusal(
        validators.check_invite, state, SendInvite("taxpayer", "email", CLIENT)
    )
    state.cancelled = True
    assert "cancelled" in refusal(validators.check_invite, state, SendInvite("spouse", "email", CLIENT))


def test_registration_needs_the_newest_open_link() -> None:
    state = new_state()

    def register(seq: int) -> Register:
        return Register("taxpayer", seq, "id", "e", "p", "u", "h", "e", "p", CLIENT)

    assert "replaced" in refusal(validators.check_register, state, register(0))
    state.invite(Role.TAXPAYER, Channel.EMAIL, T0)
    state.invite(Role.TAXPAYER, Channel.EMAIL, T0)
    assert "replaced" in refusal(validators.check_register, state, register(1))
    validators.check_register(state, register(2))
    state.signers[Role.TAXPAYER].registration_locked = True
    assert "locked" in refusal(validators.check_register, state, register(2))
    state.signers[Role.TAXPAYER].invite_expired = True
    assert "expired" in refusal(validators.check_register, state, register(2))


def test_codes_wait_for_the_cooldown_and_stop_at_the_lock() -> None:
    state = new_state()
    state.invite(Role.TAXPAYER, Channel.EMAIL, T0)
    ask = RequestCode("taxpayer", Channel.EMAIL, CLIENT)
    assert "Create your account" in refusal(validators.check_request_code, state, ask, T0)
    state.signers[Role.TAXPAYER].registered_at = T0
    assert "Ask for a code first" in refusal(
        validators.check_verify, state, VerifyCode("taxpayer", "d", CLIENT)
    )
    state.code_requested(Role.TAXPAYER, Channel.EMAIL, T0)
    cooldown = state.schedule.code_resend_cooldown
    assert f"wait {int(cooldown.total_seconds())} seconds" in refusal(
        validators.check_request_code, state, ask, T0 + timedelta(seconds=1)
    )
    validators.check_request_code(state, ask, T0 + cooldown)
    validators.check_verify(state, VerifyCode("taxpayer", "d", CLIENT))
    state.signers[Role.TAXPAYER].code_failures = state.schedule.code_max_failures
    assert "unlock" in refusal(validators.check_request_code, state, ask, T0 + cooldown)
    assert "unlock" in refusal(validators.check_verify, state, VerifyCode("taxpayer", "d", CLIENT))


def test_documents_wait_for_the_verified_taxpayer_and_name_only_signers_of_the_return() -> None:
    state = new_state()
    docs = SendDocuments([spec("8879", ["taxpayer"])], SYSTEM)
    assert "once the taxpayer has verified" in refusal(validators.check_send_documents, state, docs)
    verified(state, Role.TAXPAYER)
    validators.check_send_documents(state, docs)
    assert "at least one" in refusal(validators.check_send_documents, state, SendDocuments([], SYSTEM))
    joint_doc = SendDocuments([spec("1040", ["taxpayer", "spouse"])], SYSTEM)
    assert "1040: this return has no spouse" in refusal(validators.check_send_documents, state, joint_doc)
    state.finalising = True
    assert "being sealed" in refusal(validators.check_send_documents, state, docs)


def test_a_document_is_signed_once_by_each_signer_it_needs() -> None:
    state = new_state(joint=True)
    verified(state, Role.TAXPAYER)
    send(state, (10, ["taxpayer"]))
    sign = SignDocument("taxpayer", 10, CLIENT)
    assert "signature first" in refusal(validators.check_sign, state, sign)
    state.signers[Role.TAXPAYER].signature_on_file = True
    validators.check_sign(state, sign)
    assert "No such document" in refusal(validators.check_sign, state, SignDocument("taxpayer", 99, CLIENT))
    assert "Create your account" in refusal(validators.check_sign, state, SignDocument("spouse", 10, CLIENT))
    verified(state, Role.SPOUSE)
    assert "does not need the spouse" in refusal(
        validators.check_sign, state, SignDocument("spouse", 10, CLIENT)
    )
    state.signing_in_progress.add((10, "taxpayer"))
    assert "already signed" in refusal(validators.check_sign, state, sign)
    state.signing_in_progress.clear()
    state.documents[10].signed_roles.append("taxpayer")
    assert "already signed" in refusal(validators.check_sign, state, sign)
