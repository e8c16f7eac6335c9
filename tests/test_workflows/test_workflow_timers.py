"""Every timer of the engagement workflow on the time-skipping server: reminders, quiet hours, expiry,
escalation. Each test checks exact counts just before and just after the instants the schedule names
(production defaults: see workflows.types.Schedule)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from temporalio.testing import WorkflowEnvironment
from workflow_harness import (
    Engagement,
    assert_sent_at,
    document,
    engagement,
    local_time,
    next_local_hour,
    refusal,
)

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
PHOENIX = "America/Phoenix"  # no daylight saving: nights are the same length every week of the year


async def just_before(eng: Engagement, when: datetime) -> None:
    await eng.advance_to(when - MINUTE)


async def just_after(eng: Engagement, when: datetime) -> None:
    await eng.advance_to(when + MINUTE)


async def invited_at(eng: Engagement, role: str = "taxpayer") -> datetime:
    when = (await eng.status()).signers[role].invited_at
    assert when is not None
    return when


# ---- invitation ------------------------------------------------------------------------------------


async def test_email_invite_reminds_three_times_then_escalates_then_expires(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping) as eng:
        result = await eng.invite(channel="email")
        assert result.scheduled_for is None
        t0 = await invited_at(eng)
        assert_sent_at(eng.sent("invite"), [t0])

        reminders = [t0 + 2 * DAY, t0 + 4 * DAY, t0 + 6 * DAY]
        for number, due in enumerate(reminders, start=1):
            await just_before(eng, due)
            assert len(eng.sent("invite_reminder")) == number - 1
            await just_after(eng, due)
            assert_sent_at(eng.sent("invite_reminder"), reminders[:number])
        sent = eng.sent("invite_reminder")
        assert [m.request.reminder_number for m in sent] == [1, 2, 3]
        assert {m.request.invite_seq for m in sent} == {1}
        assert {m.request.channel for m in sent} == {"email"}
        assert len({m.request.idempotency_key for m in sent}) == 3
        assert (await eng.status()).reminders_sent == 3

        await just_before(eng, t0 + 8 * DAY)
        state = await eng.status()
        assert (state.stage, state.waiting_on, state.needs_attention) == ("invited", "taxpayer", None)
        assert eng.sent(recipient="preparer") == []

        await just_after(eng, t0 + 8 * DAY)
        state = await eng.status()
        assert (state.stage, state.waiting_on) == ("needs_attention", "preparer")
        assert state.needs_attention is not None
        assert state.waiting_since is not None and abs(state.waiting_since - (t0 + 8 * DAY)) < MINUTE
        assert_sent_at(eng.sent("needs_attention", "preparer"), [t0 + 8 * DAY])
        assert len(eng.sent("invite_reminder")) == 3

        await just_before(eng, t0 + 14 * DAY)
        assert not (await eng.status()).signers["taxpayer"].invite_expired
        assert eng.events("invite.expired") == []

        await just_after(eng, t0 + 14 * DAY)
        state = await eng.status()
        assert state.signers["taxpayer"].invite_expired
        assert [abs(e.event.at - (t0 + 14 * DAY)) < MINUTE for e in eng.events("invite.expired")] == [True]
        assert eng.events("invite.expired")[0].projection().step_of("taxpayer") == "expired"
        assert state.waiting_on == "preparer"
        assert "expired" in await refusal(eng.register())

        await eng.advance_to(t0 + 40 * DAY)  # nothing else is scheduled
        assert len(eng.sent("invite_reminder")) == 3
        assert len(eng.sent(recipient="preparer")) == 1
        assert len(eng.events("invite.expired")) == 1


async def test_stage_reads_expired_once_the_link_lapses(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping) as eng:
        await eng.invite()
        t0 = await invited_at(eng)
        await just_after(eng, t0 + 14 * DAY)
        assert (await eng.status()).signers["taxpayer"].invite_expired
        assert eng.events("invite.expired")[0].stage == "expired"
        assert (await eng.status()).stage == "expired"


async def test_registering_stops_invite_reminders_and_expiry(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping) as eng:
        await eng.invite()
        t0 = await invited_at(eng)
        await eng.advance_to(t0 + 3 * DAY)
        result = await eng.register()
        assert result.ok and result.account_id is not None
        registered = (await eng.status()).signers["taxpayer"].registered_at
        assert registered is not None

        await eng.advance_to(t0 + 40 * DAY)
        assert_sent_at(eng.sent("invite_reminder"), [t0 + 2 * DAY])
        # Registering starts the verification reminder, the only message after it.
        assert_sent_at(eng.sent("verify_reminder"), [registered + timedelta(hours=1)])
        assert eng.events("invite.expired") == []
        # No invitation escalation; the unverified account escalates once, an hour after its reminder.
        assert_sent_at(eng.sent(recipient="preparer"), [registered + timedelta(hours=2)])
        assert len(eng.events("engagement.needs_attention")) == 1
        state = await eng.status()
        taxpayer = state.signers["taxpayer"]
        assert (state.stage, state.waiting_on) == ("needs_attention", "preparer")
        assert state.needs_attention is not None and "not verified" in state.needs_attention
        assert (taxpayer.invite_seq, taxpayer.invite_expired) == (1, False)
        assert (taxpayer.registered_at, taxpayer.account_id) == (registered, result.account_id)
        assert state.reminders_sent == 2


async def test_reinvite_restarts_reminder_and_expiry_clocks(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping) as eng:
        await eng.invite()
        t0 = await invited_at(eng)
        await eng.advance_to(t0 + 3 * DAY)
        assert (await eng.invite()).invite_seq == 2
        t1 = await invited_at(eng)
        assert [m.request.idempotency_key.rsplit(":", 2)[1:] for m in eng.sent("invite")] == [
            ["taxpayer", "1"],
            ["taxpayer", "2"],
        ]

        await just_after(eng, t0 + 4 * DAY)  # the first invitation's second reminder: not sent
        assert_sent_at(eng.sent("invite_reminder"), [t0 + 2 * DAY])

        new_reminders = [t1 + 2 * DAY, t1 + 4 * DAY, t1 + 6 * DAY]
        await just_after(eng, t0 + 8 * DAY)  # the first invitation would escalate here
        state = await eng.status()
        assert (state.stage, state.needs_attention) == ("invited", None)
        assert eng.sent(recipient="preparer") == []
        assert_sent_at(eng.sent("invite_reminder"), [t0 + 2 * DAY, *new_reminders[:2]])
        assert [m.request.invite_seq for m in eng.sent("invite_reminder")] == [1, 2, 2]

        await just_after(eng, t0 + 14 * DAY)  # the first invitation would lapse here
        assert not (await eng.status()).signers["taxpayer"].invite_expired
        assert_sent_at(eng.sent("needs_attention", "preparer"), [t1 + 8 * DAY])

        await just_before(eng, t1 + 14 * DAY)
        assert eng.events("invite.expired") == []
        await just_after(eng, t1 + 14 * DAY)
        assert (await eng.status()).signers["taxpayer"].invite_expired
        assert_sent_at(eng.sent("invite_reminder"), [t0 + 2 * DAY, *new_reminders])
        assert "replaced" in await refusal(eng.register(invite_seq=1))

        # A new invitation after the lapse restarts the wait and clears the escalation.
        assert (await eng.invite()).invite_seq == 3
        state = await eng.status()
        assert (state.stage, state.waiting_on, state.needs_attention) == ("invited", "taxpayer", None)
        assert (await eng.register()).ok


# ---- quiet hours -----------------------------------------------------------------------------------


async def evening(eng: Engagement, time_zone: str) -> datetime:
    """Skips to the next 23:00 on the signer's wall clock."""
    at = next_local_hour(await eng.now(), 23, time_zone)
    await eng.advance_to(at)
    return at


