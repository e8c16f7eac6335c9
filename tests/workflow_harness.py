"""Drives EngagementWorkflow on the time-skipping test server with in-memory stand-ins for its activities.

Each test gets a worker on a fresh task queue; the activities are methods of one in-memory object,
registered under the production names, so the workflow code under test is exactly what runs in
production. They record every call with the (virtual) time the workflow scheduled it: the instant a
message "went out".

Two habits of the shared time-skipping server (one clock for the whole session) matter here:
- while an activity runs, the clock is locked; an activity cut off by terminating its workflow keeps it
  locked until its timeout passes in *real* time, so `engagement()` lets work settle before terminating;
- `handle.result()` unlocks the clock while it waits, and the server may then leap years ahead, so
  `Engagement.result()` waits with auto time skipping off.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.types import (
    AccountToLink,
    CreateAccount,
    DeclineRecord,
    DocumentSpec,
    MarkVerified,
    MessageRequest,
    MessageResult,
    PaperSignature,
    PublishDocuments,
    SealDocuments,
    SealResult,
    SignRequest,
    SignResult,
    StoreSignatureImage,
    Transition,
)
from core.actor import Actor
from workflows.engagement import EngagementWorkflow
from workflows.types import (
    Cancel,
    CodeSent,
    DeclineDocument,
    EngagementInput,
    EngagementState,
    InviteResult,
    LinkAccount,
    Register,
    RegisterResult,
    RequestCode,
    SaveSignature,
    Schedule,
    SendDocuments,
    SendInvite,
    SignDocument,
    SignerProfile,
    SignOnPaper,
    VerifyCode,
    VerifyResult,
)

PREPARER = Actor(kind="preparer", id="7", ip="203.0.113.5", user_agent="pytest")
NEW_YORK = "America/New_York"
# Generous next to the milliseconds an activity round trip takes; tiny next to any schedule step.
SLACK = timedelta(seconds=5)


def code_digest_for(idempotency_key: str) -> str:
    """The keyed digest the fake messenger "sends" for a code: known to the test, unique per code."""
    return hashlib.sha256(f"code:{idempotency_key}".encode()).hexdigest()


def signer(role: str, time_zone: str = NEW_YORK) -> SignerProfile:
    return SignerProfile(
        role=role,
        display_name=f"{role.title()} O'Neil",
        time_zone=time_zone,
        identity_digest=f"identity-{role}",
        email_digest=f"email-{role}",
        phone_digest=f"phone-{role}",
        masked_email="she*****com",
        masked_phone="70*****97",
    )


def document(name: str, *roles: str) -> DocumentSpec:
    return DocumentSpec(
        upload_ref=f"upload-{name}",
        storage_key=f"uploads/{name}",
        name=name,
        sha256="0" * 64,
        size=1234,
        pages=2,
        required_roles=list(roles),
    )


def actor_for(role: str) -> Actor:
    return Actor(kind="taxpayer", id=role, ip="198.51.100.7", user_agent="pytest")


@dataclass(frozen=True)
class SentMessage:
    request: MessageRequest
    at: datetime  # workflow time when the send was scheduled

    @property
    def purpose(self) -> str:
        return self.request.purpose

    @property
    def recipient(self) -> str:
        return self.request.recipient


@dataclass
class FakeActivities:
    """Every activity the workflow calls, answering plausibly and remembering what it was asked."""

    messages: list[SentMessage] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    accounts: list[CreateAccount] = field(default_factory=list)
    links: list[AccountToLink] = field(default_factory=list)
    verifications: list[MarkVerified] = field(default_factory=list)
    published: list[PublishDocuments] = field(default_factory=list)
    signature_images: list[StoreSignatureImage] = field(default_factory=list)
    signatures: list[SignRequest] = field(default_factory=list)
    seals: list[SealDocuments] = field(default_factory=list)
    declines: list[DeclineRecord] = field(default_factory=list)
    paper: list[PaperSignature] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    # Audit actions whose projection write takes this many (real) seconds, to expose races.
    slow_actions: dict[str, float] = field(default_factory=dict)
    # Side effects in the order they took effect: "transition:<action>", "seal".
    journal: list[str] = field(default_factory=list)
    # Audit actions whose projection write has started (it may still be running).
    started: list[str] = field(default_factory=list)
    # Seal attempts that heartbeat once and then hang, like a worker that died mid-seal.
    seal_hangs: int = 0
    # Channels whose provider refuses every message for good (a dead number, a bounced address).
    refused_channels: set[str] = field(default_factory=set)

    @activity.defn(name="send_message")
    async def send_message(self, req: MessageRequest) -> MessageResult:
        if req.channel in self.refused_channels:
            return MessageResult("failed")
        self.messages.append(SentMessage(req, activity.info().current_attempt_scheduled_time))
        digest = code_digest_for(req.idempotency_key) if req.purpose == "code" else None
        return MessageResult("sent", digest)

    @activity.defn(name="record_transition")
    async def record_transition(self, transition: Transition) -> None:
        self.started.append(transition.event.action)
        await asyncio.sleep(self.slow_actions.get(transition.event.action, 0))
        self.transitions.append(transition)
        self.journal.append(f"transition:{transition.event.action}")

    @activity.defn(name="create_account")
    async def create_account(self, req: CreateAccount) -> int:
        self.accounts.append(req)
        return 100 + len(self.accounts)

    @activity.defn(name="link_account")
    async def link_account(self, req: AccountToLink) -> None:
        self.links.append(req)

    @activity.defn(name="mark_verified")
    async def mark_verified(self, req: MarkVerified) -> None:
        self.verifications.append(req)

    @activity.defn(name="publish_documents")
    async def publish_documents(self, req: PublishDocuments) -> list[int]:
        self.published.append(req)
        first = 1 + sum(len(p.documents) for p in self.published[:-1])
        return list(range(first, first + len(req.documents)))

    @activity.defn(name="store_signature_image")
    async def store_signature_image(self, req: StoreSignatureImage) -> None:
        self.signature_images.append(req)

    @activity.defn(name="sign_document")
    async def sign_document(self, req: SignRequest) -> SignResult:
        self.signatures.append(req)
        return SignResult(req.document_id, req.role, req.at, sha256=f"{req.document_id:064x}")

    @activity.defn(name="record_decline")
    async def record_decline(self, req: DeclineRecord) -> None:
        self.declines.append(req)

    @activity.defn(name="record_paper_signature")
    async def record_paper_signature(self, req: PaperSignature) -> None:
        self.paper.append(req)

    @activity.defn(name="seal_documents")
    async def seal_documents(self, req: SealDocuments) -> SealResult:
        self.seals.append(req)
        if len(self.seals) <= self.seal_hangs:
            activity.heartbeat()
            await asyncio.sleep(3600)  # cancelled when the worker stops
        self.journal.append("seal")
        signed = {s.document_id for s in self.signatures} | {p.document_id for p in self.paper}
        return SealResult(document_ids=sorted(signed), certificate_sha256="c" * 64)

    @activity.defn(dynamic=True)
    async def unknown_activity(self, args: Sequence[RawValue]) -> None:
        """A name the fakes do not know fails at once, instead of being retried until the test times out."""
        name = activity.info().activity_type
        self.unknown.append(name)
        raise ApplicationError(
            f"no fake for activity {name!r}: add one to tests/workflow_harness.py", non_retryable=True
        )

    def all(self) -> list[Any]:
        return [
            self.send_message,
            self.record_transition,
            self.create_account,
            self.link_account,
            self.mark_verified,
            self.publish_documents,
            self.store_signature_image,
            self.sign_document,
            self.record_decline,
            self.record_paper_signature,
            self.seal_documents,
            self.unknown_activity,
        ]


@dataclass
class Engagement:
    """One running engagement and the steps people take in it."""

    env: WorkflowEnvironment
    handle: WorkflowHandle[EngagementWorkflow, str]
    fake: FakeActivities
    profiles: dict[str, SignerProfile]
    started_at: datetime

    # ---- time ----------------------------------------------------------------------------------

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def advance_to(self, when: datetime) -> None:
        """Skips the server's clock forward to `when`, firing every timer due on the way."""
        now = await self.now()
        assert when > now, f"cannot go back from {now} to {when}"
        await self.env.sleep(when - now)

    async def advance(self, by: timedelta) -> None:
        await self.env.sleep(by)

    async def settle(self) -> None:
        """Lets work an update spawned (a send, a timer's start) finish: the clock holds while it runs."""
        await self.env.sleep(timedelta(seconds=1))

    # ---- reading -------------------------------------------------------------------------------

    async def result(self) -> str:
        """The workflow's result, without the SDK's unlocking of the shared clock while it waits:
        unlocked, the test server may leap years ahead the moment the workflow closes."""
        with self.env.auto_time_skipping_disabled():
            return await self.handle.result()

    async def status(self) -> EngagementState:
        return await self.handle.query(EngagementWorkflow.status)

    def sent(self, purpose: str | None = None, recipient: str | None = None) -> list[SentMessage]:
        return [
            m
            for m in self.fake.messages
            if (purpose is None or m.purpose == purpose) and (recipient is None or m.recipient == recipient)
        ]

    def events(self, action: str) -> list[Transition]:
        return [t for t in self.fake.transitions if t.event.action == action]

    def history(self) -> list[str]:
        """Audit actions in the workflow's order (by version; concurrent writes may land in any order)."""
        return [t.event.action for t in sorted(self.fake.transitions, key=lambda t: t.version)]

    def last_code_digest(self, role: str = "taxpayer") -> str:
        return code_digest_for(self.sent("code", role)[-1].request.idempotency_key)

    # ---- steps ---------------------------------------------------------------------------------

    async def invite(self, role: str = "taxpayer", channel: str = "email") -> InviteResult:
        result = await self.handle.execute_update(
            EngagementWorkflow.send_invite, SendInvite(role=role, channel=channel, actor=PREPARER)
        )
        await self.settle()  # the invitation goes out beside the update, unless quiet hours hold it
        return result

    async def register(
        self, role: str = "taxpayer", *, identity_digest: str | None = None, invite_seq: int | None = None
    ) -> RegisterResult:
        profile = self.profiles[role]
        if invite_seq is None:
            invite_seq = (await self.status()).signers[role].invite_seq
        return await self.handle.execute_update(
            EngagementWorkflow.register,
            Register(
                role=role,
                invite_seq=invite_seq,
                identity_digest=identity_digest or profile.identity_digest,
                email_digest=profile.email_digest or "",
                phone_digest=profile.phone_digest or "",
                username=f"{role}-user",
                password_hash="argon2-hash",
                email=f"{role}@example.test",
                phone="+17025550197",
                actor=actor_for(role),
            ),
        )

    async def link(
        self, role: str = "taxpayer", *, identity_digest: str | None = None, account_id: int = 41
    ) -> RegisterResult:
        """A returning client's existing account accepts this invitation (`link_account`)."""
        profile = self.profiles[role]
        invite_seq = (await self.status()).signers[role].invite_seq
        return await self.handle.execute_update(
            EngagementWorkflow.link_account,
            LinkAccount(
                role=role,
                invite_seq=invite_seq,
                identity_digest=identity_digest or profile.identity_digest,
                email_digest=profile.email_digest or "",
                phone_digest="",
                account_id=account_id,
                actor=actor_for(role),
            ),
        )

    async def request_code(self, role: str = "taxpayer", channel: str = "email") -> CodeSent:
        return await self.handle.execute_update(
            EngagementWorkflow.request_code, RequestCode(role=role, channel=channel, actor=actor_for(role))
        )

    async def verify_code(self, role: str = "taxpayer", code_digest: str | None = None) -> VerifyResult:
        return await self.handle.execute_update(
            EngagementWorkflow.verify_code,
            VerifyCode(
                role=role, code_digest=code_digest or self.last_code_digest(role), actor=actor_for(role)
            ),
        )

    async def verify(self, role: str = "taxpayer") -> None:
        """Asks for a code by email and enters it."""
        await self.request_code(role)
        result = await self.verify_code(role)
        assert result.ok, result

    async def onboard(self, role: str = "taxpayer", channel: str = "email") -> None:
        """Invite, register and verify: the signer can now receive and sign documents."""
        await self.invite(role, channel)
        assert (await self.register(role)).ok
        await self.verify(role)

    async def send_documents(self, *docs: DocumentSpec, replaces: int | None = None) -> list[int]:
        ids = await self.handle.execute_update(
            EngagementWorkflow.send_documents,
            SendDocuments(documents=list(docs), actor=PREPARER, replaces=replaces),
        )
        await self.settle()  # the "documents ready" notices go out beside the update
        return ids

    async def save_signature(self, role: str = "taxpayer") -> None:
        await self.handle.execute_update(
            EngagementWorkflow.save_signature,
            SaveSignature(role=role, image_key=f"signatures/{role}.png", actor=actor_for(role)),
        )

    async def sign(self, role: str, document_id: int) -> SignResult:
        return await self.handle.execute_update(
            EngagementWorkflow.sign_document,
            SignDocument(role=role, document_id=document_id, actor=actor_for(role)),
        )

    async def decline(self, role: str, document_id: int, reason: str = "My name is misspelled") -> None:
        await self.handle.execute_update(
            EngagementWorkflow.decline_document,
            DeclineDocument(role=role, document_id=document_id, reason=reason, actor=actor_for(role)),
        )
        await self.settle()  # the preparer's notice goes out beside the update

    async def sign_on_paper(
        self, document_id: int, *roles: str, scan_document_id: int = 900, by: Actor | None = None
    ) -> None:
        """The scan of a hand-signed copy: uploaded by the client (their own role), or attested by `by`."""
        await self.handle.execute_update(
            EngagementWorkflow.sign_on_paper,
            SignOnPaper(
                document_id=document_id,
                roles=list(roles),
                scan_document_id=scan_document_id,
                actor=by or actor_for(roles[0]),
            ),
        )

    async def cancel(self, reason: str = "client withdrew") -> str:
        return await self.handle.execute_update(EngagementWorkflow.cancel, Cancel(PREPARER, reason))


