"""Sending a message at most once per idempotency key, whoever asks and however often.

The row is claimed (status "sending") before the provider is called, and confirmed after. A retry
that finds a confirmed row returns it; one that finds a claim left by a crash does not send again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from core.context import Resources
from core.models import Engagement, Firm, OutboxMessage, utcnow
from messaging.delivery import DeliveryError, MessageBackend, OutgoingMessage

Compose = Callable[[Session], tuple[OutgoingMessage, str | None]]


@dataclass(frozen=True)
class Sent:
    status: str  # "sent", "failed" (permanent refusal), "uncertain" (a crash mid-send: not repeated)
    secret_digest: str | None = None


class Outbox:
    def __init__(self, resources: Resources, backends: dict[str, MessageBackend]) -> None:
        self.r = resources
        self.backends = backends  # by channel; a missing channel means "keep it in the outbox"

    def send(self, key: str, engagement_id: int | None, purpose: str, compose: Compose) -> Sent:
        """Composes (only if needed) and sends; raises DeliveryError when a retry may succeed."""
        with Session(self.r.engine, expire_on_commit=False) as session:
            existing = session.exec(select(OutboxMessage).where(OutboxMessage.idempotency_key == key)).first()
            if existing is not None and existing.status != "retry":
                if existing.status == "sending":
                    # An earlier attempt died between claiming and confirming: it may have gone out.
                    # Sending again could duplicate it, so we record the doubt instead (at most once).
                    existing.status = "uncertain"
                    session.add(existing)
                    session.commit()
                return Sent(existing.status, existing.secret_digest)
            message, digest = compose(session)
            message = _in_firms_name(session, engagement_id, message)
            backend = self.backends.get(message.channel)
            row = existing or OutboxMessage(
                idempotency_key=key,
                engagement_id=engagement_id,
                purpose=purpose,
                channel=message.channel,
                destination=message.to,
                subject=message.subject,
                body_encrypted=b"",
                backend=backend.name if backend else "outbox",
            )
            row.body_encrypted = self.r.cipher.encrypt_text(message.body, "outbox")
            row.secret_digest = digest
            row.status = "sending" if backend else "sent"
            row.sent_at = None if backend else utcnow()
            session.add(row)
            try:
                session.commit()
            except IntegrityError:  # a concurrent attempt claimed the key first: its result stands
                session.rollback()
                return self.send(key, engagement_id, purpose, compose)
            if backend is None:
                return Sent("sent", digest)
            return self._deliver(session, row, backend, message)

    def _deliver(
        self, session: Session, row: OutboxMessage, backend: MessageBackend, message: OutgoingMessage
    ) -> Sent:
        try:
            row.provider_id = backend.deliver(message)
            row.status, row.sent_at = "sent", utcnow()
        except DeliveryError as exc:
            row.status, row.error = ("failed" if exc.permanent else "retry"), str(exc)[:500]
            session.add(row)
            session.commit()
            if not exc.permanent:
                raise  # the caller may retry; the row says it is safe to try again
            return Sent("failed", row.secret_digest)
        session.add(row)
        session.commit()
        return Sent("sent", row.secret_digest)


def _in_firms_name(session: Session, engagement_id: int | None, message: OutgoingMessage) -> OutgoingMessage:
    """A message about an engagement comes from the firm: its name is the email's From display name."""
    if message.sender_name or engagement_id is None:
        return message
    engagement = session.get(Engagement, engagement_id)
    firm = session.get(Firm, engagement.firm_id) if engagement is not None else None
    return replace(message, sender_name=firm.name) if firm is not None else message
