"""Signing order: on an engagement where the taxpayer signs first, the spouse signs a document the
taxpayer signs too only after the taxpayer; documents only the spouse signs wait for nobody. Driven on the
time-skipping server with in-memory activities (see workflow_harness)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment
from workflow_harness import PREPARER, document, engagement, refusal

DAY = timedelta(days=1)


async def test_the_spouse_signs_after_the_taxpayer_and_is_not_reminded_before(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping, ("taxpayer", "spouse"), taxpayer_signs_first=True) as eng:
        for role in ("taxpayer", "spouse"):
            await eng.onboard(role)
            await eng.save_signature(role)
        form, own = await eng.send_documents(
            document("Form 8879", "taxpayer", "spouse"), document("Spouse's consent", "spouse")
        )
        sent = eng.events("documents.sent")[-1].event.at

        assert await refusal(eng.sign("spouse", form)) == (
            "Taxpayer O'Neil signs Form 8879 first: you can sign it once they have."
        )
        assert await refusal(eng.sign_on_paper(form, "spouse")) == (
            "Taxpayer O'Neil signs Form 8879 first: you can sign it once they have."
        )
        await eng.sign("spouse", own)  # a document only the spouse signs waits for nobody
        state = await eng.status()
        assert (state.stage, state.waiting_on) == ("signing", "taxpayer")

        # Reminders go to the taxpayer only while the spouse's turn has not come.
        await eng.advance_to(sent + 2 * DAY + timedelta(minutes=1))
        assert {m.recipient for m in eng.sent("signature_reminder")} == {"taxpayer"}

        assert eng.sent("signing_turn") == []
        await eng.sign("taxpayer", form)
        await eng.settle()
        assert (await eng.status()).waiting_on == "spouse"
        [turn] = eng.sent("signing_turn")  # the spouse hears that their turn came
        assert turn.recipient == "spouse"
        await eng.advance_to(sent + 5 * DAY + timedelta(minutes=1))
        assert [m.recipient for m in eng.sent("signature_reminder")] == ["taxpayer", "spouse"]
        await eng.sign("spouse", form)
        assert await eng.result() == "completed"


async def test_without_an_order_either_spouse_signs_first_and_the_preparer_records_paper_in_any_order(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping, ("taxpayer", "spouse")) as eng:
        for role in ("taxpayer", "spouse"):
            await eng.onboard(role)
            await eng.save_signature(role)
        (form,) = await eng.send_documents(document("Form 8879", "taxpayer", "spouse"))
        await eng.sign("spouse", form)
        assert (await eng.status()).waiting_on == "taxpayer"
    async with engagement(time_skipping, ("taxpayer", "spouse"), taxpayer_signs_first=True) as eng:
        for role in ("taxpayer", "spouse"):
            await eng.onboard(role)
        (form,) = await eng.send_documents(document("Form 8879", "taxpayer", "spouse"))
        await eng.sign_on_paper(form, "spouse", by=PREPARER)  # the firm holds the paper: any order
        await eng.sign_on_paper(form, "taxpayer", by=PREPARER)
        assert await eng.result() == "completed"
