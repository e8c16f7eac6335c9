"""The engagement workflow: one per tax return, the single writer of its pipeline state.

Updates answer the person who acted (validators reject what cannot happen now, without changing
anything); timers send reminders and expire invitations; every change is written to the dashboard's
projection and the audit log by an activity, never by the API.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from core.actor import SYSTEM, Actor
    from core.quiet_hours import next_allowed_send
    from workflows import progress
    from workflows.types import (
        AuditEvent,
        Cancel,
        Channel,
        ClientActivity,
        CodeSent,
        CreateAccount,
        DocumentStatus,
        EngagementInput,
        EngagementState,
        InviteResult,
        MarkVerified,
        MessageRequest,
        MessageResult,
        PublishDocuments,
        Register,
        RegisterResult,
        RequestCode,
        SaveSignature,
        SealDocuments,
        SealResult,
        SendDocuments,
        SendInvite,
        SignDocument,
        SignerProfile,
        SignerStatus,
        SignRequest,
        SignResult,
        StoreSignatureImage,
        Transition,
        Unlock,
        VerifyCode,
        VerifyResult,
    )

# A crashed worker's activity is retried only when its start-to-close timeout lapses: keep them short
# (each is idempotent, so an early retry under load costs nothing but time).
QUICK = timedelta(seconds=20)
SIGNING = timedelta(seconds=30)
RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))


def _invalid(message: str) -> ApplicationError:
    """A rejection the API shows to the person as it is."""
    return ApplicationError(message, type="InvalidRequest", non_retryable=True)


@workflow.defn
class EngagementWorkflow:
    @workflow.init
    def __init__(self, inp: EngagementInput) -> None:
        self.inp = inp
        self.schedule = inp.schedule
        self.profiles = {p.role: p for p in inp.signers}
        self.signers = {p.role: SignerStatus(role=p.role) for p in inp.signers}
        self.documents: dict[int, DocumentStatus] = {}
        self.signing_in_progress: set[tuple[int, str]] = set()
        self.document_locks: dict[int, asyncio.Lock] = {}
        self.attention: str | None = None
        self.attention_since: datetime | None = None
        self.cancelled = False
        self.completed = False
        self.finalising = False
        self.created_at = workflow.now()
        self.documents_sent_at: datetime | None = None
        self.last_signed_at: datetime | None = None
        self.signature_round = 0
        self.version = 0
        # Keyed digest of each signer's current one-time code; kept out of the status query.
        self._code_digest: dict[str, str | None] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # Projection/audit writes an update answered before (see sign_document); finalising waits for them.
        self._records_in_flight: set[asyncio.Task[None]] = set()

    # ---- run -------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: EngagementInput) -> str:
        await self._record("engagement.created", SYSTEM, {"tax_year": str(inp.tax_year)})
        while True:
            await workflow.wait_condition(lambda: self.cancelled or self._all_signed())
            # The last signature's audit entry may still be being written: the certificate of completion
            # must include it, so let every running handler and every such write finish first. One of
            # those handlers may have been a send that added documents to sign: then wait for them too.
            await workflow.wait_condition(self._quiet)
            if self.cancelled or self._all_signed():
                break
        # From here on nothing may add work to sign: a send that arrives now (say, one whose answer was
        # lost in an outage and that Temporal delivers late) is refused rather than left unsigned.
        self.finalising = True
        if not self.cancelled:
            await self._finalise()
        await workflow.wait_condition(self._quiet)
        return self.stage

    async def _finalise(self) -> None:
        await self._record("engagement.signed", SYSTEM)
        try:
            sealed: SealResult = await workflow.execute_activity(
                "seal_documents",
                SealDocuments(self.inp.engagement_id, workflow.now()),
                result_type=SealResult,
                # One pyHanko signature per document plus the certificate: seconds, even for a big return.
                start_to_close_timeout=timedelta(minutes=5),
                # It heartbeats before each document: a crashed worker's seal is retried after this,
                # not after the five minutes.
                heartbeat_timeout=QUICK,
                retry_policy=RETRY,
            )
        except ActivityError as err:
            # Only a non-retryable failure lands here (a document pyHanko cannot seal): tell the preparer.
            await self._flag(f"Sealing the signed documents failed: {err.cause or err}")
            return
        await self._record(
            "documents.sealed",
            SYSTEM,
            {"documents": str(len(sealed.document_ids)), "certificate_sha256": sealed.certificate_sha256},
        )
        await self._message("preparer", Channel.EMAIL, "completed", key="completed")
        self.completed = True
        await self._record("engagement.completed", SYSTEM)

    # ---- queries ---------------------------------------------------------------------------------

    @workflow.query
    def status(self) -> EngagementState:
        waiting_on, since = self._waiting()
        return EngagementState(
            engagement_id=self.inp.engagement_id,
            stage=self.stage,
            signers=self.signers,
            documents=list(self.documents.values()),
            waiting_on=waiting_on,
            waiting_since=since,
            needs_attention=self.attention,
            reminders_sent=sum(s.reminders_sent for s in self.signers.values()),
            version=self.version,
        )

    @property
    def stage(self) -> str:
        return progress.stage_of(self)

    # ---- invite ----------------------------------------------------------------------------------

    @workflow.update
    async def send_invite(self, req: SendInvite) -> InviteResult:
        signer = self.signers[req.role]
        signer.invite_seq += 1
        signer.invite_channel = req.channel
        signer.invited_at = workflow.now()
        signer.invite_expired = False
        signer.registration_failures = 0
        signer.registration_locked = False
        self._clear_attention()
        seq = signer.invite_seq
        send_at = self._send_time(req.role, req.channel)
        await self._record("invite.requested", req.actor, {"role": req.role, "channel": req.channel})
        self._spawn(self._deliver_invite(req.role, req.channel, seq, send_at))
        self._spawn(self._remind_invite(req.role, seq))
        self._spawn(self._expire_invite(req.role, seq))
        masked = self.profiles[req.role].masked(req.channel) or ""
        return InviteResult(seq, masked, send_at if send_at > workflow.now() else None)

    @send_invite.validator
    def _check_invite(self, req: SendInvite) -> None:
        self._check_open()
        profile = self._profile(req.role)
        if req.channel not in (Channel.EMAIL, Channel.SMS):
            raise _invalid("Choose email or text message.")
        expected = profile.digest_for(req.channel)
        if expected is None:
            raise _invalid(
                f"The return has no {'email address' if req.channel == 'email' else 'phone number'}"
                f" for the {req.role}."
            )
        if req.destination_digest is not None and not hmac.compare_digest(req.destination_digest, expected):
            raise _invalid("Invitations go only to the contact on the return.")
        if self.signers[req.role].registered_at is not None:
            raise _invalid(f"The {req.role} has already created an account.")

    async def _deliver_invite(self, role: str, channel: str, seq: int, send_at: datetime) -> None:
        await self._sleep_until(send_at)
        if self.signers[role].invite_seq != seq or self._closed:
            return
        sent = await self._message(role, channel, "invite", key=f"invite:{role}:{seq}", invite_seq=seq)
        if sent.status == "failed":  # a dead number or a bounced address: nobody will get the link
            detail = {"role": role, "channel": channel, "seq": str(seq)}
            await self._record("invite.delivery_refused", SYSTEM, detail)
            await self._flag(
                f"The invitation to {self.profiles[role].masked(channel)} was refused: check the "
                f"{role}'s contact details, or invite them another way."
            )
            return
        await self._record("invite.sent", SYSTEM, {"role": role, "channel": channel, "seq": str(seq)})

    async def _remind_invite(self, role: str, seq: int) -> None:
        signer = self.signers[role]

        def moved_on() -> bool:
            return signer.registered_at is not None or signer.invite_seq != seq or signer.invite_expired

        for number in range(1, self.schedule.invite_reminders_max + 1):
            if await self._wait(moved_on, self.schedule.invite_reminder_interval):
                return
            await self._remind(
                role,
                signer.invite_channel or Channel.EMAIL,
                "invite_reminder",
                number,
                moved_on,
                invite_seq=seq,
            )
        if not await self._wait(moved_on, self.schedule.invite_reminder_interval):
            await self._flag(
                f"The {role} has not used the invitation after "
                f"{self.schedule.invite_reminders_max} reminders."
            )

    async def _expire_invite(self, role: str, seq: int) -> None:
        signer = self.signers[role]
        if await self._wait(
            lambda: signer.registered_at is not None or signer.invite_seq != seq,
            self.schedule.invite_expires_after,
        ):
            return
        signer.invite_expired = True
        await self._record("invite.expired", SYSTEM, {"role": role})

    # ---- registration ----------------------------------------------------------------------------

    @workflow.update
    async def register(self, req: Register) -> RegisterResult:
        signer, profile = self.signers[req.role], self.profiles[req.role]
        contact_ok = any(
            mine is not None and hmac.compare_digest(mine, given)
            for mine, given in (
                (profile.email_digest, req.email_digest),
                (profile.phone_digest, req.phone_digest),
            )
        )
        if not (hmac.compare_digest(profile.identity_digest, req.identity_digest) and contact_ok):
            signer.registration_failures += 1
            left = self.schedule.registration_max_failures - signer.registration_failures
            signer.registration_locked = left <= 0
            await self._record(
                "registration.mismatch", req.actor, {"role": req.role, "attempts_left": str(left)}
            )
            if signer.registration_locked:
                await self._flag(f"The {req.role}'s invitation is locked after repeated identity mismatches.")
            return RegisterResult(ok=False, attempts_left=max(left, 0), locked=signer.registration_locked)
        account_id: int = await workflow.execute_activity(
            "create_account",
            CreateAccount(
                self.inp.engagement_id, req.role, req.username, req.password_hash, req.email, req.phone
            ),
            result_type=int,
            start_to_close_timeout=QUICK,
            retry_policy=RETRY,
        )
        signer.account_id = account_id
        signer.registered_at = workflow.now()
        self._clear_attention()
        await self._record("registration.completed", req.actor, {"role": req.role, "username": req.username})
        self._spawn(self._remind_verification(req.role))
        return RegisterResult(ok=True, account_id=account_id)

    @register.validator
    def _check_register(self, req: Register) -> None:
        self._check_open()
        signer = self.signers[self._profile(req.role).role]
        if signer.registered_at is not None:
            raise _invalid("An account already exists for this invitation. Log in instead.")
        if signer.invite_seq == 0 or req.invite_seq != signer.invite_seq:
            raise _invalid(
                "This invitation link has been replaced. Use the newest link, or ask your preparer."
            )
        if signer.invite_expired:
            raise _invalid("This invitation has expired. Ask your preparer to send a new link.")
        if signer.registration_locked:
            raise _invalid("This invitation is locked. Ask your preparer to send a new link.")

    # ---- one-time codes --------------------------------------------------------------------------

    @workflow.update
    async def request_code(self, req: RequestCode) -> CodeSent:
        signer = self.signers[req.role]
        signer.code_seq += 1
        signer.code_channel = req.channel
        signer.code_sent_at = workflow.now()
        signer.code_expires_at = workflow.now() + self.schedule.code_lifetime
        self._code_digest[req.role] = None
        # Codes go out at once, even at night: the person asked for this one and is waiting for it.
        result = await self._message(req.role, req.channel, "code", key=f"code:{req.role}:{signer.code_seq}")
        if result.status == "failed":  # the provider refused the address for good: no code is on its way
            signer.code_sent_at = signer.code_expires_at = None  # no cooldown: another channel at once
            await self._record("code.delivery_refused", req.actor, {"role": req.role, "channel": req.channel})
            raise _invalid(
                f"{self.profiles[req.role].masked(req.channel)} refused our message, so no code is on its "
                "way. Choose another way to get the code, or ask your preparer to check your details."
            )
        self._code_digest[req.role] = result.secret_digest
        await self._record("code.sent", req.actor, {"role": req.role, "channel": req.channel})
        return CodeSent(
            masked_destination=self.profiles[req.role].masked(req.channel) or "",
            expires_at=signer.code_expires_at,
            resend_after=signer.code_sent_at + self.schedule.code_resend_cooldown,
        )

    @request_code.validator
    def _check_request_code(self, req: RequestCode) -> None:
        self._check_open()
        signer = self._registered(req.role)
        if (
            req.channel not in (Channel.EMAIL, Channel.SMS)
            or self.profiles[req.role].digest_for(req.channel) is None
        ):
            raise _invalid("That way of receiving a code is not available.")
        if signer.verified_at is not None:
            raise _invalid("Your account is already verified.")
        self._check_code_lock(signer)
        if signer.code_sent_at is not None:
            wait = signer.code_sent_at + self.schedule.code_resend_cooldown - workflow.now()
            if wait > timedelta(0):
                raise _invalid(
                    f"Please wait {int(wait.total_seconds()) + 1} seconds before asking for a new code."
                )

    @workflow.update
    async def verify_code(self, req: VerifyCode) -> VerifyResult:
        signer = self.signers[req.role]
        expected = self._code_digest.get(req.role)
        if signer.code_expires_at is None or expected is None:
            return VerifyResult(ok=False, reason="used", tries_left=self._tries_left(signer))
        if workflow.now() > signer.code_expires_at:
            return VerifyResult(ok=False, reason="expired", tries_left=self._tries_left(signer))
        if not hmac.compare_digest(expected, req.code_digest):
            signer.code_failures += 1
            await self._record("code.wrong", req.actor, {"role": req.role})
            if self._tries_left(signer) == 0:
                await self._flag(f"The {req.role} entered too many wrong codes.")
                return VerifyResult(ok=False, reason="locked")
            return VerifyResult(ok=False, reason="wrong", tries_left=self._tries_left(signer))
        self._code_digest[req.role] = None  # single use
        channel = signer.code_channel or Channel.EMAIL
        await workflow.execute_activity(
            "mark_verified",
            MarkVerified(signer.account_id or 0, channel, workflow.now()),
            start_to_close_timeout=QUICK,
            retry_policy=RETRY,
        )
        signer.verified_at = workflow.now()
        if req.role in self._roles_owing_signatures():  # documents arrived before this signer was ready
            channel = signer.invite_channel or Channel.EMAIL
            self._spawn(self._message(req.role, channel, "documents_ready", key=f"docs:{req.role}:verified"))
        self._clear_attention()
        await self._record("verification.completed", req.actor, {"role": req.role, "channel": channel})
        return VerifyResult(ok=True)

    @verify_code.validator
    def _check_verify(self, req: VerifyCode) -> None:
        self._check_open()
        signer = self._registered(req.role)
        if signer.verified_at is not None:
            raise _invalid("Your account is already verified.")
        self._check_code_lock(signer)
        if signer.code_seq == 0:
            raise _invalid("Ask for a code first.")

    def _tries_left(self, signer: SignerStatus) -> int:
        return max(self.schedule.code_max_failures - signer.code_failures, 0)

    def _check_code_lock(self, signer: SignerStatus) -> None:
        if self._tries_left(signer) == 0:
            raise _invalid("Too many wrong codes. Ask your preparer to unlock your account.")

    async def _remind_verification(self, role: str) -> None:
        signer = self.signers[role]

        def moved_on() -> bool:
            return signer.verified_at is not None

        for number in range(1, self.schedule.verify_reminders_max + 1):
            if await self._wait(moved_on, self.schedule.verify_reminder_after):
                return
            await self._remind(
                role, signer.invite_channel or Channel.EMAIL, "verify_reminder", number, moved_on
            )
        # Still not verified one more interval after the last reminder: the preparer should call.
        if not await self._wait(moved_on, self.schedule.verify_reminder_after):
            await self._flag(f"The {role} created an account but has not verified it.")

    # ---- documents and signatures ----------------------------------------------------------------

    @workflow.update
    async def send_documents(self, req: SendDocuments) -> list[int]:
        ids: list[int] = await workflow.execute_activity(
            "publish_documents",
            PublishDocuments(self.inp.engagement_id, req.documents, uploaded_by=req.actor.label),
            result_type=list[int],
            start_to_close_timeout=QUICK,
            retry_policy=RETRY,
        )
        for doc_id, spec in zip(ids, req.documents, strict=True):
            self.documents[doc_id] = DocumentStatus(doc_id, spec.name, list(spec.required_roles))
        self.documents_sent_at = workflow.now()
        await self._record("documents.sent", req.actor, {"count": str(len(ids))})
        batch = min(ids)
        for role in sorted({r for spec in req.documents for r in spec.required_roles} | {"taxpayer"}):
            signer = self.signers[role]
            if signer.verified_at is not None:
                channel = signer.invite_channel or Channel.EMAIL
                self._spawn(self._message(role, channel, "documents_ready", key=f"docs:{role}:{batch}"))
        self.signature_round += 1
        self._spawn(self._remind_signatures(self.signature_round))
        return ids

    @send_documents.validator
    def _check_send_documents(self, req: SendDocuments) -> None:
        self._check_open()
        if self.finalising:
            raise _invalid(
                "Every signature is in and the documents are being sealed: send more documents in a new "
                "engagement."
            )
        if self.signers["taxpayer"].verified_at is None:
            raise _invalid("Documents can be sent once the taxpayer has verified their portal account.")
        if not req.documents:
            raise _invalid("Choose at least one document.")
        for spec in req.documents:
            unknown = set(spec.required_roles) - set(self.profiles)
            if unknown:
                raise _invalid(f"{spec.name}: this return has no {', '.join(sorted(unknown))} to sign.")

    @workflow.update
    async def save_signature(self, req: SaveSignature) -> None:
        await workflow.execute_activity(
            "store_signature_image",
            StoreSignatureImage(self.inp.engagement_id, req.role, req.image_key, workflow.now()),
            start_to_close_timeout=QUICK,
            retry_policy=RETRY,
        )
        self.signers[req.role].signature_on_file = True
        await self._record("signature.saved", req.actor, {"role": req.role})

    @save_signature.validator
    def _check_save_signature(self, req: SaveSignature) -> None:
        self._check_open()
        self._verified(req.role)

    @workflow.update
    async def sign_document(self, req: SignDocument) -> SignResult:
        doc = self.documents[req.document_id]
        self.signing_in_progress.add((req.document_id, req.role))
        try:
            # One signature at a time per document: each is an incremental update of the last version.
            async with self.document_locks.setdefault(req.document_id, asyncio.Lock()):
                result: SignResult = await workflow.execute_activity(
                    "sign_document",
                    SignRequest(self.inp.engagement_id, req.document_id, req.role, req.actor, workflow.now()),
                    result_type=SignResult,
                    start_to_close_timeout=SIGNING,
                    retry_policy=RETRY,
                )
            doc.signed_roles.append(req.role)
            self._clear_attention()  # signing again: whatever stalled has moved
        finally:
            self.signing_in_progress.discard((req.document_id, req.role))
        self.last_signed_at = workflow.now()
        # The signature is stored: answer "Signed!" now and write the dashboard row and audit entry
        # beside it (scheduled in the same workflow task as the answer, so a crash cannot lose it).
        self._record_soon(
            "document.signed", req.actor, {"role": req.role, "document": doc.name, "sha256": result.sha256}
        )
        return result

    @sign_document.validator
    def _check_sign(self, req: SignDocument) -> None:
        self._check_open()
        signer = self._verified(req.role)
        doc = self.documents.get(req.document_id)
        if doc is None:
            raise _invalid("No such document.")
        if req.role not in doc.required_roles:
            raise _invalid(f"{doc.name} does not need the {req.role}'s signature.")
        if not signer.signature_on_file:
            raise _invalid("Add your signature first.")
        if req.role in doc.signed_roles or (req.document_id, req.role) in self.signing_in_progress:
            raise _invalid(f"{doc.name} is already signed.")

    async def _remind_signatures(self, round_number: int) -> None:
        def moved_on() -> bool:
            return self._all_signed() or self.signature_round != round_number or self._closed

        if await self._wait(moved_on, self.schedule.signature_reminder_first):
            return
        for number in range(1, self.schedule.signature_reminders_max + 1):
            # Each signer on their own: one held back by quiet hours must not hold back the other.
            await asyncio.gather(
                *(self._remind_to_sign(role, number, round_number, moved_on) for role in self._remindable())
            )
            if await self._wait(moved_on, self.schedule.signature_reminder_interval):
                return
        await self._flag("Documents are still unsigned after every reminder.")

    def _remindable(self) -> list[str]:
        """Who owes a signature and can act on a reminder (an uninvited spouse waits on the preparer)."""
        return [role for role in self._roles_owing_signatures() if self.signers[role].verified_at is not None]

    async def _remind_to_sign(
        self, role: str, number: int, round_number: int, round_over: Callable[[], bool]
    ) -> None:
        def signed_or_over() -> bool:
            return round_over() or role not in self._roles_owing_signatures()

        channel = self.signers[role].invite_channel or Channel.EMAIL
        await self._remind(
            role, channel, "signature_reminder", number, signed_or_over, key_suffix=str(round_number)
        )

    # ---- cancel, unlock, activity ----------------------------------------------------------------

    @workflow.update
    async def cancel(self, req: Cancel) -> str:
        self.cancelled = True
        await self._record("engagement.cancelled", req.actor, {"reason": req.reason})
        return self.stage

    @cancel.validator
    def _check_cancel(self, req: Cancel) -> None:
        self._check_open()

    @workflow.update
    async def unlock(self, req: Unlock) -> None:
        signer = self.signers[req.role]
        signer.registration_failures = 0
        signer.registration_locked = False
        signer.code_failures = 0
        self._clear_attention()
        await self._record("signer.unlocked", req.actor, {"role": req.role})

    @unlock.validator
    def _check_unlock(self, req: Unlock) -> None:
        self._check_open()
        self._profile(req.role)

    @workflow.signal
    async def client_activity(self, event: ClientActivity) -> None:
        if not self._closed:
            await self._record(f"client.{event.what}", event.actor, {"role": event.role})

    # ---- helpers ---------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Runs a timer or send beside the handlers; kept referenced so it is not collected mid-wait."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _quiet(self) -> bool:
        return workflow.all_handlers_finished() and not self._records_in_flight

    @property
    def _closed(self) -> bool:
        return self.cancelled or self.completed

    def _check_open(self) -> None:
        if self.cancelled:
            raise _invalid("This engagement was cancelled.")
        if self.completed:
            raise _invalid("This engagement is complete.")

    def _profile(self, role: str) -> SignerProfile:
        profile = self.profiles.get(role)
        if profile is None:
            raise _invalid(f"This return has no {role}.")
        return profile

    def _registered(self, role: str) -> SignerStatus:
        self._profile(role)
        signer = self.signers[role]
        if signer.registered_at is None:
            raise _invalid("Create your account first.")
        return signer

    def _verified(self, role: str) -> SignerStatus:
        signer = self._registered(role)
        if signer.verified_at is None:
            raise _invalid("Verify your account first.")
        return signer

    def _all_signed(self) -> bool:
        needed = [doc for doc in self.documents.values() if doc.required_roles]
        return bool(needed) and all(doc.fully_signed for doc in needed)

    def _roles_owing_signatures(self) -> list[str]:
        return sorted(
            {r for d in self.documents.values() for r in d.required_roles if r not in d.signed_roles}
        )

    def _waiting(self) -> tuple[str | None, datetime | None]:
        return progress.waiting_on(self)

    def _send_time(self, role: str, channel: str) -> datetime:
        if channel != Channel.SMS:
            return workflow.now()
        return next_allowed_send(
            workflow.now(),
            self.profiles[role].time_zone,
            self.schedule.quiet_hours_start,
            self.schedule.quiet_hours_end,
        )

    async def _sleep_until(self, when: datetime) -> None:
        delay = (when - workflow.now()).total_seconds()
        if delay > 0:
            await workflow.sleep(delay)

    async def _wait(self, done: Callable[[], bool], timeout: timedelta) -> bool:
        """True when `done` became true (or the engagement closed) before `timeout`."""
        try:
            await workflow.wait_condition(lambda: done() or self._closed, timeout=timeout)
        except TimeoutError:
            return False
        return True

    async def _remind(
        self,
        role: str,
        channel: str,
        purpose: str,
        number: int,
        moved_on: Callable[[], bool],
        *,
        invite_seq: int = 0,
        key_suffix: str = "",
    ) -> None:
        await self._sleep_until(self._send_time(role, channel))
        if moved_on() or self._closed:  # the person acted while the text waited for morning
            return
        key = f"{purpose}:{role}:{invite_seq or key_suffix}:{number}"
        await self._message(role, channel, purpose, key=key, invite_seq=invite_seq, reminder_number=number)
        self.signers[role].reminders_sent += 1
        await self._record(
            f"reminder.{purpose}", SYSTEM, {"role": role, "number": str(number), "channel": channel}
        )

    async def _message(
        self,
        recipient: str,
        channel: str,
        purpose: str,
        *,
        key: str,
        invite_seq: int = 0,
        reminder_number: int = 0,
    ) -> MessageResult:
        request = MessageRequest(
            idempotency_key=f"{workflow.info().workflow_id}:{key}",
            engagement_id=self.inp.engagement_id,
            recipient=recipient,
            channel=channel,
            purpose=purpose,
            invite_seq=invite_seq,
            reminder_number=reminder_number,
        )
        return await workflow.execute_activity(
            "send_message",
            request,
            result_type=MessageResult,
            start_to_close_timeout=QUICK,
            retry_policy=RETRY,
        )

    async def _flag(self, reason: str) -> None:
        if self.attention is None:
            self.attention, self.attention_since = reason, workflow.now()
        await self._record("engagement.needs_attention", SYSTEM, {"reason": reason})
        await self._message("preparer", Channel.EMAIL, "needs_attention", key=f"attention:{self.version}")

    def _clear_attention(self) -> None:
        self.attention = self.attention_since = None

    async def _record(self, action: str, actor: Actor, detail: dict[str, str] | None = None) -> None:
        await self._write(self._transition(action, actor, detail))

    def _record_soon(self, action: str, actor: Actor, detail: dict[str, str] | None = None) -> None:
        """`_record` without waiting for the write; the version and stage are taken now."""
        task = asyncio.create_task(self._write(self._transition(action, actor, detail)))
        self._records_in_flight.add(task)
        task.add_done_callback(self._records_in_flight.discard)

    def _transition(self, action: str, actor: Actor, detail: dict[str, str] | None) -> Transition:
        self.version += 1
        waiting_on, since = self._waiting()
        now = workflow.now()
        return Transition(
            workflow_id=workflow.info().workflow_id,
            engagement_id=self.inp.engagement_id,
            firm_id=self.inp.firm_id,
            version=self.version,
            stage=self.stage,
            waiting_on=waiting_on,
            waiting_since=since,
            reminders_sent=sum(s.reminders_sent for s in self.signers.values()),
            needs_attention=self.attention is not None,
            last_activity_at=now,
            event=AuditEvent(action=action, actor=actor, at=now, detail=detail or {}),
            detail=progress.summary(self),
        )

    async def _write(self, transition: Transition) -> None:
        await workflow.execute_activity(
            "record_transition",
            transition,
            start_to_close_timeout=QUICK,
            retry_policy=RETRY,
        )