async def refusal(update: Awaitable[Any]) -> str:
    """Runs an update that must be refused and returns the workflow's message to the person."""
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await update
    cause = info.value.cause
    assert isinstance(cause, ApplicationError), repr(cause)
    assert cause.type == "InvalidRequest", cause.type
    return cause.message


def assert_sent_at(messages: list[SentMessage], expected: list[datetime]) -> None:
    """Exactly these messages, each sent at its expected instant (within SLACK)."""
    sent = [m.at for m in messages]
    close = len(sent) == len(expected) and all(
        abs(s - e) <= SLACK for s, e in zip(sent, expected, strict=True)
    )
    assert close, f"sent at {[s.isoformat() for s in sent]}, expected {[e.isoformat() for e in expected]}"


def local_time(day: date, hour: int, time_zone: str) -> datetime:
    """`hour` o'clock on `day` on the wall clocks of `time_zone`, as a UTC datetime."""
    return datetime.combine(day, time(hour), tzinfo=ZoneInfo(time_zone)).astimezone(UTC)


def next_local_hour(after: datetime, hour: int, time_zone: str) -> datetime:
    """The first instant after `after` at which the wall clocks of `time_zone` read `hour`:00."""
    day = after.astimezone(ZoneInfo(time_zone)).date()
    candidate = local_time(day, hour, time_zone)
    return candidate if candidate > after else local_time(day + timedelta(days=1), hour, time_zone)


