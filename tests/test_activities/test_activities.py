"""The engagement activities in an ActivityEnvironment, on SQLite and PostgreSQL: each effect happens once."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pdfs
import pytest
from pyhanko.sign import signers
from sqlmodel import Session, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.engagement import EngagementActivities, code_digest
from activities.types import (
    AuditEvent,
    CreateAccount,
    DocumentSpec,
    MarkVerified,
    MessageRequest,
    PublishDocuments,
    SignRequest,
    Transition,
)
from core import audit
from core.actor import SYSTEM, Actor
from core.config import Settings
from core.context import Resources
from core.crypto import sha256_hex
from core.enums import Stage
from core.models import (
    AuditEntry,
    Document,
    Engagement,
    EngagementStatus,
    Firm,
    OutboxMessage,
    Preparer,
    Role,
    Signature,
    Signer,
    TaxpayerAccount,
)
from core.progress import Progress, SignerProgress
from core.tokens import InvitePayload, read_invite_token
from esign import pdfsign
from esign.pdfsign import DevCertificates, ensure_dev_certificates, load_signer, read_signatures
from messaging.delivery import DeliveryError, OutgoingMessage
from services.dashboard import DashboardQuery, load_dashboard

T0 = datetime(2025, 2, 10, 15, 0, tzinfo=UTC)
PREPARER = Actor(kind="preparer", id="7", ip="203.0.113.9", user_agent="Firefox/128")
TAXPAYER = Actor(kind="taxpayer", id="taxpayer", ip="198.51.100.7", user_agent="Safari/17")
SPOUSE = Actor(kind="taxpayer", id="spouse", ip="198.51.100.8", user_agent="Chrome/126")
CODE_IN_BODY = re.compile(r"code is (\d{6})")


# --- fixtures --------------------------------------------------------------------------------------------


@dataclass
class CountingBackend:
    """An email provider that records what it was asked to deliver and can be told to fail."""

    name: str = "counting-email"
    attempts: list[OutgoingMessage] = field(default_factory=list)
    delivered: list[OutgoingMessage] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)

    def deliver(self, message: OutgoingMessage) -> str:
        self.attempts.append(message)
        if self.failures:
            raise self.failures.pop(0)
        self.delivered.append(message)
        return f"provider-{len(self.delivered)}"


@dataclass(frozen=True)
class Rows:
    firm_id: int
    preparer_id: int
    engagement_id: int


@dataclass
class Stack:
    res: Resources
    acts: EngagementActivities
    email: CountingBackend
    rows: Rows
    env: ActivityEnvironment = field(default_factory=ActivityEnvironment)

    def run(self, fn: Any, arg: Any) -> Any:
        return self.env.run(fn, arg)

    def db(self) -> Session:
        return Session(self.res.engine, expire_on_commit=False)


@pytest.fixture(scope="module")
def dev_certs(tmp_path_factory: pytest.TempPathFactory) -> DevCertificates:
    paths, _ = ensure_dev_certificates(tmp_path_factory.mktemp("signing"))
    return paths


@pytest.fixture(scope="module")
def pdf_signer(dev_certs: DevCertificates) -> signers.SimpleSigner:
    return load_signer(dev_certs.signing_key, dev_certs.signing_cert, chain=[dev_certs.ca_cert])


@pytest.fixture
def stack(db_settings: Settings, pdf_signer: signers.SimpleSigner) -> Iterator[Stack]:
    res = Resources.from_settings(db_settings)
    email = CountingBackend()
    acts = EngagementActivities(res, pdf_signer, {"email": email})  # texts stay in the dev outbox
    yield Stack(res, acts, email, make_engagement(res))
    res.engine.dispose()


def make_engagement(res: Resources) -> Rows:
    """A joint return: taxpayer Shelby Jones (email and phone) and spouse Sam Jones (email only)."""
    with Session(res.engine, expire_on_commit=False) as db:
        firm = Firm(name="Lovelace Tax")
        db.add(firm)
        db.flush()
        preparer = Preparer(
            firm_id=firm.id or 0, email="ada@firm.test", name="Ada Lovelace", password_hash="x"
        )
        db.add(preparer)
        db.flush()
        engagement = Engagement(firm_id=firm.id or 0, preparer_id=preparer.id or 0, tax_year=2024)
        db.add(engagement)
        db.flush()
        for role, first, ssn, email, phone in [
            (Role.TAXPAYER, "Shelby", "123456789", "shelby.jones@example.com", "+17025550197"),
            (Role.SPOUSE, "Sam", "234567890", "sam.jones@example.com", None),
        ]:
            db.add(
                Signer(
                    engagement_id=engagement.id or 0,
                    role=role,
                    first_name=first,
                    last_name="Jones",
                    ssn_encrypted=res.cipher.encrypt_text(ssn, "ssn"),
                    ssn_last4_digest=res.cipher.digest("ssn-last4", ssn[-4:]),
                    email=email,
                    phone=phone,
                )
            )
        db.commit()
        return Rows(firm.id or 0, preparer.id or 0, engagement.id or 0)


@dataclass
class Overtaking:
    """Other attempts that run while one attempt is paused mid-way, as on a busy worker pool.

    Each gets a moment to finish before the paused attempt goes on; one that waits on a lock the paused
    attempt holds (a correct way to serialise) simply finishes after it instead.
    """

    requests: list[tuple[Any, Any]]
    threads: list[threading.Thread] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def run_now(self) -> None:
        requests, self.requests = self.requests, []  # one-shot: the overtaking attempts do not recurse
        for fn, arg in requests:
            thread = threading.Thread(target=self._attempt, args=(fn, arg))
            self.threads.append(thread)
            thread.start()
            thread.join(timeout=2)

    def _attempt(self, fn: Any, arg: Any) -> None:
        try:
            ActivityEnvironment().run(fn, arg)
        except BaseException as exc:  # reported by finish()
            self.errors.append(exc)

    def finish(self) -> None:
        for thread in self.threads:
            thread.join(timeout=60)
            assert not thread.is_alive()
        if self.errors:
            raise self.errors[0]


# --- record_transition -----------------------------------------------------------------------------------


def progress_at(stage: str) -> Progress:
    return Progress([SignerProgress(Role.TAXPAYER, "Shelby Jones", Stage(stage))])


def transition(
    rows: Rows, version: int, stage: str, *, at: datetime = T0, detail: dict[str, str] | None = None
) -> Transition:
    """A transition as today's workflow records it; with `detail`, as the workflow before `progress`."""
    return Transition(
        workflow_id=f"engagement-{rows.engagement_id}",
        engagement_id=rows.engagement_id,
        firm_id=rows.firm_id,
        version=version,
        stage=stage,
        waiting_on="taxpayer",
        waiting_since=at,
        reminders_sent=version - 1,
        needs_attention=False,
        last_activity_at=at,
        event=AuditEvent(action=f"stage.{stage}", actor=PREPARER, at=at, detail={"version": str(version)}),
        detail=detail or {},
        progress=None if detail is not None else progress_at(stage),
    )


