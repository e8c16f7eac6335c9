"""The engagement workflow: one per tax return, the single writer of its pipeline state.

Updates answer the person who acted (validators reject what cannot happen now, without changing
anything); timers send reminders and expire invitations; every change is written to the dashboard's
projection and the audit log by an activity, never by the API. What the engagement knows lives in one
`PipelineState` (workflows/state.py); the validators are functions of it (workflows/validators.py).
"""

from __future__ import annotations

import asyncio
import hmac
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.types import (
        AccountToLink,
        CreateAccount,
        DeclineRecord,
        MarkVerified,
        PaperSignature,
        PublishDocuments,
        SealDocuments,
        SignRequest,
        SignResult,
        StoreSignatureImage,
    )
    from core.actor import SYSTEM, Actor
    from core.enums import Channel, Role
    from workflows import timers, validators
    from workflows.effects import ACTS, QUICK, RETRY, SIGNING, Effects
    from workflows.state import PREPARER, PipelineState
    from workflows.types import (
        Cancel,
        ChangeContact,
        ChangeTimeZone,
        ClientActivity,
        CodeSent,
        DeclineDocument,
        DocumentStatus,
        EngagementInput,
        EngagementState,
        InviteResult,
        LinkAccount,
        Register,
        RegisterResult,
        RequestCode,
        SaveSignature,
        SendDocuments,
        SendInvite,
        SignDocument,
        SignOnPaper,
        Unlock,
        VerifyCode,
        VerifyResult,
    )

# `workflow.patched` ids: where the workflow's commands changed, histories from before still replay.
SIGN_LOCALLY = "sign-as-local-activity"


