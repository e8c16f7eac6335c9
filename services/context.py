"""Who is asking, and with what: what a request hands a service.

A service takes one of these and keyword arguments, instead of a row of positional parts (session,
Temporal client, resources, request, preparer …) that every caller had to line up in the same order. The
API builds them with the dependencies in `services.deps`; the pages build the same ones from their own
login (`web/`), so both call a service the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session
from temporalio.client import Client

from core.actor import Actor
from core.context import Resources
from core.models import Preparer, Signer, TaxpayerAccount
from messaging.outbox import Outbox


@dataclass(frozen=True)
class Tools:
    """What any request works with: its database session and the application's shared parts."""

    db: Session
    resources: Resources
    outbox: Outbox
    client: Client


@dataclass(frozen=True)
class PreparerContext(Tools):
    """A preparer of a firm, signed in with both factors; `actor` is them, from where they asked."""

    preparer: Preparer
    actor: Actor

    @property
    def firm_id(self) -> int:
        return self.preparer.firm_id


@dataclass(frozen=True)
class TaxpayerContext(Tools):
    """A signed-in client: their portal account and the signer of the return it belongs to."""

    account: TaxpayerAccount
    signer: Signer
    actor: Actor

    @property
    def verified(self) -> bool:
        return self.account.verified_at is not None