def status_row(stack: Stack) -> EngagementStatus:
    with stack.db() as db:
        row = db.get(EngagementStatus, stack.rows.engagement_id)
        assert row is not None
        return row


def audit_entries(stack: Stack) -> list[AuditEntry]:
    with stack.db() as db:
        return list(db.exec(select(AuditEntry).order_by(AuditEntry.id)))  # type: ignore[arg-type]


def test_first_transition_creates_the_dashboard_row(stack: Stack) -> None:
    stack.run(stack.acts.record_transition, transition(stack.rows, 1, "invited"))
    row = status_row(stack)
    assert (row.firm_id, row.preparer_id, row.tax_year) == (stack.rows.firm_id, stack.rows.preparer_id, 2024)
    assert (row.taxpayer_name, row.spouse_name) == ("Shelby Jones", "Sam Jones")
    assert (row.stage, row.waiting_on, row.version) == ("invited", "taxpayer", 1)
    assert row.waiting_since == T0 and row.last_activity_at == T0
    assert Progress.from_json(row.detail) == progress_at("invited")


def test_the_dashboard_follows_each_transition_though_it_keeps_its_pages(stack: Stack) -> None:
    firm = stack.rows.firm_id
    stack.run(stack.acts.record_transition, transition(stack.rows, 1, "invited"))
    with stack.db() as db:
        first = load_dashboard(db, firm, DashboardQuery())
        assert [r.status.stage for r in first.rows] == ["invited"]
        assert load_dashboard(db, firm, DashboardQuery()) is first  # kept: the firm's rows did not change
    stack.run(stack.acts.record_transition, transition(stack.rows, 2, "registered"))
    with stack.db() as db:
        page = load_dashboard(db, firm, DashboardQuery())
    assert [r.status.stage for r in page.rows] == ["registered"]
    assert (page.counts["invited"], page.counts["registered"]) == (0, 1)


