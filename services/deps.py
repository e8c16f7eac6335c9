"""Typed dependencies: database session, the caller's identity, the Temporal client, and the request
contexts (`services.context`) built from them. Who is not signed in is refused as a service refusal,
like every other: the API answers it, the pages send the person to their login."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlmodel import Session
from temporalio.client import Client

from core import sessions
from core.actor import Actor
from core.client_accounts import current_return, linked_returns
from core.context import Resources
from core.models import Preparer, PreparerMfa, Signer, TaxpayerAccount, WebSession
from messaging.outbox import Outbox
from services import Refusal, ServiceError
from services.context import PreparerContext, TaxpayerContext


# Plain attribute reads: `async def` so FastAPI calls them on the event loop instead of handing each
# to a worker thread (a thread hop per dependency per request, measurable on the portal pages).
async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


async def get_temporal(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


async def get_outbox(request: Request) -> Outbox:
    """The app's outbox, built once in the lifespan on the same delivery backends the worker uses."""
    outbox: Outbox = request.app.state.outbox
    return outbox


LOG_IN = "Please log in."
ResourcesDep = Annotated[Resources, Depends(get_resources)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
OutboxDep = Annotated[Outbox, Depends(get_outbox)]


def get_db(resources: ResourcesDep) -> Iterator[Session]:
    with Session(resources.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]


def cookie_name(resources: Resources) -> str:
    # __Host- cookies must be Secure, which a plain-http development server cannot set.
    return "portico_session" if resources.settings.is_development else "__Host-portico_session"


def _session_row(request: Request, db: Session, resources: Resources, kind: str) -> WebSession:
    token = request.cookies.get(cookie_name(resources))
    settings = resources.settings
    idle = (
        settings.session_idle_timeout
        if kind == "taxpayer"
        else min(settings.session_idle_timeout, settings.preparer_idle_timeout)
    )
    row = sessions.resolve(db, token, kind, idle, settings.session_absolute_timeout) if token else None
    if row is None:
        raise ServiceError(Refusal.UNAUTHENTICATED, LOG_IN)
    return row


# A JSON API login with the right password, before two-step login is set up: the session cookie then holds
# a session of this kind, good only for the enrolment endpoints (and logout), for a short while.
PREPARER_SETUP_KIND = "preparer-setup"
PREPARER_SETUP_LIFETIME = timedelta(minutes=10)
FINISH_SETUP = (
    "Finish setting up two-step login first: POST /api/preparer/mfa/enrol, add the secret to your "
    "authenticator app, then POST its code to /api/preparer/mfa/confirm."
)


def _preparer_session(request: Request, db: Session, resources: Resources) -> tuple[WebSession, Preparer]:
    """A full preparer session or a set-up-only one; 401 when neither (or the preparer is deactivated)."""
    token = request.cookies.get(cookie_name(resources))
    settings = resources.settings
    idle = min(settings.session_idle_timeout, settings.preparer_idle_timeout)
    row = None
    if token:
        row = sessions.resolve(db, token, "preparer", idle, settings.session_absolute_timeout)
        if row is None:
            lifetime = PREPARER_SETUP_LIFETIME
            row = sessions.resolve(db, token, PREPARER_SETUP_KIND, lifetime, lifetime)
    preparer = db.get(Preparer, row.subject_id) if row else None
    if row is None or preparer is None or not preparer.active:
        raise ServiceError(Refusal.UNAUTHENTICATED, LOG_IN)
    return row, preparer


def current_preparer(request: Request, db: SessionDep, resources: ResourcesDep) -> Preparer:
    """A preparer who logged in with both factors."""
    row, preparer = _preparer_session(request, db, resources)
    mfa = db.get(PreparerMfa, preparer.id) if row.kind == "preparer" else None
    # Also refuses a full session of a preparer whose two-step login was never set up (or was reset).
    if mfa is None or mfa.enrolled_at is None:
        raise ServiceError(Refusal.FORBIDDEN, FINISH_SETUP)
    return preparer


def preparer_in_setup(request: Request, db: SessionDep, resources: ResourcesDep) -> Preparer:
    """A preparer with any session, set-up-only included: the enrolment endpoints need no more."""
    return _preparer_session(request, db, resources)[1]


def current_taxpayer(request: Request, db: SessionDep, resources: ResourcesDep) -> TaxpayerAccount:
    row = _session_row(request, db, resources, "taxpayer")
    account = db.get(TaxpayerAccount, row.subject_id)
    if account is None:
        raise ServiceError(Refusal.UNAUTHENTICATED, LOG_IN)
    return account


CurrentPreparer = Annotated[Preparer, Depends(current_preparer)]
PreparerInSetup = Annotated[Preparer, Depends(preparer_in_setup)]
CurrentTaxpayer = Annotated[TaxpayerAccount, Depends(current_taxpayer)]


def taxpayer_signer(
    account: CurrentTaxpayer,
    db: SessionDep,
    engagement_id: Annotated[
        int | None, Query(description="which of your returns (default: the newest)")
    ] = None,
) -> Signer:
    """The client as a signer of one of their returns: the one asked for, or the newest."""
    chosen = current_return(linked_returns(db, account.id or 0), engagement_id)
    if chosen is None:  # every return of the account was disposed of
        raise ServiceError(Refusal.UNAUTHENTICATED, LOG_IN)
    return chosen.signer


CurrentSigner = Annotated[Signer, Depends(taxpayer_signer)]


def request_actor(request: Request, kind: str, ident: str) -> Actor:
    client = request.client.host if request.client else None
    return Actor(kind=kind, id=ident, ip=client, user_agent=request.headers.get("user-agent"))


# ---- request contexts ----------------------------------------------------------------------------------


def preparer_context(
    request: Request,
    preparer: CurrentPreparer,
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
    client: TemporalDep,
) -> PreparerContext:
    actor = request_actor(request, "preparer", str(preparer.id))
    return PreparerContext(db, resources, outbox, client, preparer, actor)


def taxpayer_context(
    request: Request,
    account: CurrentTaxpayer,
    signer: CurrentSigner,
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
    client: TemporalDep,
) -> TaxpayerContext:
    actor = request_actor(request, "taxpayer", signer.role.value)
    return TaxpayerContext(db, resources, outbox, client, account, signer, actor)


TaxpayerCtx = Annotated[TaxpayerContext, Depends(taxpayer_context)]


def verified_taxpayer(ctx: TaxpayerCtx) -> TaxpayerContext:
    """A client who finished the first login's code step; everything past it needs one."""
    if not ctx.verified:
        raise ServiceError(Refusal.FORBIDDEN, "Verify your account first.")
    return ctx


PreparerCtx = Annotated[PreparerContext, Depends(preparer_context)]
VerifiedTaxpayer = Annotated[TaxpayerContext, Depends(verified_taxpayer)]
