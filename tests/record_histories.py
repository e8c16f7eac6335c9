"""Records workflow histories of representative engagements, for tests/test_workflows/test_replay.py.

    .venv/bin/python tests/record_histories.py tests/histories [NAME ...]

Records each scenario below (or each one named) whose file is missing from the folder, and leaves the
existing files alone: a history stands for engagements already running in production with the workflow
code of its day, so it is never re-recorded (see tests/histories/README.md). The engagements run on the
time-skipping test server with the in-memory activities of workflow_harness, and their payloads are
encrypted with the fixed test key of replay_key.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from replay_key import history_converter
from temporalio.client import WorkflowExecutionStatus, WorkflowHistory
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from workflow_harness import (
    NEW_YORK,
    PREPARER,
    Engagement,
    FakeActivities,
    actor_for,
    document,
    next_local_hour,
    refusal,
    signer,
)

from workflows import DEFAULT_TASK_QUEUE, workflow_id
from workflows.engagement import EngagementWorkflow
from workflows.types import (
    ChangeContact,
    ChangeTimeZone,
    ClientActivity,
    EngagementInput,
    Schedule,
    Unlock,
)

BIN = Path(sys.executable).parent
SCHEDULE = Schedule()  # the production defaults the engagements run on
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
JOINT = ("taxpayer", "spouse")

Play = Callable[[Engagement], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    name: str
    engagement_id: int
    roles: tuple[str, ...]
    stage: str  # where the engagement stands when its history is taken
    refused_channels: frozenset[str]
    play: Play
    taxpayer_signs_first: bool = False


SCENARIOS: dict[str, Scenario] = {}


def scenario(
    engagement_id: int,
    stage: str,
    roles: tuple[str, ...] = ("taxpayer",),
    refused: tuple[str, ...] = (),
    *,
    taxpayer_signs_first: bool = False,
) -> Callable[[Play], Play]:
    def register(play: Play) -> Play:
        name = play.__name__
        SCENARIOS[name] = Scenario(
            name, engagement_id, roles, stage, frozenset(refused), play, taxpayer_signs_first
        )
        return play

    return register


# ---- the engagements -------------------------------------------------------------------------------
# Each one starts at 10:00 in New York (see record), so quiet hours fall the same way whenever it runs.


@scenario(1001, "completed")
async def single_completed(eng: Engagement) -> None:
    await eng.onboard()
    form_8879, _ = await eng.send_documents(document("Form 8879", "taxpayer"), document("Form 1040"))
    await eng.save_signature()
    await eng.sign("taxpayer", form_8879)
    assert await eng.result() == "completed"


@scenario(1002, "completed", JOINT)
async def joint_completed(eng: Engagement) -> None:
    await eng.onboard("taxpayer")
    # Sent before the spouse has an account: the spouse is told once verified.
    to_sign = await eng.send_documents(
        document("Form 8879", "taxpayer", "spouse"),
        document("Form NJ-8879", "taxpayer", "spouse"),
        document("Form 1040"),
    )
    await eng.onboard("spouse", channel="sms")
    for role in JOINT:
        await eng.save_signature(role)
        for document_id in to_sign[:2]:
            await eng.sign(role, document_id)
    assert await eng.result() == "completed"


@scenario(1003, "needs_attention")
async def reminders_needs_attention(eng: Engagement) -> None:
    await eng.invite()
    await eng.advance(SCHEDULE.invite_reminder_interval * (SCHEDULE.invite_reminders_max + 1) + HOUR)
    assert len(eng.sent("invite_reminder")) == SCHEDULE.invite_reminders_max
    assert len(eng.sent("needs_attention", "preparer")) == 1


@scenario(1004, "registered")
async def expired_reinvited(eng: Engagement) -> None:
    await eng.invite()
    await eng.advance(SCHEDULE.invite_expires_after + HOUR)
    assert (await eng.status()).stage == "expired"
    await eng.invite()  # a new link restarts the wait
    assert (await eng.register()).ok


@scenario(1005, "cancelled")
async def cancelled(eng: Engagement) -> None:
    await eng.onboard()
    await eng.send_documents(document("Form 8879", "taxpayer"))
    await eng.advance(SCHEDULE.signature_reminder_first + HOUR)  # the first signature reminder goes out
    assert len(eng.sent("signature_reminder")) == 1
    assert await eng.cancel("The client moved to another firm.") == "cancelled"
    assert await eng.result() == "cancelled"


@scenario(1006, "signing", JOINT)
async def open_mid_signing(eng: Engagement) -> None:
    await eng.onboard("taxpayer")
    await eng.onboard("spouse")
    (form_8879,) = await eng.send_documents(document("Form 8879", "taxpayer", "spouse"))
    await eng.save_signature("taxpayer")
    await eng.sign("taxpayer", form_8879)


@scenario(1007, "needs_attention")
async def verify_and_sign_reminders(eng: Engagement) -> None:
    """Every reminder after registration: the code step stalls, then the signature step."""
    await eng.invite()
    assert (await eng.register()).ok
    await eng.advance(SCHEDULE.verify_reminder_after * (SCHEDULE.verify_reminders_max + 1) + MINUTE)
    assert len(eng.sent("verify_reminder")) == SCHEDULE.verify_reminders_max
    assert (await eng.status()).stage == "needs_attention"
    await eng.verify()
    await eng.send_documents(document("Form 8879", "taxpayer"))
    reminders = SCHEDULE.signature_reminder_interval * SCHEDULE.signature_reminders_max
    await eng.advance(SCHEDULE.signature_reminder_first + reminders + HOUR)
    assert len(eng.sent("signature_reminder")) == SCHEDULE.signature_reminders_max
    assert len(eng.sent("needs_attention", "preparer")) == 2


@scenario(1008, "verified")
async def sms_quiet_hours(eng: Engagement) -> None:
    """A text invitation asked for at 23:00 waits for morning; codes go out at once."""
    await eng.advance_to(next_local_hour(await eng.now(), 23, NEW_YORK))
    invite = await eng.invite(channel="sms")
    assert invite.scheduled_for is not None and eng.sent("invite") == []
    await eng.advance_to(invite.scheduled_for + MINUTE)
    assert len(eng.sent("invite")) == 1
    assert (await eng.register()).ok
    await eng.request_code(channel="sms")
    assert (await eng.verify_code()).ok


@scenario(1009, "verified")
async def lockout_unlocked(eng: Engagement) -> None:
    """An identity mismatch, wrong codes up to the lock, the preparer's unlock, then client activity."""
    await eng.invite()
    assert not (await eng.register(identity_digest="not-the-taxpayer")).ok
    assert (await eng.register()).ok
    await eng.request_code()
    results = [await eng.verify_code(code_digest="wrong") for _ in range(SCHEDULE.code_max_failures)]
    assert results[-1].reason == "locked"
    assert (await eng.status()).stage == "needs_attention"
    await eng.handle.execute_update(EngagementWorkflow.unlock, Unlock("taxpayer", PREPARER))
    await eng.advance(SCHEDULE.code_resend_cooldown + MINUTE)
    await eng.verify()
    for what in ("upload", "message"):
        await eng.handle.signal(
            EngagementWorkflow.client_activity, ClientActivity("taxpayer", what, actor_for("taxpayer"))
        )
    await eng.settle()