def test_transition_recorded_by_the_workflow_before_progress_is_read_the_same(stack: Stack) -> None:
    # In-flight activity tasks and old histories carry the progress as flat strings in `detail`.
    old = {"taxpayer_step": "verified", "taxpayer_name": "Shelby Jones", "spouse_step": "invited"}
    old |= {"spouse_name": "Sam Jones", "documents": "3", "documents_signed": "1", "documents_to_sign": "2"}
    stack.run(stack.acts.record_transition, transition(stack.rows, 1, "signing", detail=old))
    progress = Progress.from_json(status_row(stack).detail)
    assert [(s.role, s.name, s.step, s.locked_out) for s in progress.signers] == [
        (Role.TAXPAYER, "Shelby Jones", Stage.VERIFIED, False),
        (Role.SPOUSE, "Sam Jones", Stage.INVITED, False),
    ]
    assert (progress.documents, progress.documents_signed, progress.documents_to_sign) == (3, 1, 2)
    assert not progress.all_documents_signed


def test_later_transition_updates_the_row(stack: Stack) -> None:
    stack.run(stack.acts.record_transition, transition(stack.rows, 1, "invited"))
    later = T0 + timedelta(hours=3)
    stack.run(stack.acts.record_transition, transition(stack.rows, 2, "registered", at=later))
    row = status_row(stack)
    assert (row.stage, row.version, row.reminders_sent, row.last_activity_at) == ("registered", 2, 1, later)


def test_older_transition_arriving_late_does_not_overwrite(stack: Stack) -> None:
    stack.run(stack.acts.record_transition, transition(stack.rows, 1, "invited"))
    stack.run(stack.acts.record_transition, transition(stack.rows, 3, "verified", at=T0 + timedelta(hours=2)))
    stack.run(
        stack.acts.record_transition, transition(stack.rows, 2, "registered", at=T0 + timedelta(hours=1))
    )
    row = status_row(stack)
    assert (row.stage, row.version, row.last_activity_at) == ("verified", 3, T0 + timedelta(hours=2))
    # The late event is still a fact for the audit log.
    assert [entry.action for entry in audit_entries(stack)] == [
        "stage.invited",
        "stage.verified",
        "stage.registered",
    ]


def test_older_transition_first_for_a_new_row_is_kept_until_a_newer_one(stack: Stack) -> None:
    stack.run(stack.acts.record_transition, transition(stack.rows, 2, "registered"))
    stack.run(stack.acts.record_transition, transition(stack.rows, 1, "invited"))
    assert (status_row(stack).stage, status_row(stack).version) == ("registered", 2)


def test_retried_transition_writes_one_audit_entry(stack: Stack) -> None:
    for _ in range(3):
        stack.run(stack.acts.record_transition, transition(stack.rows, 1, "invited"))
    (entry,) = audit_entries(stack)
    assert entry.event_key == f"engagement-{stack.rows.engagement_id}:1"
    assert (entry.actor, entry.ip, entry.user_agent) == ("preparer:7", "203.0.113.9", "Firefox/128")
    assert (entry.action, entry.at, entry.detail) == ("stage.invited", T0, '{"version": "1"}')
    assert (entry.firm_id, entry.engagement_id) == (stack.rows.firm_id, stack.rows.engagement_id)


