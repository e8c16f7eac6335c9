"""The engagement's timers: invitations delivered (after quiet hours), reminded and expired; verification
and signature reminders; escalation to the preparer when every reminder went unanswered.

Each runs beside the handlers (`Effects.spawn`) and stops as soon as the person it waits on has acted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from core.actor import SYSTEM
    from core.enums import Channel
    from workflows.effects import Effects


async def deliver_invite(fx: Effects, role: str, channel: str, seq: int, send_at: datetime) -> None:
    await fx.sleep_until(send_at)
    if fx.state.signers[role].invite_seq != seq or fx.state.closed:
        return
    sent = await fx.message(role, channel, "invite", key=f"invite:{role}:{seq}", invite_seq=seq)
    if sent.status == "failed":  # a dead number or a bounced address: nobody will get the link
        detail = {"role": role, "channel": channel, "seq": str(seq)}
        await fx.record("invite.delivery_refused", SYSTEM, detail)
        await fx.flag(
            f"The invitation to {fx.state.profiles[role].masked(channel)} was refused: check the "
            f"{role}'s contact details, or invite them another way."
        )
        return
    await fx.record("invite.sent", SYSTEM, {"role": role, "channel": channel, "seq": str(seq)})


async def remind_invite(fx: Effects, role: str, seq: int) -> None:
    signer, schedule = fx.state.signers[role], fx.state.schedule

    def moved_on() -> bool:
        return signer.registered_at is not None or signer.invite_seq != seq or signer.invite_expired

    for number in range(1, schedule.invite_reminders_max + 1):
        if await fx.wait(moved_on, schedule.invite_reminder_interval):
            return
        channel = signer.invite_channel or Channel.EMAIL
        await fx.remind(role, channel, "invite_reminder", number, moved_on, invite_seq=seq)
    if not await fx.wait(moved_on, schedule.invite_reminder_interval):
        await fx.flag(
            f"The {role} has not used the invitation after {schedule.invite_reminders_max} reminders."
        )


async def expire_invite(fx: Effects, role: str, seq: int) -> None:
    signer = fx.state.signers[role]
    if await fx.wait(
        lambda: signer.registered_at is not None or signer.invite_seq != seq,
        fx.state.schedule.invite_expires_after,
    ):
        return
    signer.invite_expired = True
    await fx.record("invite.expired", SYSTEM, {"role": role})


async def remind_verification(fx: Effects, role: str) -> None:
    signer, schedule = fx.state.signers[role], fx.state.schedule

    def moved_on() -> bool:
        return signer.verified_at is not None

    for number in range(1, schedule.verify_reminders_max + 1):
        if await fx.wait(moved_on, schedule.verify_reminder_after):
            return
        await fx.remind(role, signer.invite_channel or Channel.EMAIL, "verify_reminder", number, moved_on)
    # Still not verified one more interval after the last reminder: the preparer should call.
    if not await fx.wait(moved_on, schedule.verify_reminder_after):
        await fx.flag(f"The {role} created an account but has not verified it.")


async def remind_signatures(fx: Effects, round_number: int) -> None:
    state, schedule = fx.state, fx.state.schedule

    def moved_on() -> bool:
        return state.all_signed() or state.signature_round != round_number or state.closed

    if await fx.wait(moved_on, schedule.signature_reminder_first):
        return
    for number in range(1, schedule.signature_reminders_max + 1):
        # Each signer on their own: one held back by quiet hours must not hold back the other.
        await asyncio.gather(
            *(_remind_to_sign(fx, role, number, round_number, moved_on) for role in state.remindable())
        )
        if await fx.wait(moved_on, schedule.signature_reminder_interval):
            return
    if not state.only_declines_outstanding():  # a decline already told the preparer what is wrong
        await fx.flag("Documents are still unsigned after every reminder.")


async def _remind_to_sign(
    fx: Effects, role: str, number: int, round_number: int, round_over: Callable[[], bool]
) -> None:
    def signed_or_over() -> bool:
        return round_over() or role not in fx.state.roles_owing_signatures()

    channel = fx.state.signers[role].invite_channel or Channel.EMAIL
    await fx.remind(role, channel, "signature_reminder", number, signed_or_over, key_suffix=str(round_number))