@scenario(1010, "verified", refused=("sms",))
async def refused_delivery(eng: Engagement) -> None:
    """The provider refuses the taxpayer's phone for good: the invite and a code go another way."""
    await eng.invite(channel="sms")
    assert (await eng.status()).stage == "needs_attention"
    await eng.invite(channel="email")
    assert (await eng.register()).ok
    assert "refused our message" in await refusal(eng.request_code(channel="sms"))
    await eng.verify()


@scenario(1011, "registered")
async def contact_corrected(eng: Engagement) -> None:
    """The preparer corrects the taxpayer's email before the link goes out; registration matches it."""
    corrected = ChangeContact("taxpayer", "email", "email-corrected", "new*****com", PREPARER)
    await eng.handle.execute_update(EngagementWorkflow.change_contact, corrected)
    assert (await eng.invite()).masked_destination == "new*****com"
    typed = replace(eng.profiles["taxpayer"], email_digest="email-corrected", phone_digest="other-phone")
    eng.profiles["taxpayer"] = typed
    assert (await eng.register()).ok


@scenario(1012, "invited")
async def time_zone_corrected(eng: Engagement) -> None:
    """The preparer moves the taxpayer from the guessed zone to Los Angeles at 9:00 New York time; the text
    invitation then waits for 8:00 in Los Angeles, and goes."""
    await eng.advance_to(next_local_hour(await eng.now(), 9, NEW_YORK))
    moved = ChangeTimeZone("taxpayer", "America/Los_Angeles", PREPARER)
    await eng.handle.execute_update(EngagementWorkflow.change_time_zone, moved)
    assert (await eng.invite("taxpayer", "sms")).scheduled_for is not None
    await eng.advance(4 * HOUR)
    assert eng.sent("invite", "taxpayer")