@workflow.defn
class EngagementWorkflow:
    @workflow.init
    def __init__(self, inp: EngagementInput) -> None:
        self.state = PipelineState.start(inp, workflow.now())
        self.fx = Effects(self.state)
        # Runtime only, not part of the engagement's state: one signature at a time per document.
        self.document_locks: dict[int, asyncio.Lock] = {}

    # ---- run -------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: EngagementInput) -> str:
        state = self.state
        await self.fx.record("engagement.created", SYSTEM, {"tax_year": str(inp.tax_year)})
        while True:
            await workflow.wait_condition(lambda: state.cancelled or state.all_signed())
            # The last signature's audit entry may still be being written: the certificate of completion
            # must include it, so let every running handler and every such write finish first. One of
            # those handlers may have been a send that added documents to sign: then wait for them too.
            await workflow.wait_condition(self.fx.quiet)
            if state.cancelled or state.all_signed():
                break
        # From here on nothing may add work to sign: a send that arrives now (say, one whose answer was
        # lost in an outage and that Temporal delivers late) is refused rather than left unsigned.
        state.finalising = True
        if not state.cancelled:
            await self._finalise()
        await workflow.wait_condition(self.fx.quiet)
        return state.stage

    async def _finalise(self) -> None:
        await self.fx.record("engagement.signed", SYSTEM)
        try:
            sealed = await workflow.execute_activity_method(
                ACTS.seal_documents,
                SealDocuments(self.state.inp.engagement_id, workflow.now()),
                # One pyHanko signature per document plus the certificate: seconds, even for a big return.
                start_to_close_timeout=timedelta(minutes=5),
                # It heartbeats before each document: a crashed worker's seal is retried after this,
                # not after the five minutes.
                heartbeat_timeout=QUICK,
                retry_policy=RETRY,
            )
        except ActivityError as err:
            # Only a non-retryable failure lands here (a document pyHanko cannot seal): tell the preparer.
            await self.fx.flag(f"Sealing the signed documents failed: {err.cause or err}")
            return
        await self.fx.record(
            "documents.sealed",
            SYSTEM,
            {"documents": str(len(sealed.document_ids)), "certificate_sha256": sealed.certificate_sha256},
        )
        await self.fx.message(PREPARER, Channel.EMAIL, "completed", key="completed")
        self.state.completed = True
        await self.fx.record("engagement.completed", SYSTEM)

    @workflow.query
    def status(self) -> EngagementState:
        return self.state.status()

    # ---- invite ----------------------------------------------------------------------------------

    @workflow.update
    async def send_invite(self, req: SendInvite) -> InviteResult:
        seq = self.state.invite(req.role, req.channel, workflow.now()).invite_seq
        send_at = self.fx.send_time(req.role, req.channel)
        await self.fx.record("invite.requested", req.actor, {"role": req.role, "channel": req.channel})
        self.fx.spawn(timers.deliver_invite(self.fx, req.role, req.channel, seq, send_at))
        self.fx.spawn(timers.remind_invite(self.fx, req.role, seq))
        self.fx.spawn(timers.expire_invite(self.fx, req.role, seq))
        masked = self.state.profiles[req.role].masked(req.channel) or ""
        return InviteResult(seq, masked, send_at if send_at > workflow.now() else None)

    @send_invite.validator
    def _check_invite(self, req: SendInvite) -> None:
        validators.check_invite(self.state, req)

    @workflow.update
    async def change_contact(self, req: ChangeContact) -> None:
        before = self.state.profiles[req.role].masked(req.channel) or ""
        self.state.change_contact(req.role, req.channel, req.digest, req.masked)
        detail = {"role": req.role, "channel": req.channel, "from": before, "to": req.masked}
        await self.fx.record("contact.changed", req.actor, detail)

    @change_contact.validator
    def _check_change_contact(self, req: ChangeContact) -> None:
        validators.check_change_contact(self.state, req)

    @workflow.update
    async def change_time_zone(self, req: ChangeTimeZone) -> None:
        before = self.state.profiles[req.role].time_zone
        if before == req.time_zone:  # a second click of the same change
            return
        self.state.change_time_zone(req.role, req.time_zone)
        detail = {"role": req.role, "from": before, "to": req.time_zone}
        await self.fx.record("time_zone.changed", req.actor, detail)

    @change_time_zone.validator
    def _check_change_time_zone(self, req: ChangeTimeZone) -> None:
        validators.check_change_time_zone(self.state, req)

    # ---- registration ----------------------------------------------------------------------------

    @workflow.update
    async def register(self, req: Register) -> RegisterResult:
        signer = self.state.signers[req.role]
        if not self.state.identity_matches(req):
            return await self._mismatch(req.role, req.actor)
        account_id = await workflow.execute_activity_method(
            ACTS.create_account,
            CreateAccount(
                self.state.inp.engagement_id, req.role, req.username, req.password_hash, req.email, req.phone
            ),
            start_to_close_timeout=QUICK,
            retry_policy=RETRY,
        )
        signer.account_id = account_id
        signer.registered_at = workflow.now()
        self.state.clear_attention()
        await self.fx.record(
            "registration.completed", req.actor, {"role": req.role, "username": req.username}
        )
        self.fx.spawn(timers.remind_verification(self.fx, req.role))
        return RegisterResult(ok=True, account_id=account_id)

    @register.validator
    def _check_register(self, req: Register) -> None:
        validators.check_register(self.state, req)

    @workflow.update
    async def link_account(self, req: LinkAccount) -> RegisterResult:
        """A returning client adds this return to the account they have: the same identity match as
        registration (a mismatch counts toward the invitation's lock), and no new code, because the account
        was verified and has just signed in."""
        state, signer = self.state, self.state.signers[req.role]
        if not state.identity_matches(req):
            return await self._mismatch(req.role, req.actor)
        await workflow.execute_activity_method(
            ACTS.link_account,
            AccountToLink(state.inp.engagement_id, req.role, req.account_id),
            start_to_close_timeout=QUICK,
            retry_policy=RETRY,
        )
        now = workflow.now()
        signer.account_id, signer.registered_at, signer.verified_at = req.account_id, now, now
        if req.role in state.roles_owing_signatures():  # documents arrived before this signer was ready
            channel = signer.invite_channel or Channel.EMAIL
            ready = self.fx.message(req.role, channel, "documents_ready", key=f"docs:{req.role}:linked")
            self.fx.spawn(ready)
        state.clear_attention()
        await self.fx.record("account.linked", req.actor, {"role": req.role})
        return RegisterResult(ok=True, account_id=req.account_id)

    @link_account.validator
    def _check_link_account(self, req: LinkAccount) -> None:
        validators.check_register(self.state, req)

    async def _mismatch(self, role: str, actor: Actor) -> RegisterResult:
        """An identity that does not match the return: counted, and the invitation locks at the limit."""
        signer = self.state.signers[role]
        left = self.state.registration_mismatch(role)
        await self.fx.record("registration.mismatch", actor, {"role": role, "attempts_left": str(left)})
        if signer.registration_locked:
            await self.fx.flag(f"The {role}'s invitation is locked after repeated identity mismatches.")
        return RegisterResult(ok=False, attempts_left=max(left, 0), locked=signer.registration_locked)

    # ---- one-time codes --------------------------------------------------------------------------

    @workflow.update
    async def request_code(self, req: RequestCode) -> CodeSent:
        state, now = self.state, workflow.now()
        signer = state.code_requested(req.role, req.channel, now)
        masked = state.profiles[req.role].masked(req.channel)
        # Codes go out at once, even at night: the person asked for this one and is waiting for it.
        result = await self.fx.message(
            req.role, req.channel, "code", key=f"code:{req.role}:{signer.code_seq}"
        )
        if result.status == "failed":  # the provider refused the address for good: no code is on its way
            signer.code_sent_at = signer.code_expires_at = None  # no cooldown: another channel at once
            await self.fx.record(
                "code.delivery_refused", req.actor, {"role": req.role, "channel": req.channel}
            )
            raise validators.invalid(
                f"{masked} refused our message, so no code is on its way. Choose another way to get the "
                "code, or ask your preparer to check your details."
            )
        state.code_digests[req.role] = result.secret_digest
        await self.fx.record("code.sent", req.actor, {"role": req.role, "channel": req.channel})
        return CodeSent(
            masked_destination=masked or "",
            expires_at=now + state.schedule.code_lifetime,
            resend_after=now + state.schedule.code_resend_cooldown,
        )

    @request_code.validator
    def _check_request_code(self, req: RequestCode) -> None:
        validators.check_request_code(self.state, req, workflow.now())

    @workflow.update
    async def verify_code(self, req: VerifyCode) -> VerifyResult:
        state, signer = self.state, self.state.signers[req.role]
        expected = state.code_digests.get(req.role)
        if signer.code_expires_at is None or expected is None:
            return VerifyResult(ok=False, reason="used", tries_left=state.tries_left(req.role))
        if workflow.now() > signer.code_expires_at:
            return VerifyResult(ok=False, reason="expired", tries_left=state.tries_left(req.role))
        if not hmac.compare_digest(expected, req.code_digest):
            signer.code_failures += 1
            await self.fx.record("code.wrong", req.actor, {"role": req.role})
            if state.tries_left(req.role) == 0:
                await self.fx.flag(f"The {req.role} entered too many wrong codes.")
                return VerifyResult(ok=False, reason="locked")
            return VerifyResult(ok=False, reason="wrong", tries_left=state.tries_left(req.role))
        state.code_digests[req.role] = None  # single use
        channel = signer.code_channel or Channel.EMAIL
        await workflow.execute_activity_method(
            ACTS.mark_verified,
            MarkVerified(signer.account_id or 0, channel, workflow.now()),
            start_to_close_timeout=QUICK,
            retry_policy=RETRY,
        )
        signer.verified_at = workflow.now()
        if req.role in state.roles_owing_signatures():  # documents arrived before this signer was ready
            channel = signer.invite_channel or Channel.EMAIL
            self.fx.spawn(
                self.fx.message(req.role, channel, "documents_ready", key=f"docs:{req.role}:verified")
            )
        state.clear_attention()
        await self.fx.record("verification.completed", req.actor, {"role": req.role, "channel": channel})
        return VerifyResult(ok=True)

    @verify_code.validator
    def _check_verify(self, req: VerifyCode) -> None:
        validators.check_verify(self.state, req)

    # ---- documents and signatures ----------------------------------------------------------------

    @workflow.update
    async def send_documents(self, req: SendDocuments) -> list[int]:
        state = self.state
        ids = await workflow.execute_activity_method(
            ACTS.publish_documents,
            PublishDocuments(
                state.inp.engagement_id, req.documents, uploaded_by=req.actor.label, replaces=req.replaces
            ),
            start_to_close_timeout=QUICK,
            retry_policy=RETRY,
        )
        for doc_id, spec in zip(ids, req.documents, strict=True):
            state.documents[doc_id] = DocumentStatus(doc_id, spec.name, list(spec.required_roles))
        state.documents_sent_at = workflow.now()
        await self.fx.record("documents.sent", req.actor, {"count": str(len(ids))})
        if req.replaces is not None:
            old = state.documents[req.replaces]
            old.replaced_by = ids[0]
            await self.fx.record("document.replaced", req.actor, {"document": old.name, "by": str(ids[0])})
        batch = min(ids)
        for role in sorted({r for spec in req.documents for r in spec.required_roles} | {Role.TAXPAYER}):
            signer = state.signers[role]
            if signer.verified_at is not None:
                channel = signer.invite_channel or Channel.EMAIL
                self.fx.spawn(self.fx.message(role, channel, "documents_ready", key=f"docs:{role}:{batch}"))
        state.signature_round += 1
        self.fx.spawn(timers.remind_signatures(self.fx, state.signature_round))
        return ids

    @send_documents.validator
    def _check_send_documents(self, req: SendDocuments) -> None:
        validators.check_send_documents(self.state, req)

    @workflow.update
    async def save_signature(self, req: SaveSignature) -> None:
        await workflow.execute_activity_method(
            ACTS.store_signature_image,
            StoreSignatureImage(self.state.inp.engagement_id, req.role, req.image_key, workflow.now()),
            start_to_close_timeout=QUICK,
            retry_policy=RETRY,
        )
        self.state.signers[req.role].signature_on_file = True
        await self.fx.record("signature.saved", req.actor, {"role": req.role})

    @save_signature.validator
    def _check_save_signature(self, req: SaveSignature) -> None:
        validators.check_save_signature(self.state, req)

    @workflow.update
    async def sign_document(self, req: SignDocument) -> SignResult:
        state = self.state
        doc = state.documents[req.document_id]
        state.signing_in_progress.add((req.document_id, req.role))
        try:
            # One signature at a time per document: each is an incremental update of the last version.
            async with self.document_locks.setdefault(req.document_id, asyncio.Lock()):
                request = SignRequest(
                    state.inp.engagement_id, req.document_id, req.role, req.actor, workflow.now()
                )
                if workflow.patched(SIGN_LOCALLY):
                    # A signature takes tens of milliseconds while a person waits on "Signed!": it runs
                    # as a local activity, in the worker running this workflow task, without a round trip
                    # through the server's activity queue. Retried the same way; it is idempotent.
                    result = await workflow.execute_local_activity_method(
                        ACTS.sign_document, request, start_to_close_timeout=SIGNING, retry_policy=RETRY
                    )
                else:  # engagements that signed before this release replay as they ran
                    result = await workflow.execute_activity_method(
                        ACTS.sign_document, request, start_to_close_timeout=SIGNING, retry_policy=RETRY
                    )
            doc.signed_roles.append(req.role)
            state.clear_attention()  # signing again: whatever stalled has moved
        finally:
            state.signing_in_progress.discard((req.document_id, req.role))
        state.last_signed_at = workflow.now()
        # The signature is stored: answer "Signed!" now and write the dashboard row and audit entry
        # beside it (scheduled in the same workflow task as the answer, so a crash cannot lose it).
        self.fx.record_soon(
            "document.signed", req.actor, {"role": req.role, "document": doc.name, "sha256": result.sha256}
        )
        self._tell_whose_turn_came(doc, req.role)
        return result

    def _tell_whose_turn_came(self, doc: DocumentStatus, signed: str) -> None:
        """With a signing order, the spouse hears when the taxpayer's signature lets them sign."""
        state = self.state
        spouse = state.signers.get(Role.SPOUSE)
        if (
            not state.inp.taxpayer_signs_first
            or signed != Role.TAXPAYER
            or spouse is None
            or spouse.verified_at is None
            or not doc.owes(Role.SPOUSE)
        ):
            return
        channel = spouse.invite_channel or Channel.EMAIL
        key = f"turn:{Role.SPOUSE}:{doc.document_id}"
        self.fx.spawn(self.fx.message(Role.SPOUSE, channel, "signing_turn", key=key))

    @sign_document.validator
    def _check_sign(self, req: SignDocument) -> None:
        validators.check_sign(self.state, req)

    @workflow.update
    async def decline_document(self, req: DeclineDocument) -> None:
        """The signer will not sign this document as it is: the preparer hears at once and corrects it (a
        new copy in its place) or takes the signature on paper; reminders for it stop meanwhile."""
        state = self.state
        doc = state.documents[req.document_id]
        state.signing_in_progress.add((req.document_id, req.role))  # a Sign click meanwhile is refused
        try:
            await workflow.execute_activity_method(
                ACTS.record_decline,
                DeclineRecord(
                    state.inp.engagement_id, req.document_id, req.role, req.reason, req.actor, workflow.now()
                ),
                start_to_close_timeout=QUICK,
                retry_policy=RETRY,
            )
        finally:
            state.signing_in_progress.discard((req.document_id, req.role))
        doc.declined[req.role] = req.reason
        doc.declined_at = doc.declined_at or workflow.now()
        detail = {"role": req.role, "document": doc.name, "reason": req.reason}
        await self.fx.record("document.declined", req.actor, detail)
        key = f"declined:{req.document_id}:{req.role}"
        self.fx.spawn(self.fx.message(PREPARER, Channel.EMAIL, "declined", key=key))

    @decline_document.validator
    def _check_decline(self, req: DeclineDocument) -> None:
        validators.check_decline(self.state, req)

    @workflow.update
    async def sign_on_paper(self, req: SignOnPaper) -> None:
        """Signatures made by hand, shown by an uploaded scan: they count like electronic ones, and the
        record says they were on paper and who vouched for them."""
        state = self.state
        doc = state.documents[req.document_id]
        pairs = {(req.document_id, role) for role in req.roles}
        state.signing_in_progress |= pairs
        try:
            async with self.document_locks.setdefault(req.document_id, asyncio.Lock()):
                await workflow.execute_activity_method(
                    ACTS.record_paper_signature,
                    PaperSignature(
                        state.inp.engagement_id,
                        req.document_id,
                        list(req.roles),
                        req.scan_document_id,
                        req.actor,
                        workflow.now(),
                    ),
                    start_to_close_timeout=QUICK,
                    retry_policy=RETRY,
                )
            for role in req.roles:
                doc.signed_roles.append(role)
                doc.paper_roles.append(role)
                doc.declined.pop(role, None)
            if not doc.declined:
                doc.declined_at = None
            state.clear_attention()
        finally:
            state.signing_in_progress -= pairs
        state.last_signed_at = workflow.now()
        detail = {"roles": ",".join(req.roles), "document": doc.name, "scan": str(req.scan_document_id)}
        await self.fx.record("document.signed_on_paper", req.actor, detail)

    @sign_on_paper.validator
    def _check_sign_on_paper(self, req: SignOnPaper) -> None:
        validators.check_sign_on_paper(self.state, req)

    # ---- cancel, unlock, activity ----------------------------------------------------------------

    @workflow.update
    async def cancel(self, req: Cancel) -> str:
        self.state.cancelled = True
        await self.fx.record("engagement.cancelled", req.actor, {"reason": req.reason})
        return self.state.stage

    @cancel.validator
    def _check_cancel(self, req: Cancel) -> None:
        validators.check_open(self.state)

    @workflow.update
    async def unlock(self, req: Unlock) -> None:
        self.state.unlock(req.role)
        await self.fx.record("signer.unlocked", req.actor, {"role": req.role})

    @unlock.validator
    def _check_unlock(self, req: Unlock) -> None:
        validators.check_unlock(self.state, req)

    @workflow.signal
    async def client_activity(self, event: ClientActivity) -> None:
        if not self.state.closed:
            await self.fx.record(f"client.{event.what}", event.actor, {"role": event.role})
