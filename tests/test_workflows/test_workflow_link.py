"""A returning client adds a new return to the account they already have (`link_account`, issue 15): the
same identity match as registration, mismatches counted toward the same lock, and no second code."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment
from workflow_harness import document, engagement, refusal

from workflows.types import Schedule


async def test_a_returning_client_links_after_the_identity_match(time_skipping: WorkflowEnvironment) -> None:
    async with engagement(time_skipping) as eng:
        await eng.invite()
        result = await eng.link(account_id=41)
        assert result.ok and result.account_id == 41
        (link,) = eng.fake.links
        assert (link.role, link.account_id) == ("taxpayer", 41)
        state = await eng.status()
        signer = state.signers["taxpayer"]
        assert signer.account_id == 41 and signer.registered_at is not None
        assert signer.verified_at == signer.registered_at  # no second code: the account is verified
        assert state.stage == "verified"
        assert eng.fake.accounts == [] and eng.sent("code") == []
        assert "account.linked" in eng.history()

        # The invitation is used: neither a second link nor a registration takes it again.
        assert "already exists" in await refusal(eng.link(account_id=77))
        assert "already exists" in await refusal(eng.register())


async def test_a_mismatch_links_nothing_and_counts_toward_the_lock(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping, schedule=Schedule(registration_max_failures=2)) as eng:
        await eng.invite()
        first = await eng.link(identity_digest="someone-else")
        assert not first.ok and first.attempts_left == 1
        # Registration and linking share the count: one more wrong answer either way locks the link.
        second = await eng.register(identity_digest="someone-else")
        assert not second.ok and second.locked
        assert eng.fake.links == [] and eng.fake.accounts == []
        assert "locked" in await refusal(eng.link())
        assert (await eng.status()).needs_attention is not None


async def test_documents_waiting_are_announced_when_the_account_links(
    time_skipping: WorkflowEnvironment,
) -> None:
    async with engagement(time_skipping, ("taxpayer", "spouse")) as eng:
        await eng.onboard("taxpayer")
        await eng.invite("spouse")
        await eng.send_documents(document("Form 8879.pdf", "taxpayer", "spouse"))
        assert eng.sent("documents_ready", "spouse") == []  # not ready for them yet
        assert (await eng.link("spouse")).ok
        await eng.settle()
        assert len(eng.sent("documents_ready", "spouse")) == 1