def morning_after(night: datetime, time_zone: str, days: int = 1) -> datetime:
    """08:00 on the signer's wall clock, `days` calendar days after `night`."""
    return local_time(night.astimezone(ZoneInfo(time_zone)).date() + timedelta(days=days), 8, time_zone)


async def test_text_invite_at_night_waits_for_morning_email_goes_at_once(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping, ("taxpayer", "spouse"), time_zone=PHOENIX) as eng:
        night = await evening(eng, PHOENIX)
        morning = morning_after(night, PHOENIX)

        text = await eng.invite("taxpayer", "sms")
        assert text.scheduled_for == morning
        email = await eng.invite("spouse", "email")
        assert email.scheduled_for is None
        assert_sent_at(eng.sent("invite", "spouse"), [night])

        await just_before(eng, morning)
        assert eng.sent("invite", "taxpayer") == []
        assert (await eng.status()).stage == "invited"  # the invitation exists; only the text waits
        await just_after(eng, morning)
        assert_sent_at(eng.sent("invite", "taxpayer"), [morning])
        assert eng.sent("invite", "taxpayer")[0].request.channel == "sms"
        assert len(eng.events("invite.sent")) == 2


async def test_reminder_due_at_night_waits_for_morning(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping, time_zone=PHOENIX) as eng:
        night = await evening(eng, PHOENIX)
        await eng.invite(channel="sms")
        t0 = await invited_at(eng)
        held_until = morning_after(night, PHOENIX, days=3)  # due at 23:00 two days on, sent at 08:00

        await just_after(eng, t0 + 2 * DAY)
        assert eng.sent("invite_reminder") == []
        await just_before(eng, held_until)
        assert eng.sent("invite_reminder") == []
        await just_after(eng, held_until)
        assert_sent_at(eng.sent("invite_reminder"), [held_until])
        assert eng.sent("invite_reminder")[0].request.channel == "sms"

        # The next interval counts from the reminder that went out, which lands in daytime.
        await just_before(eng, held_until + 2 * DAY)
        assert len(eng.sent("invite_reminder")) == 1
        await just_after(eng, held_until + 2 * DAY)
        assert_sent_at(eng.sent("invite_reminder"), [held_until, held_until + 2 * DAY])