@scenario(1013, "signing")
async def returning_client_linked(eng: Engagement) -> None:
    """A client with an account from an earlier year links this return (`link_account`) after one
    mismatch, then signs the document that waited for them."""
    await eng.invite()
    assert not (await eng.link(identity_digest="someone-else")).ok
    assert (await eng.link()).ok
    await eng.send_documents(document("Form 8879.pdf", "taxpayer"), document("Form 1040.pdf", "taxpayer"))
    await eng.save_signature()
    await eng.sign("taxpayer", 1)


@scenario(1014, "declined", JOINT)
async def declined_open(eng: Engagement) -> None:
    """A joint 8879: the taxpayer signs, the spouse declines it with a reason (`decline_document`); the
    engagement waits on the preparer while a signature reminder comes due for nobody."""
    for role in JOINT:
        await eng.onboard(role)
        await eng.save_signature(role)
    (form_8879,) = await eng.send_documents(document("Form 8879", "taxpayer", "spouse"))
    await eng.sign("taxpayer", form_8879)
    await eng.decline("spouse", form_8879, "The refund account is not ours")
    await eng.advance(SCHEDULE.signature_reminder_first + HOUR)
    assert not eng.sent("signature_reminder")


@scenario(1015, "completed", JOINT)
async def corrected_and_paper(eng: Engagement) -> None:
    """A declined 8879 replaced by a corrected copy (`send_documents` with `replaces`); the taxpayer signs
    it electronically, the spouse on paper (`sign_on_paper`), and the engagement completes."""
    for role in JOINT:
        await eng.onboard(role)
        await eng.save_signature(role)
    (form_8879,) = await eng.send_documents(document("Form 8879", "taxpayer", "spouse"))
    await eng.decline("taxpayer", form_8879, "Wrong refund account")
    (corrected,) = await eng.send_documents(
        document("Form 8879 corrected", "taxpayer", "spouse"), replaces=form_8879
    )
    await eng.sign("taxpayer", corrected)
    await eng.sign_on_paper(corrected, "spouse", scan_document_id=31, by=PREPARER)
    assert await eng.result() == "completed"


@scenario(1016, "signing", JOINT, taxpayer_signs_first=True)
async def taxpayer_signs_first(eng: Engagement) -> None:
    """Signing order: the spouse is refused until the taxpayer has signed the joint 8879, and only the
    taxpayer is reminded meanwhile; the taxpayer signs, then the history is taken."""
    for role in JOINT:
        await eng.onboard(role)
        await eng.save_signature(role)
    (form_8879,) = await eng.send_documents(document("Form 8879", "taxpayer", "spouse"))
    await refusal(eng.sign("spouse", form_8879))
    await eng.advance(SCHEDULE.signature_reminder_first + HOUR)
    assert {m.recipient for m in eng.sent("signature_reminder")} == {"taxpayer"}
    await eng.sign("taxpayer", form_8879)


# ---- recording -------------------------------------------------------------------------------------