@asynccontextmanager
async def engagement(
    env: WorkflowEnvironment,
    roles: tuple[str, ...] = ("taxpayer",),
    *,
    time_zone: str = NEW_YORK,
    schedule: Schedule | None = None,
    taxpayer_signs_first: bool = False,
) -> AsyncIterator[Engagement]:
    """Starts an engagement with a worker of its own; terminates it afterwards so no timer outlives
    the test and holds up the shared server's clock."""
    fake = FakeActivities()
    task_queue = f"engagement-tests-{uuid.uuid4().hex[:12]}"
    profiles = {role: signer(role, time_zone) for role in roles}
    inp = EngagementInput(
        engagement_id=int(uuid.uuid4().int % 1_000_000_000),
        firm_id=1,
        preparer_id=7,
        tax_year=2025,
        signers=list(profiles.values()),
        schedule=schedule or Schedule(),
        taxpayer_signs_first=taxpayer_signs_first,
    )
    async with Worker(
        env.client, task_queue=task_queue, workflows=[EngagementWorkflow], activities=fake.all()
    ):
        handle = await env.client.start_workflow(
            EngagementWorkflow.run,
            inp,
            id=f"engagement-{inp.engagement_id}-{uuid.uuid4().hex[:6]}",
            task_queue=task_queue,
        )
        eng = Engagement(env, handle, fake, profiles, await env.get_current_time())
        try:
            yield eng
        finally:
            # An activity still running when the workflow is terminated keeps the test server's clock
            # locked until its timeout passes in real time, stalling every later test: let it finish.
            await eng.settle()
            with suppress(RPCError):  # it may have finished already
                await handle.terminate("test finished")
        assert fake.unknown == [], f"the workflow called activities the harness does not fake: {fake.unknown}"