async def test_registering_at_night_drops_the_held_reminder(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping, time_zone=PHOENIX) as eng:
        night = await evening(eng, PHOENIX)
        await eng.invite(channel="sms")
        t0 = await invited_at(eng)
        morning = morning_after(night, PHOENIX, days=3)

        await eng.advance_to(t0 + 2 * DAY + timedelta(hours=4))  # 03:00: the reminder waits for 08:00
        assert (await eng.register()).ok
        await just_after(eng, morning)
        assert eng.sent("invite_reminder") == []
        # The verification reminder fell due at 04:00 and waited for morning as well.
        assert_sent_at(eng.sent("verify_reminder"), [morning])
        await eng.advance_to(morning + 10 * DAY)
        assert eng.sent("invite_reminder") == []
        assert len(eng.sent("verify_reminder")) == 1


# ---- verification ----------------------------------------------------------------------------------


async def test_unverified_account_gets_one_reminder_after_an_hour(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping) as eng:
        await eng.invite()
        assert (await eng.register()).ok
        registered = (await eng.status()).signers["taxpayer"].registered_at
        assert registered is not None

        await just_before(eng, registered + timedelta(hours=1))
        assert eng.sent("verify_reminder") == []
        await just_after(eng, registered + timedelta(hours=1))
        assert_sent_at(eng.sent("verify_reminder"), [registered + timedelta(hours=1)])
        assert eng.sent("verify_reminder")[0].request.channel == "email"
        await eng.advance_to(registered + 20 * DAY)
        assert len(eng.sent("verify_reminder")) == 1
        assert (await eng.status()).signers["taxpayer"].reminders_sent == 1


async def test_verifying_within_the_hour_sends_no_reminder(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping) as eng:
        await eng.invite()
        assert (await eng.register()).ok
        await eng.advance(timedelta(minutes=30))
        await eng.verify()
        await eng.advance(2 * DAY)
        assert eng.sent("verify_reminder") == []
        assert (await eng.status()).stage == "verified"


async def test_an_account_never_verified_escalates_to_the_preparer(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping) as eng:
        await eng.invite()
        assert (await eng.register()).ok
        await eng.advance(14 * DAY)  # no schedule names the instant: two weeks is more than generous
        state = await eng.status()
        assert (state.stage, state.waiting_on) == ("needs_attention", "preparer")
        assert len(eng.sent("needs_attention", "preparer")) == 1


# ---- signatures ------------------------------------------------------------------------------------


def documents_sent_at(eng: Engagement) -> datetime:
    return eng.events("documents.sent")[-1].event.at


async def test_signature_reminders_then_escalation(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping) as eng:
        await eng.onboard()
        await eng.send_documents(document("Form 1040", "taxpayer"), document("Invoice"))
        sent = documents_sent_at(eng)
        assert_sent_at(eng.sent("documents_ready", "taxpayer"), [sent])

        due = [sent + 2 * DAY, sent + 5 * DAY, sent + 8 * DAY, sent + 11 * DAY]
        for number, when in enumerate(due, start=1):
            await just_before(eng, when)
            assert len(eng.sent("signature_reminder")) == number - 1
            await just_after(eng, when)
            assert_sent_at(eng.sent("signature_reminder", "taxpayer"), due[:number])
        reminders = eng.sent("signature_reminder")
        assert [m.request.reminder_number for m in reminders] == [1, 2, 3, 4]
        assert len({m.request.idempotency_key for m in reminders}) == 4

        await just_before(eng, sent + 14 * DAY)
        state = await eng.status()
        assert (state.stage, state.waiting_on) == ("documents_sent", "taxpayer")
        assert eng.sent(recipient="preparer") == []
        await just_after(eng, sent + 14 * DAY)
        state = await eng.status()
        assert (state.stage, state.waiting_on) == ("needs_attention", "preparer")
        assert_sent_at(eng.sent("needs_attention", "preparer"), [sent + 14 * DAY])
        await eng.advance_to(sent + 40 * DAY)
        assert len(eng.sent("signature_reminder")) == 4
        assert len(eng.sent(recipient="preparer")) == 1


