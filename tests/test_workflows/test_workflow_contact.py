"""The preparer corrects a signer's contact before the portal link goes out (issue 14, item 5): the
workflow keeps the new digest, invitations and the identity match use it, the change is recorded, and
once the signer has an account the workflow refuses it. A signer's time zone can be corrected at any time
(item 6): quiet hours follow it from then on."""

from __future__ import annotations

from dataclasses import replace
from zoneinfo import ZoneInfo

from temporalio.testing import WorkflowEnvironment
from workflow_harness import PREPARER, engagement, local_time, next_local_hour, refusal

from workflows.engagement import EngagementWorkflow
from workflows.types import ChangeContact, ChangeTimeZone, SendInvite


def new_email(role: str = "taxpayer") -> ChangeContact:
    return ChangeContact(
        role=role, channel="email", digest="email-corrected", masked="new*****com", actor=PREPARER
    )


async def test_a_corrected_email_is_where_the_link_goes_and_what_registration_matches(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping) as eng:
        await eng.handle.execute_update(EngagementWorkflow.change_contact, new_email())
        (changed,) = eng.events("contact.changed")
        assert changed.event.detail == {
            "role": "taxpayer",
            "channel": "email",
            "from": "she*****com",
            "to": "new*****com",
        }
        assert changed.event.actor == PREPARER

        # The invitation to the corrected address is accepted (and says where it went); the old one is not.
        old = SendInvite("taxpayer", "email", PREPARER, destination_digest="email-taxpayer")
        assert "only to the contact on the return" in await refusal(
            eng.handle.execute_update(EngagementWorkflow.send_invite, old)
        )
        sent = await eng.handle.execute_update(
            EngagementWorkflow.send_invite,
            SendInvite("taxpayer", "email", PREPARER, destination_digest="email-corrected"),
        )
        assert sent.masked_destination == "new*****com"
        await eng.settle()

        # Registration matches the corrected email: the old one (with a phone that does not match) fails.
        typed = eng.profiles["taxpayer"]
        eng.profiles["taxpayer"] = replace(typed, email_digest="email-taxpayer", phone_digest="other-phone")
        assert not (await eng.register()).ok
        eng.profiles["taxpayer"] = replace(typed, email_digest="email-corrected", phone_digest="other-phone")
        assert (await eng.register()).ok

        # With an account, the contact is the client's to change (in the portal), not the return's.
        assert "already created an account" in await refusal(
            eng.handle.execute_update(EngagementWorkflow.change_contact, new_email())
        )


async def test_a_contact_change_is_checked_before_anything_changes(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping) as eng:
        assert "no spouse" in await refusal(
            eng.handle.execute_update(EngagementWorkflow.change_contact, new_email("spouse"))
        )
        fax = replace(new_email(), channel="fax")
        assert "email or text" in await refusal(
            eng.handle.execute_update(EngagementWorkflow.change_contact, fax)
        )
        assert eng.events("contact.changed") == []


NEW_YORK, LOS_ANGELES = "America/New_York", "America/Los_Angeles"


async def test_item6_quiet_hours_follow_a_corrected_time_zone(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping, time_zone=NEW_YORK) as eng:
        # 9:00 in New York is 6:00 in Los Angeles: a text may go at once under the guess, not in Nevada.
        nine = next_local_hour(await eng.now(), 9, NEW_YORK)
        await eng.advance_to(nine)
        move = ChangeTimeZone(role="taxpayer", time_zone=LOS_ANGELES, actor=PREPARER)
        await eng.handle.execute_update(EngagementWorkflow.change_time_zone, move)
        await eng.handle.execute_update(EngagementWorkflow.change_time_zone, move)  # a second click
        (changed,) = eng.events("time_zone.changed")
        assert changed.event.detail == {"role": "taxpayer", "from": NEW_YORK, "to": LOS_ANGELES}
        assert changed.event.actor == PREPARER

        text = await eng.invite("taxpayer", "sms")
        assert text.scheduled_for == local_time(nine.astimezone(ZoneInfo(LOS_ANGELES)).date(), 8, LOS_ANGELES)


async def test_item6_a_time_zone_change_is_checked(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping) as eng:
        for role, zone, words in [("spouse", LOS_ANGELES, "no spouse"), ("taxpayer", "", "time zone")]:
            change = ChangeTimeZone(role=role, time_zone=zone, actor=PREPARER)
            assert words in await refusal(
                eng.handle.execute_update(EngagementWorkflow.change_time_zone, change)
            )
        assert eng.events("time_zone.changed") == []
