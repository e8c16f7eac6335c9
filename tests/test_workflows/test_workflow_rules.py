"""The engagement workflow's rules: what its validators refuse and how its counters behave, driven on the
time-skipping server with in-memory activities (see workflow_harness)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from workflow_harness import PREPARER, Engagement, FakeActivities, document, engagement, refusal, signer

from workflows.engagement import EngagementWorkflow
from workflows.types import EngagementInput, Schedule, Unlock

WRONG = "not-the-right-digest"


async def registered(eng: Engagement, role: str = "taxpayer") -> None:
    await eng.invite(role)
    assert (await eng.register(role)).ok


async def wrong_codes(eng: Engagement, count: int) -> list[tuple[str, int]]:
    results = [await eng.verify_code(code_digest=WRONG) for _ in range(count)]
    return [(r.reason, r.tries_left) for r in results]


# ---- registration --------------------------------------------------------------------------------


async def test_identity_mismatches_count_down_then_lock(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping) as eng:
        await eng.invite()
        results = [await eng.register(identity_digest=WRONG) for _ in range(5)]
        assert [(r.ok, r.attempts_left, r.locked) for r in results] == [
            (False, 4, False),
            (False, 3, False),
            (False, 2, False),
            (False, 1, False),
            (False, 0, True),
        ]
        assert eng.fake.accounts == []
        state = await eng.status()
        assert (state.stage, state.waiting_on) == ("needs_attention", "preparer")
        assert state.signers["taxpayer"].registration_locked
        assert len(eng.sent("needs_attention", "preparer")) == 1
        assert [e.event.detail["attempts_left"] for e in eng.events("registration.mismatch")] == [
            "4",
            "3",
            "2",
            "1",
            "0",
        ]

        # Locked: even the right identity is refused, by the validator, without counting.
        message = await refusal(eng.register())
        assert message == "This invitation is locked. Ask your preparer to send a new link."
        assert len(eng.events("registration.mismatch")) == 5

        # A new invitation from the preparer is a fresh start.
        await eng.invite()
        assert (await eng.register()).ok
        assert (await eng.status()).stage == "registered"


async def test_correct_registration_after_two_mismatches(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping) as eng:
        await eng.invite()
        assert [(await eng.register(identity_digest=WRONG)).attempts_left for _ in range(2)] == [4, 3]
        result = await eng.register()
        assert result.ok and result.account_id == 101
        assert [a.role for a in eng.fake.accounts] == ["taxpayer"]
        state = await eng.status()
        assert (state.stage, state.waiting_on, state.needs_attention) == ("registered", "taxpayer", None)
        assert (
            await refusal(eng.register()) == "An account already exists for this invitation. Log in instead."
        )


# ---- one-time codes ------------------------------------------------------------------------------


async def test_wrong_code_decrements_tries_and_the_right_one_verifies(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping) as eng:
        await registered(eng)
        sent = await eng.request_code()
        assert sent.masked_destination == "she*****com"
        assert await wrong_codes(eng, 2) == [("wrong", 4), ("wrong", 3)]
        assert (await eng.verify_code()).ok
        state = await eng.status()
        assert state.stage == "verified"
        assert [v.channel for v in eng.fake.verifications] == ["email"]
        assert await refusal(eng.verify_code()) == "Your account is already verified."
        assert await refusal(eng.request_code()) == "Your account is already verified."


async def test_code_expires_after_ten_minutes(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping) as eng:
        await registered(eng)
        sent = await eng.request_code()
        code_sent_at = (await eng.status()).signers["taxpayer"].code_sent_at
        assert code_sent_at is not None
        assert sent.expires_at == code_sent_at + timedelta(minutes=10)

        await eng.advance(timedelta(minutes=11))
        result = await eng.verify_code()
        assert (result.ok, result.reason, result.tries_left) == (False, "expired", 5)  # not a wrong guess
        assert (await eng.status()).signers["taxpayer"].verified_at is None

        await eng.request_code()
        assert (await eng.verify_code()).ok


async def test_a_replaced_code_no_longer_works(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping) as eng:
        await registered(eng)
        await eng.request_code()
        first = eng.last_code_digest()
        await eng.advance(timedelta(seconds=31))
        await eng.request_code()
        result = await eng.verify_code(code_digest=first)
        assert (result.ok, result.reason, result.tries_left) == (False, "wrong", 4)
        assert (await eng.verify_code()).ok
        # Used: the same code again is refused, not accepted a second time.
        assert await refusal(eng.verify_code()) == "Your account is already verified."
        assert len(eng.fake.verifications) == 1


async def test_new_code_does_not_reset_wrong_tries_and_five_lock(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping) as eng:
        await registered(eng)
        await eng.request_code()
        assert await wrong_codes(eng, 3) == [("wrong", 4), ("wrong", 3), ("wrong", 2)]
        await eng.advance(timedelta(seconds=31))
        await eng.request_code()  # NIST SP 800-63B: a fresh code is no fresh set of guesses
        assert (await eng.status()).signers["taxpayer"].code_failures == 3
        assert await wrong_codes(eng, 2) == [("wrong", 1), ("locked", 0)]

        locked = "Too many wrong codes. Ask your preparer to unlock your account."
        await eng.advance(timedelta(seconds=31))
        assert await refusal(eng.request_code()) == locked
        assert await refusal(eng.verify_code()) == locked  # not even the right code gets through
        state = await eng.status()
        assert (state.stage, state.waiting_on) == ("needs_attention", "preparer")
        assert len(eng.sent("needs_attention", "preparer")) == 1
        assert len(eng.sent("code")) == 2

        await eng.handle.execute_update(EngagementWorkflow.unlock, Unlock(role="taxpayer", actor=PREPARER))
        assert (await eng.status()).stage == "registered"
        await eng.verify()


async def test_code_resend_waits_thirty_seconds(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping) as eng:
        await registered(eng)
        sent = await eng.request_code()
        code_sent_at = (await eng.status()).signers["taxpayer"].code_sent_at
        assert code_sent_at is not None
        assert sent.resend_after == code_sent_at + timedelta(seconds=30)

        message = await refusal(eng.request_code())
        assert message.startswith("Please wait ") and message.endswith(
            " seconds before asking for a new code."
        )
        assert 1 <= int(message.split()[2]) <= 30
        await eng.advance(timedelta(seconds=20))
        assert "Please wait" in await refusal(eng.request_code(channel="sms"))
        assert len(eng.sent("code")) == 1

        await eng.advance(timedelta(seconds=11))
        resent = await eng.request_code(channel="sms")
        assert resent.masked_destination == "70*****97"
        assert [m.request.channel for m in eng.sent("code")] == ["email", "sms"]
        assert (await eng.verify_code()).ok
        assert [v.channel for v in eng.fake.verifications] == ["sms"]


async def test_codes_need_an_account(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping) as eng:
        await eng.invite()
        assert await refusal(eng.request_code()) == "Create your account first."
        assert (await eng.register()).ok
        assert await refusal(eng.verify_code(code_digest=WRONG)) == "Ask for a code first."


# ---- documents and signatures --------------------------------------------------------------------


async def test_documents_wait_for_a_verified_taxpayer(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping) as eng:
        not_yet = "Documents can be sent once the taxpayer has verified their portal account."
        assert await refusal(eng.send_documents(document("Form 8879", "taxpayer"))) == not_yet
        await registered(eng)
        assert await refusal(eng.send_documents(document("Form 8879", "taxpayer"))) == not_yet
        assert eng.fake.published == []

        await eng.verify()
        assert await refusal(eng.send_documents()) == "Choose at least one document."
        assert "no spouse" in await refusal(eng.send_documents(document("Form 8879", "spouse")))
        assert await eng.send_documents(document("Form 8879", "taxpayer")) == [1]
        assert (await eng.status()).stage == "documents_sent"


async def test_signing_needs_a_signature_on_file(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping) as eng:
        await eng.onboard()
        form, invoice = await eng.send_documents(document("Form 8879", "taxpayer"), document("Invoice"))
        assert await refusal(eng.sign("taxpayer", form)) == "Add your signature first."
        await eng.save_signature()
        assert (
            await refusal(eng.sign("taxpayer", invoice)) == "Invoice does not need the taxpayer's signature."
        )
        assert await refusal(eng.sign("taxpayer", 999)) == "No such document."
        signed = await eng.sign("taxpayer", form)
        assert (signed.document_id, signed.role) == (form, "taxpayer")
        assert await eng.result() == "completed"
        assert [(s.document_id, s.role) for s in eng.fake.signatures] == [(form, "taxpayer")]


async def test_joint_return_completes_only_when_both_signed_everything(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping, ("taxpayer", "spouse")) as eng:
        await eng.onboard("taxpayer")
        await eng.onboard("spouse")
        form_1040, form_8879, letter = await eng.send_documents(
            document("Form 1040", "taxpayer", "spouse"),
            document("Form 8879", "taxpayer", "spouse"),
            document("Engagement letter", "taxpayer"),
        )
        await eng.save_signature("taxpayer")
        await eng.save_signature("spouse")
        steps = [  # who signs what, then who the engagement still waits on
            ("taxpayer", form_1040, "spouse, taxpayer"),
            ("taxpayer", form_8879, "spouse, taxpayer"),
            ("taxpayer", letter, "spouse"),
            ("spouse", form_1040, "spouse"),
        ]
        for role, doc_id, waiting_on in steps:
            await eng.sign(role, doc_id)
            state = await eng.status()
            assert (state.stage, state.waiting_on) == ("signing", waiting_on), (role, doc_id)
        assert await refusal(eng.sign("spouse", form_1040)) == "Form 1040 is already signed."
        assert await refusal(eng.sign("spouse", letter)) == (
            "Engagement letter does not need the spouse's signature."
        )
        assert eng.sent("completed") == []

        await eng.sign("spouse", form_8879)
        assert await eng.result() == "completed"
        state = await eng.status()
        assert state.stage == "completed"
        assert all(doc.fully_signed for doc in state.documents)
        assert eng.history()[-4:] == [
            "document.signed",
            "engagement.signed",
            "documents.sealed",
            "engagement.completed",
        ]
        assert eng.events("engagement.signed")[0].stage == "signed"
        assert len(eng.sent("completed", "preparer")) == 1


# ---- cancel --------------------------------------------------------------------------------------


async def test_cancel_stops_every_timer_and_refuses_further_updates(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping, ("taxpayer", "spouse")) as eng:
        await eng.onboard("taxpayer")
        await eng.send_documents(document("Form 8879", "taxpayer"))
        await eng.invite("spouse")  # an invitation, a document and their timers all pending
        assert await eng.cancel() == "cancelled"
        assert await eng.result() == "cancelled"
        before = len(eng.fake.messages)

        await eng.advance(timedelta(days=40))
        assert len(eng.fake.messages) == before
        assert eng.sent("signature_reminder") == eng.sent("invite_reminder") == []
        assert eng.events("invite.expired") == eng.events("engagement.needs_attention") == []
        assert (await eng.status()).stage == "cancelled"

        # The workflow has closed: the server itself turns every update away (the API says 409).
        for update in (eng.register("spouse"), eng.invite("spouse"), eng.cancel()):
            with pytest.raises(RPCError) as info:
                await update
            assert info.value.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION)


async def test_seal_waits_for_the_last_signature_to_reach_the_audit_log(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping) as eng:
        await eng.onboard()
        [form] = await eng.send_documents(document("Form 8879", "taxpayer"))
        await eng.save_signature()
        eng.fake.slow_actions["document.signed"] = 0.5  # a projection write slowed by a busy database
        await eng.sign("taxpayer", form)
        assert await eng.result() == "completed"
        journal = eng.fake.journal
        # The certificate sealed into the return must include the signature it certifies.
        assert journal.index("transition:document.signed") < journal.index("seal")


async def test_a_seal_cut_off_mid_way_is_retried_once_its_heartbeats_stop(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping) as eng:
        eng.fake.seal_hangs = 1
        await eng.onboard()
        [form] = await eng.send_documents(document("Form 8879", "taxpayer"))
        await eng.save_signature()
        await eng.sign("taxpayer", form)
        # The clock stands still while an activity runs, so the retry comes after the heartbeat timeout
        # (20 s) in real time; without it, only after the seal's five-minute start-to-close timeout.
        async with asyncio.timeout(120):
            assert await eng.result() == "completed"
        assert len(eng.fake.seals) == 2
        assert eng.fake.journal.count("seal") == 1


async def test_documents_sent_while_the_return_is_being_sealed_are_refused(
    time_skipping: WorkflowEnvironment,
) -> None:
    # A send whose answer was lost in an outage can reach the workflow late, after the last signature:
    # accepting it then would put a document on the portal that the sealed return never asks anyone to sign.
    async with engagement(time_skipping) as eng:
        await eng.onboard()
        [form] = await eng.send_documents(document("Form 8879", "taxpayer"))
        await eng.save_signature()
        eng.fake.slow_actions["engagement.signed"] = 1.0  # finalising has begun and is still writing
        await eng.sign("taxpayer", form)
        while "engagement.signed" not in eng.fake.started:  # the first step of finalising
            await asyncio.sleep(0.02)
        message = await refusal(eng.send_documents(document("Late copy", "taxpayer")))
        assert "being sealed" in message
        assert await eng.result() == "completed"
        assert len(eng.fake.published) == 1


async def test_documents_sent_just_before_sealing_wait_for_their_signature(
    time_skipping: WorkflowEnvironment,
) -> None:
    # The last signature is in, its audit entry still being written, when more documents arrive: the
    # engagement waits for them to be signed instead of sealing without them.
    async with engagement(time_skipping) as eng:
        await eng.onboard()
        [form] = await eng.send_documents(document("Form 8879", "taxpayer"))
        await eng.save_signature()
        eng.fake.slow_actions["document.signed"] = 1.0
        await eng.sign("taxpayer", form)
        [late] = await eng.send_documents(document("Consent", "taxpayer"))
        await asyncio.sleep(1.5)  # the slow write is done: nothing else holds the seal back now
        assert (await eng.status()).stage == "signing"
        assert not eng.fake.seals
        await eng.sign("taxpayer", late)
        assert await eng.result() == "completed"
        assert sorted(s.document_id for s in eng.fake.signatures) == sorted([form, late])


async def test_a_code_the_provider_refuses_is_not_reported_as_sent(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping) as eng:
        await eng.invite()
        assert (await eng.register()).ok
        eng.fake.refused_channels.add("sms")
        message = await refusal(eng.request_code(channel="sms"))
        assert "refused our message, so no code is on its way" in message
        assert "code.delivery_refused" in [t.event.action for t in eng.fake.transitions]
        # No cooldown from the refused attempt: email works at once, and verifies.
        await eng.request_code(channel="email")
        assert (await eng.verify_code()).ok


async def test_an_invitation_the_provider_refuses_asks_the_preparer_to_act(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping) as eng:
        eng.fake.refused_channels.add("email")  # email: texts may wait for the end of quiet hours
        await eng.invite("taxpayer", "email")
        await eng.settle()
        state = await eng.status()
        assert (state.stage, state.waiting_on) == ("needs_attention", "preparer")
        assert state.needs_attention is not None and "was refused" in state.needs_attention
        actions = [t.event.action for t in eng.fake.transitions]
        assert "invite.delivery_refused" in actions and "invite.sent" not in actions
        # Inviting by text instead clears it.
        await eng.invite("taxpayer", "sms")
        assert (await eng.status()).stage == "invited"


# Security round two, item 10: a burst of guesses that reaches the workflow in one activation (it arrived
# while the worker was busy or restarting) must not be judged beyond the limit. The SDK runs each update's
# validator and handler in one task, so this holds as long as a handler counts a failure before its first
# await; these tests fail if a handler ever counts after one.


@asynccontextmanager
async def burst_on_return(
    env: WorkflowEnvironment,
    prepare: Callable[[Engagement], Awaitable[None]],
    burst: Callable[[Engagement], list[Awaitable[Any]]],
) -> AsyncIterator[tuple[Engagement, list[Any]]]:
    """Prepares an engagement, stops its worker, sends `burst` while nobody polls, then starts a worker:
    the waiting updates reach the workflow together."""
    fake, task_queue = FakeActivities(), f"burst-{uuid.uuid4().hex[:12]}"
    profiles = {"taxpayer": signer("taxpayer")}
    inp = EngagementInput(
        engagement_id=int(uuid.uuid4().int % 1_000_000_000),
        firm_id=1,
        preparer_id=7,
        tax_year=2025,
        signers=list(profiles.values()),
        schedule=Schedule(),
    )

    def worker() -> Worker:
        # No cache, so the next task is not held for the stopped worker's sticky queue.
        return Worker(
            env.client,
            task_queue=task_queue,
            workflows=[EngagementWorkflow],
            activities=fake.all(),
            max_cached_workflows=0,
        )

    async with worker():
        handle = await env.client.start_workflow(
            EngagementWorkflow.run, inp, id=f"burst-{inp.engagement_id}", task_queue=task_queue
        )
        eng = Engagement(env, handle, fake, profiles, await env.get_current_time())
        await prepare(eng)
        await eng.settle()
    pending = [asyncio.ensure_future(update) for update in burst(eng)]
    await asyncio.sleep(2)  # every update is with the server, waiting for a worker
    try:
        async with worker():
            results = await asyncio.gather(*pending, return_exceptions=True)
            yield eng, results
            await eng.settle()
    finally:
        with suppress(RPCError):
            await handle.terminate("test finished")


async def test_item10_a_burst_of_wrong_codes_counts_at_most_five(time_skipping: WorkflowEnvironment) -> None:
    async def prepare(eng: Engagement) -> None:
        await registered(eng)
        await eng.request_code()

    def burst(eng: Engagement) -> list[Awaitable[Any]]:
        return [eng.verify_code(code_digest=WRONG) for _ in range(30)] + [eng.verify_code()]

    async with burst_on_return(time_skipping, prepare, burst) as (eng, results):
        answers = [r for r in results if not isinstance(r, BaseException)]
        assert len(answers) == 5, results  # five judged; every later guess refused as locked
        taxpayer = (await eng.status()).signers["taxpayer"]
        assert taxpayer.code_failures == 5
        assert len(eng.events("code.wrong")) == 5
        # Locked by the burst: the right code sent last in it does not verify the account.
        assert taxpayer.verified_at is None and isinstance(results[-1], BaseException)


async def test_item10_a_burst_of_mismatched_registrations_counts_at_most_five(
    time_skipping: WorkflowEnvironment,
) -> None:
    async def prepare(eng: Engagement) -> None:
        await eng.invite()

    def burst(eng: Engagement) -> list[Awaitable[Any]]:
        return [eng.register(identity_digest="not-the-return", invite_seq=1) for _ in range(30)]

    async with burst_on_return(time_skipping, prepare, burst) as (eng, results):
        answers = [r for r in results if not isinstance(r, BaseException)]
        assert len(answers) == 5 and answers[-1].locked, results
        taxpayer = (await eng.status()).signers["taxpayer"]
        assert taxpayer.registration_failures == 5 and taxpayer.registration_locked
        assert len(eng.events("registration.mismatch")) == 5