async def test_signing_everything_stops_signature_reminders(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping) as eng:
        await eng.onboard()
        ids = await eng.send_documents(document("Form 1040", "taxpayer"), document("Form 8879", "taxpayer"))
        sent = documents_sent_at(eng)
        await eng.save_signature()
        await just_after(eng, sent + 2 * DAY)
        assert len(eng.sent("signature_reminder")) == 1
        for doc_id in ids:
            await eng.sign("taxpayer", doc_id)
        assert await eng.result() == "completed"
        assert len(eng.sent("completed", "preparer")) == 1

        await eng.advance_to(sent + 40 * DAY)
        assert len(eng.sent("signature_reminder")) == 1
        assert eng.sent("needs_attention") == []
        assert (await eng.status()).stage == "completed"


async def test_joint_return_reminds_only_the_spouse_who_still_owes(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping, ("taxpayer", "spouse")) as eng:
        await eng.onboard("taxpayer")
        await eng.onboard("spouse")
        ids = await eng.send_documents(
            document("Form 1040", "taxpayer", "spouse"), document("Form 8879", "taxpayer", "spouse")
        )
        sent = documents_sent_at(eng)
        assert {m.recipient for m in eng.sent("documents_ready")} == {"taxpayer", "spouse"}
        await eng.advance_to(sent + DAY)
        await eng.save_signature("taxpayer")
        for doc_id in ids:
            await eng.sign("taxpayer", doc_id)
        state = await eng.status()
        assert (state.stage, state.waiting_on) == ("signing", "spouse")

        await just_after(eng, sent + 5 * DAY)
        assert eng.sent("signature_reminder", "taxpayer") == []
        assert_sent_at(eng.sent("signature_reminder", "spouse"), [sent + 2 * DAY, sent + 5 * DAY])

        await eng.save_signature("spouse")
        for doc_id in ids:
            await eng.sign("spouse", doc_id)
        assert await eng.result() == "completed"
        await eng.advance_to(sent + 40 * DAY)
        assert len(eng.sent("signature_reminder")) == 2


async def test_no_signature_reminder_to_a_spouse_never_invited(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping, ("taxpayer", "spouse")) as eng:
        await eng.onboard("taxpayer")
        [doc_id] = await eng.send_documents(document("Form 8879", "taxpayer", "spouse"))
        sent = documents_sent_at(eng)
        await eng.save_signature("taxpayer")
        await eng.sign("taxpayer", doc_id)
        assert (await eng.status()).waiting_on == "preparer"  # the spouse must be invited first

        await just_after(eng, sent + 2 * DAY)
        assert eng.sent("signature_reminder") == []


async def joint_return_with_texting_spouse(eng: Engagement) -> tuple[int, datetime]:
    """Taxpayer by email, spouse by text, one form for both, sent at 23:00 in Phoenix: the first
    signature reminders fall due at 23:00 two days later."""
    await eng.onboard("taxpayer", "email")
    await eng.onboard("spouse", "sms")
    docs_at = next_local_hour(await eng.now() + 2 * DAY, 23, PHOENIX) - 2 * DAY
    await eng.advance_to(docs_at)
    [form] = await eng.send_documents(document("Form 8879", "taxpayer", "spouse"))
    return form, documents_sent_at(eng)


async def test_a_held_text_does_not_delay_another_signers_email(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping, ("taxpayer", "spouse"), time_zone=PHOENIX) as eng:
        _, sent = await joint_return_with_texting_spouse(eng)
        morning = morning_after(sent + 2 * DAY, PHOENIX)
        await just_after(eng, morning)
        assert_sent_at(eng.sent("signature_reminder", "spouse"), [morning])
        assert_sent_at(eng.sent("signature_reminder", "taxpayer"), [sent + 2 * DAY])


async def test_signing_at_night_drops_that_signers_held_reminder(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping, ("taxpayer", "spouse"), time_zone=PHOENIX) as eng:
        form, sent = await joint_return_with_texting_spouse(eng)
        await eng.advance_to(sent + 2 * DAY + timedelta(hours=4))  # 03:00: the spouse's text waits
        await eng.save_signature("spouse")
        await eng.sign("spouse", form)
        morning = morning_after(sent + 2 * DAY, PHOENIX)
        await just_after(eng, morning)
        assert eng.sent("signature_reminder", "spouse") == []
        assert len(eng.sent("signature_reminder", "taxpayer")) == 1  # the taxpayer still owes