@scenario(1017, "completed", JOINT)
async def signed_as_local_activity(eng: Engagement) -> None:
    """Both spouses sign the joint 8879 since signing runs as a local activity (`SIGN_LOCALLY`)."""
    await eng.onboard("taxpayer")
    await eng.onboard("spouse")
    form_8879, _ = await eng.send_documents(
        document("Form 8879", "taxpayer", "spouse"), document("Form 1040")
    )
    for role in JOINT:
        await eng.save_signature(role)
        await eng.sign(role, form_8879)
    assert await eng.result() == "completed"


async def advance_to(env: WorkflowEnvironment, when: datetime) -> None:
    await env.sleep(when - await env.get_current_time())


async def stage_of(eng: Engagement) -> str:
    description = await eng.handle.describe()
    if description.status == WorkflowExecutionStatus.RUNNING:
        return (await eng.status()).stage
    return await eng.result()


async def record(env: WorkflowEnvironment, case: Scenario, path: Path) -> str:
    """Plays one engagement and writes its history (taken while it still runs, if it does)."""
    await advance_to(env, next_local_hour(await env.get_current_time(), 10, NEW_YORK))
    fake = FakeActivities(refused_channels=set(case.refused_channels))
    profiles = {role: signer(role) for role in case.roles}
    inp = EngagementInput(
        engagement_id=case.engagement_id,
        firm_id=1,
        preparer_id=7,
        tax_year=2025,
        signers=list(profiles.values()),
        schedule=SCHEDULE,
        taxpayer_signs_first=case.taxpayer_signs_first,
    )
    task_queue = f"{DEFAULT_TASK_QUEUE}-{case.name}"
    async with Worker(
        env.client, task_queue=task_queue, workflows=[EngagementWorkflow], activities=fake.all()
    ):
        handle = await env.client.start_workflow(
            EngagementWorkflow.run, inp, id=workflow_id(case.engagement_id), task_queue=task_queue
        )
        eng = Engagement(env, handle, fake, profiles, await env.get_current_time())
        try:
            await case.play(eng)
            await eng.settle()  # no send or write still in flight: the history ends on a finished task
            stage = await stage_of(eng)
            if stage != case.stage:
                raise RuntimeError(f"{case.name} ended at {stage!r}, expected {case.stage!r}")
            history = await handle.fetch_history()
        finally:
            with suppress(RPCError):  # it may have finished already
                await handle.terminate("history recorded")
    if fake.unknown:
        raise RuntimeError(f"{case.name} called activities the harness does not fake: {fake.unknown}")
    path.write_text(history_text(history))
    return stage


def history_text(history: WorkflowHistory) -> str:
    """What `history.to_json()` holds, one event a line: a quarter smaller than its indented form, and the
    event sequence reads down the file. `WorkflowHistory.from_json` reads either."""
    events = history.to_json_dict()["events"]
    return '{"events": [\n' + ",\n".join(json.dumps(e, separators=(",", ":")) for e in events) + "\n]}\n"


async def main(outdir: Path, names: list[str]) -> None:
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"no such scenario: {', '.join(sorted(unknown))} (known: {', '.join(SCENARIOS)})")
    outdir.mkdir(parents=True, exist_ok=True)
    print(f"workflow code: {sys.modules[EngagementWorkflow.__module__].__file__}")
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=history_converter(),
        test_server_existing_path=str(BIN / "temporal-test-server"),
    )
    try:
        for case in SCENARIOS.values():
            path = outdir / f"{case.name}.json"
            if names and case.name not in names:
                continue
            if path.exists():
                print(f"kept      {path} (histories are never re-recorded)")
                continue
            stage = await record(env, case, path)
            size = path.stat().st_size // 1024
            print(f"recorded  {path} ({size} KB, {workflow_id(case.engagement_id)}, {stage})")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("outdir", type=Path, help="where the <scenario>.json files go (tests/histories)")
    parser.add_argument("names", nargs="*", help="only these scenarios (default: every one)")
    args = parser.parse_args()
    asyncio.run(main(args.outdir, args.names))
