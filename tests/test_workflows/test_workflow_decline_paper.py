"""Declining a document, sending a corrected copy in its place, and signatures made on paper: driven on the
time-skipping server with in-memory activities (see workflow_harness)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment
from workflow_harness import PREPARER, Engagement, actor_for, document, engagement, refusal

DAY = timedelta(days=1)


async def joint_with_8879(eng: Engagement) -> int:
    """Both spouses verified and with a signature on file; a joint 8879 sent. Returns its id."""
    for role in ("taxpayer", "spouse"):
        await eng.onboard(role)
        await eng.save_signature(role)
    [form] = await eng.send_documents(document("Form 8879", "taxpayer", "spouse"))
    return form


async def test_a_decline_tells_the_preparer_stops_reminders_and_waits_on_the_preparer(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping, ("taxpayer", "spouse")) as eng:
        form = await joint_with_8879(eng)
        sent = eng.events("documents.sent")[-1].event.at
        await eng.decline("spouse", form, "Our bank account number is wrong")

        state = await eng.status()
        assert (state.stage, state.waiting_on) == ("declined", "preparer")
        [doc] = state.documents
        assert doc.declined == {"spouse": "Our bank account number is wrong"}
        assert doc.signature_status == "declined"
        [notice] = eng.sent("declined", "preparer")
        assert notice.request.channel == "email"
        [event] = eng.events("document.declined")
        assert event.event.detail == {
            "role": "spouse",
            "document": "Form 8879",
            "reason": "Our bank account number is wrong",
        }
        assert [(d.document_id, d.role) for d in eng.fake.declines] == [(form, "spouse")]

        # The spouse is not reminded of what they declined; the taxpayer, who still owes, is.
        await eng.advance_to(sent + 2 * DAY + timedelta(minutes=1))
        assert {m.recipient for m in eng.sent("signature_reminder")} == {"taxpayer"}
        await eng.sign("taxpayer", form)
        # Nothing is owed now but the declined signature: no reminders, and no "still unsigned" escalation
        # on top of the decline the preparer already heard of.
        await eng.advance_to(sent + 20 * DAY)
        assert {m.recipient for m in eng.sent("signature_reminder")} == {"taxpayer"}
        assert eng.sent("needs_attention") == []
        assert (await eng.status()).stage == "declined"


async def test_a_declined_document_refuses_signing_and_a_second_decline(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping, ("taxpayer", "spouse")) as eng:
        form = await joint_with_8879(eng)
        assert await refusal(eng.decline("taxpayer", form, "   ")) == (
            "Tell your preparer why you decline, so they can correct it."
        )
        assert await refusal(eng.decline("taxpayer", form, "x" * 1001)) == (
            "Keep the reason under 1,000 characters."
        )
        await eng.decline("taxpayer", form)
        assert await refusal(eng.decline("taxpayer", form)) == "You already declined Form 8879."
        assert await refusal(eng.sign("taxpayer", form)) == (
            "You declined Form 8879. Your preparer will send a corrected copy."
        )
        await eng.sign("spouse", form)
        assert await refusal(eng.decline("spouse", form)) == "Form 8879 is already signed."
        assert len(eng.fake.declines) == 1


async def test_a_corrected_copy_replaces_the_declined_document_and_reopens_signing(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping, ("taxpayer", "spouse")) as eng:
        form = await joint_with_8879(eng)
        await eng.sign("taxpayer", form)
        await eng.decline("spouse", form, "Wrong routing number")

        [corrected] = await eng.send_documents(
            document("Form 8879 corrected", "taxpayer", "spouse"), replaces=form
        )
        state = await eng.status()
        old, new = sorted(state.documents, key=lambda d: d.document_id)
        assert (old.replaced_by, old.signature_status) == (corrected, "replaced")
        assert new.signature_status == "awaiting_signature"
        # What was signed on the old copy no longer counts: both sign the corrected one.
        assert (state.stage, state.waiting_on) == ("documents_sent", "spouse, taxpayer")
        assert eng.fake.published[-1].replaces == form
        assert [e.event.detail["document"] for e in eng.events("document.replaced")] == ["Form 8879"]
        assert await refusal(eng.sign("spouse", form)) == (
            "Form 8879 was replaced by a corrected copy: sign that one instead."
        )
        assert await refusal(eng.send_documents(document("Again", "taxpayer"), replaces=form)) == (
            "Form 8879 was already replaced by a corrected copy."
        )

        for role in ("taxpayer", "spouse"):
            await eng.sign(role, corrected)
        assert await eng.result() == "completed"
        assert [s.document_id for s in eng.fake.signatures] == [form, corrected, corrected]


async def test_a_signed_document_cannot_be_replaced(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping) as eng:
        await eng.onboard()
        await eng.save_signature()
        letter, form = await eng.send_documents(
            document("Engagement letter", "taxpayer"), document("Form 8879", "taxpayer")
        )
        await eng.sign("taxpayer", letter)
        assert await refusal(eng.send_documents(document("Letter v2", "taxpayer"), replaces=letter)) == (
            "Engagement letter is already signed: send a new document instead."
        )
        two = (document("A", "taxpayer"), document("B", "taxpayer"))
        assert await refusal(eng.send_documents(*two, replaces=form)) == (
            "Send one corrected copy in place of one document."
        )


async def test_one_spouse_on_paper_the_other_electronically_completes(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping, ("taxpayer", "spouse")) as eng:
        form = await joint_with_8879(eng)
        await eng.sign("taxpayer", form)
        await eng.decline("spouse", form, "I would rather sign on paper")

        # A client vouches for their own signature only.
        assert await refusal(eng.sign_on_paper(form, "taxpayer", by=actor_for("spouse"))) == (
            "Upload the scan of your own signature."
        )
        await eng.sign_on_paper(form, "spouse", scan_document_id=77)
        assert await eng.result() == "completed"
        [paper] = eng.fake.paper
        assert (paper.roles, paper.scan_document_id, paper.actor.label) == (["spouse"], 77, "taxpayer:spouse")
        [doc] = (await eng.status()).documents
        assert (doc.paper_roles, doc.declined, doc.signature_status) == (["spouse"], {}, "manually_signed")
        assert eng.events("document.signed_on_paper")[0].event.detail["roles"] == "spouse"
        assert len(eng.fake.seals) == 1


async def test_the_preparer_attests_both_paper_signatures(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping, ("taxpayer", "spouse")) as eng:
        form = await joint_with_8879(eng)
        await eng.sign_on_paper(form, "taxpayer", scan_document_id=12, by=PREPARER)
        assert await refusal(eng.sign_on_paper(form, "taxpayer", "spouse", by=PREPARER)) == (
            "Form 8879 is already signed."
        )
        assert (await eng.status()).stage == "signing"
        await eng.sign_on_paper(form, "spouse", scan_document_id=12, by=PREPARER)
        assert await eng.result() == "completed"
        assert [(p.roles, p.actor.label) for p in eng.fake.paper] == [
            (["taxpayer"], "preparer:7"),
            (["spouse"], "preparer:7"),
        ]