def test_transition_for_a_missing_engagement_fails_for_good(stack: Stack) -> None:
    missing = Rows(stack.rows.firm_id, stack.rows.preparer_id, 999_999)
    with pytest.raises(ApplicationError) as caught:
        stack.run(stack.acts.record_transition, transition(missing, 1, "invited"))
    assert caught.value.non_retryable


def test_concurrent_newer_transition_is_not_overwritten(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two handlers record at once (v2 and v3); v3 commits while v2 is between its read and its write."""
    stack.run(stack.acts.record_transition, transition(stack.rows, 1, "invited"))
    real_record = audit.record
    newer = Overtaking([(stack.acts.record_transition, transition(stack.rows, 3, "verified"))])

    def pause_v2(*args: Any, **kwargs: Any) -> None:
        newer.run_now()  # v2 has read version 1; v3 runs now
        real_record(*args, **kwargs)

    monkeypatch.setattr(audit, "record", pause_v2)
    stack.run(stack.acts.record_transition, transition(stack.rows, 2, "registered"))
    newer.finish()
    assert (status_row(stack).stage, status_row(stack).version) == ("verified", 3)


# --- send_message ----------------------------------------------------------------------------------------


def message(
    stack: Stack, purpose: str = "invite", *, key: str = "", channel: str = "email"
) -> MessageRequest:
    return MessageRequest(
        idempotency_key=key or f"engagement-{stack.rows.engagement_id}:{purpose}:1",
        engagement_id=stack.rows.engagement_id,
        recipient="taxpayer",
        channel=channel,
        purpose=purpose,
        invite_seq=1,
    )


def outbox_rows(stack: Stack) -> list[OutboxMessage]:
    with stack.db() as db:
        return list(db.exec(select(OutboxMessage)))


def test_invite_is_sent_once_per_idempotency_key(stack: Stack) -> None:
    request = message(stack)
    first = stack.run(stack.acts.send_message, request)
    again = stack.run(stack.acts.send_message, request)
    assert first.status == again.status == "sent"
    assert len(stack.email.delivered) == 1
    (row,) = outbox_rows(stack)
    assert (row.status, row.provider_id, row.backend) == ("sent", "provider-1", "counting-email")
    assert row.destination == "shelby.jones@example.com"
    assert row.sent_at is not None


def test_different_keys_send_different_messages(stack: Stack) -> None:
    stack.run(stack.acts.send_message, message(stack, key="k-1"))
    stack.run(stack.acts.send_message, message(stack, key="k-2"))
    assert len(stack.email.delivered) == 2
    assert len(outbox_rows(stack)) == 2


def test_invite_link_opens_the_invitation(stack: Stack) -> None:
    stack.run(stack.acts.send_message, message(stack))
    (sent,) = stack.email.delivered
    assert sent.to == "shelby.jones@example.com"
    match = re.search(r"http://portico\.test/invite/(\S+)", sent.body)
    assert match, sent.body
    payload = read_invite_token(stack.res.cipher.derive_key("invite-token"), match.group(1))
    assert payload == InvitePayload(stack.rows.engagement_id, "taxpayer", 1)


def test_message_body_is_stored_encrypted(stack: Stack) -> None:
    stack.run(stack.acts.send_message, message(stack))
    (row,) = outbox_rows(stack)
    (sent,) = stack.email.delivered
    assert b"/invite/" not in row.body_encrypted
    assert stack.res.cipher.decrypt_text(row.body_encrypted, "outbox") == sent.body


def test_code_digest_matches_the_code_that_went_out(stack: Stack) -> None:
    request = message(stack, "code")
    result = stack.run(stack.acts.send_message, request)
    (sent,) = stack.email.delivered
    match = CODE_IN_BODY.search(sent.body)
    assert match, sent.body
    code = match.group(1)
    assert result.secret_digest == code_digest(stack.res, stack.rows.engagement_id, "taxpayer", code)
    assert result.secret_digest != code_digest(stack.res, stack.rows.engagement_id, "spouse", code)
    (row,) = outbox_rows(stack)
    assert row.secret_digest == result.secret_digest
    assert code.encode() not in row.body_encrypted
    # A retry reports the same digest and sends no second code.
    assert stack.run(stack.acts.send_message, request) == result
    assert len(stack.email.delivered) == 1


def test_code_resent_after_a_transient_failure_matches_its_digest(stack: Stack) -> None:
    stack.email.failures.append(DeliveryError("connection reset", permanent=False))
    request = message(stack, "code")
    with pytest.raises(DeliveryError):
        stack.run(stack.acts.send_message, request)
    result = stack.run(stack.acts.send_message, request)
    (sent,) = stack.email.delivered
    match = CODE_IN_BODY.search(sent.body)
    assert match, sent.body
    assert result.secret_digest == code_digest(
        stack.res, stack.rows.engagement_id, "taxpayer", match.group(1)
    )


def test_text_without_a_provider_waits_in_the_dev_outbox(stack: Stack) -> None:
    result = stack.run(stack.acts.send_message, message(stack, channel="sms"))
    assert result.status == "sent"
    assert stack.email.attempts == []
    (row,) = outbox_rows(stack)
    assert (row.backend, row.channel, row.destination) == ("outbox", "sms", "+17025550197")
    assert "/invite/" in stack.res.cipher.decrypt_text(row.body_encrypted, "outbox")


def test_missing_contact_fails_for_good(stack: Stack) -> None:
    request = MessageRequest(
        idempotency_key="k-sms-spouse",
        engagement_id=stack.rows.engagement_id,
        recipient="spouse",  # the spouse has no phone on the return
        channel="sms",
        purpose="invite",
        invite_seq=1,
    )
    with pytest.raises(ApplicationError) as caught:
        stack.run(stack.acts.send_message, request)
    assert caught.value.non_retryable
    assert outbox_rows(stack) == []


def test_crash_after_claim_is_not_resent(stack: Stack) -> None:
    """The worker dies while the provider call is in flight: the retry must not send a second copy."""
    stack.email.failures.append(RuntimeError("worker process killed"))
    request = message(stack)
    with pytest.raises(RuntimeError):
        stack.run(stack.acts.send_message, request)
    (claimed,) = outbox_rows(stack)
    assert claimed.status == "sending"
    for _ in range(2):
        assert stack.run(stack.acts.send_message, request).status == "uncertain"
    assert len(stack.email.attempts) == 1
    (row,) = outbox_rows(stack)
    assert row.status == "uncertain"


def test_transient_failure_is_retried_and_then_sent_once(stack: Stack) -> None:
    stack.email.failures.append(DeliveryError("provider answered 503", permanent=False))
    request = message(stack)
    with pytest.raises(DeliveryError):
        stack.run(stack.acts.send_message, request)
    (row,) = outbox_rows(stack)
    assert row.status == "retry"
    assert row.error is not None and "503" in row.error
    assert stack.run(stack.acts.send_message, request).status == "sent"
    assert stack.run(stack.acts.send_message, request).status == "sent"
    assert len(stack.email.attempts) == 2
    assert len(stack.email.delivered) == 1
    (row,) = outbox_rows(stack)
    assert (row.status, row.provider_id) == ("sent", "provider-1")


def test_permanent_failure_is_recorded_without_raising(stack: Stack) -> None:
    stack.email.failures.append(DeliveryError("mailbox does not exist", permanent=True))
    request = message(stack)
    assert stack.run(stack.acts.send_message, request).status == "failed"
    assert stack.run(stack.acts.send_message, request).status == "failed"
    assert len(stack.email.attempts) == 1
    (row,) = outbox_rows(stack)
    assert row.status == "failed"
    assert row.error == "mailbox does not exist"


def test_message_to_the_preparer_goes_to_the_preparer(stack: Stack) -> None:
    request = MessageRequest(
        idempotency_key="k-attention",
        engagement_id=stack.rows.engagement_id,
        recipient="preparer",
        channel="email",
        purpose="needs_attention",
    )
    assert stack.run(stack.acts.send_message, request).status == "sent"
    (sent,) = stack.email.delivered
    assert sent.to == "ada@firm.test"
    assert f"/engagements/{stack.rows.engagement_id}" in sent.body


def test_item15_attention_mail_goes_to_an_active_administrator_when_the_preparer_has_left(
    stack: Stack,
) -> None:
    with stack.db() as db:
        db.add(Preparer(firm_id=stack.rows.firm_id, email="grace@firm.test", name="Grace", password_hash="x"))
        db.add(
            Preparer(
                firm_id=stack.rows.firm_id,
                email="boss@firm.test",
                name="Barbara",
                password_hash="x",
                is_admin=True,
            )
        )
        left = db.get(Preparer, stack.rows.preparer_id)
        assert left is not None
        left.active = False
        db.add(left)
        db.commit()
    for purpose in ("needs_attention", "completed"):
        request = MessageRequest(
            idempotency_key=f"k-{purpose}",
            engagement_id=stack.rows.engagement_id,
            recipient="preparer",
            channel="email",
            purpose=purpose,
        )
        assert stack.run(stack.acts.send_message, request).status == "sent"
    assert [m.to for m in stack.email.delivered] == ["boss@firm.test", "boss@firm.test"]


# --- accounts --------------------------------------------------------------------------------------------


def account_request(stack: Stack, role: str = "taxpayer", username: str = "shelby.jones") -> CreateAccount:
    return CreateAccount(
        engagement_id=stack.rows.engagement_id,
        role=role,
        username=username,
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        email="shelby.jones@example.com",
        phone="+17025550197",
    )


def accounts(stack: Stack) -> list[TaxpayerAccount]:
    with stack.db() as db:
        return list(db.exec(select(TaxpayerAccount)))


def test_create_account_is_idempotent_per_signer(stack: Stack) -> None:
    first = stack.run(stack.acts.create_account, account_request(stack))
    again = stack.run(stack.acts.create_account, account_request(stack))
    assert first == again and first > 0
    (account,) = accounts(stack)
    assert (account.id, account.username) == (first, "shelby.jones")


def test_username_of_another_signer_is_taken(stack: Stack) -> None:
    taxpayer_id = stack.run(stack.acts.create_account, account_request(stack))
    with pytest.raises(ApplicationError) as caught:
        stack.run(stack.acts.create_account, account_request(stack, role="spouse"))
    assert caught.value.type == "UsernameTaken"
    assert caught.value.non_retryable
    assert len(accounts(stack)) == 1
    # The spouse can pick another name afterwards.
    spouse_id = stack.run(stack.acts.create_account, account_request(stack, role="spouse", username="sam"))
    assert spouse_id != taxpayer_id
    assert {(a.id, a.username) for a in accounts(stack)} == {
        (taxpayer_id, "shelby.jones"),
        (spouse_id, "sam"),
    }


def test_mark_verified_keeps_the_first_verification(stack: Stack) -> None:
    account_id = stack.run(stack.acts.create_account, account_request(stack))
    stack.run(stack.acts.mark_verified, MarkVerified(account_id, "sms", T0))
    stack.run(stack.acts.mark_verified, MarkVerified(account_id, "email", T0 + timedelta(hours=1)))
    (account,) = accounts(stack)
    assert (account.verified_at, account.verified_channel) == (T0, "sms")


# --- documents and signatures ----------------------------------------------------------------------------


def upload(stack: Stack, ref: str, roles: list[str], title: str = "Form 8879") -> DocumentSpec:
    pdf = pdfs.make_pdf(pages=2, title=title)
    key = stack.res.store.new_key("upload")
    stack.res.store.put(key, pdf)
    return DocumentSpec(
        upload_ref=ref,
        storage_key=key,
        name=f"{title}.pdf",
        sha256=sha256_hex(pdf),
        size=len(pdf),
        pages=2,
        required_roles=roles,
    )


def publish(stack: Stack, specs: list[DocumentSpec]) -> list[int]:
    request = PublishDocuments(stack.rows.engagement_id, specs, uploaded_by="preparer:7")
    ids: list[int] = stack.run(stack.acts.publish_documents, request)
    return ids


def test_publish_documents_is_idempotent_per_upload(stack: Stack) -> None:
    specs = [
        upload(stack, "up-1", ["taxpayer", "spouse"], "Form 8879"),
        upload(stack, "up-2", ["taxpayer"], "Form 8453"),
        upload(stack, "up-3", [], "Form 1040 copy"),
    ]
    ids = publish(stack, specs)
    assert publish(stack, specs) == ids  # a retried activity
    assert len(set(ids)) == 3
    with stack.db() as db:
        documents = list(db.exec(select(Document)))
        signatures = {(s.document_id, s.role) for s in db.exec(select(Signature))}
    assert len(documents) == 3
    assert signatures == {(ids[0], Role.TAXPAYER), (ids[0], Role.SPOUSE), (ids[1], Role.TAXPAYER)}
    for doc, spec in zip(sorted(documents, key=lambda d: d.upload_ref), specs, strict=True):
        assert (doc.storage_key, doc.current_key, doc.sha256, doc.current_sha256) == (
            spec.storage_key,
            spec.storage_key,
            spec.sha256,
            spec.sha256,
        )
        assert (doc.direction, doc.uploaded_by, doc.name) == ("to_client", "preparer:7", spec.name)


def test_publishing_more_later_adds_only_the_new_ones(stack: Stack) -> None:
    first = upload(stack, "up-1", ["taxpayer"])
    (first_id,) = publish(stack, [first])
    ids = publish(stack, [first, upload(stack, "up-2", ["spouse"], "Form 8453")])
    assert ids[0] == first_id and ids[1] != first_id
    with stack.db() as db:
        assert len(list(db.exec(select(Signature)))) == 2


def sign_request(stack: Stack, document_id: int, role: str, actor: Actor, at: datetime) -> SignRequest:
    return SignRequest(stack.rows.engagement_id, document_id, role, actor, at)


def current_pdf(stack: Stack, document_id: int) -> tuple[Document, bytes]:
    with stack.db() as db:
        doc = db.get(Document, document_id)
        assert doc is not None
    return doc, stack.res.store.get(doc.current_key)


def test_sign_document_signs_once(stack: Stack) -> None:
    spec = upload(stack, "up-1", ["taxpayer", "spouse"])
    (doc_id,) = publish(stack, [spec])
    signed_at = T0 + timedelta(days=1)
    first = stack.run(stack.acts.sign_document, sign_request(stack, doc_id, "taxpayer", TAXPAYER, signed_at))
    again = stack.run(
        stack.acts.sign_document, sign_request(stack, doc_id, "taxpayer", TAXPAYER, signed_at + timedelta(1))
    )
    assert again == first
    assert first.signed_at == signed_at
    doc, pdf = current_pdf(stack, doc_id)
    assert sha256_hex(pdf) == first.sha256 == doc.current_sha256
    (report,) = read_signatures(pdf)
    assert (report.field_name, report.signer_name) == ("Taxpayer", "Shelby Jones")
    assert report.intact and report.valid
    with stack.db() as db:
        row = db.exec(select(Signature).where(Signature.role == "taxpayer")).one()
    assert (row.signed_at, row.sha256_after) == (signed_at, first.sha256)
    assert (row.ip, row.user_agent) == ("198.51.100.7", "Safari/17")


def test_signed_copy_is_stored_encrypted_and_the_original_is_kept(stack: Stack) -> None:
    spec = upload(stack, "up-1", ["taxpayer"], "Return of Shelby Jones")
    original = stack.res.store.get(spec.storage_key)
    (doc_id,) = publish(stack, [spec])
    stack.run(stack.acts.sign_document, sign_request(stack, doc_id, "taxpayer", TAXPAYER, T0))
    doc, signed = current_pdf(stack, doc_id)
    assert doc.current_key != doc.storage_key
    assert stack.res.store.get(doc.storage_key) == original
    assert (doc.sha256, sha256_hex(original)) == (spec.sha256, spec.sha256)
    blob = (stack.res.settings.data_dir / "documents").rglob(doc.current_key.split("/")[1])
    (path,) = list(blob)
    raw = path.read_bytes()
    assert b"%PDF" not in raw and b"Shelby Jones" not in raw and signed[-200:] not in raw


def test_joint_return_carries_both_signatures(stack: Stack, dev_certs: DevCertificates) -> None:
    (doc_id,) = publish(stack, [upload(stack, "up-1", ["taxpayer", "spouse"])])
    stack.run(stack.acts.sign_document, sign_request(stack, doc_id, "taxpayer", TAXPAYER, T0))
    stack.run(
        stack.acts.sign_document, sign_request(stack, doc_id, "spouse", SPOUSE, T0 + timedelta(hours=1))
    )
    stack.run(
        stack.acts.sign_document, sign_request(stack, doc_id, "spouse", SPOUSE, T0 + timedelta(hours=2))
    )
    _, pdf = current_pdf(stack, doc_id)
    reports = read_signatures(pdf, trust_roots=[dev_certs.ca_cert])
    assert [(r.field_name, r.signer_name) for r in reports] == [
        ("Taxpayer", "Shelby Jones"),
        ("Spouse", "Sam Jones"),
    ]
    assert all(r.intact and r.valid and r.trusted for r in reports)


def test_late_attempt_does_not_drop_a_later_signature(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The taxpayer's first attempt outlives its timeout; the retry and the spouse finish before it does."""
    (doc_id,) = publish(stack, [upload(stack, "up-1", ["taxpayer", "spouse"])])
    real_sign = pdfsign.sign_pdf
    overtaking = Overtaking(
        [
            (
                stack.acts.sign_document,
                sign_request(stack, doc_id, "taxpayer", TAXPAYER, T0 + timedelta(minutes=1)),
            ),
            (
                stack.acts.sign_document,
                sign_request(stack, doc_id, "spouse", SPOUSE, T0 + timedelta(minutes=2)),
            ),
        ]
    )

    def slow_first_attempt(*args: Any, **kwargs: Any) -> bytes:
        overtaking.run_now()
        return real_sign(*args, **kwargs)

    monkeypatch.setattr(pdfsign, "sign_pdf", slow_first_attempt)
    stack.run(stack.acts.sign_document, sign_request(stack, doc_id, "taxpayer", TAXPAYER, T0))
    overtaking.finish()
    _, pdf = current_pdf(stack, doc_id)
    assert sorted(r.field_name for r in read_signatures(pdf)) == ["Spouse", "Taxpayer"]


def test_signing_a_missing_document_fails_for_good(stack: Stack) -> None:
    with pytest.raises(ApplicationError) as caught:
        stack.run(stack.acts.sign_document, sign_request(stack, 999_999, "taxpayer", TAXPAYER, T0))
    assert caught.value.non_retryable


def test_system_actor_is_usable_in_transitions(stack: Stack) -> None:
    """Reminders are recorded by the system itself, with no IP or browser."""
    base = transition(stack.rows, 1, "invited")
    event = AuditEvent(action="reminder.sent", actor=SYSTEM, at=T0)
    stack.run(stack.acts.record_transition, Transition(**{**base.__dict__, "event": event}))
    (entry,) = audit_entries(stack)
    assert (entry.actor, entry.ip, entry.user_agent) == ("system", None, None)
