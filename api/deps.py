"""Typed dependencies: database session, the caller's identity, and the Temporal client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from sqlmodel import Session
from temporalio.client import Client

from core import sessions
from core.actor import Actor
from core.context import Resources
from core.models import Preparer, PreparerMfa, Signer, TaxpayerAccount, WebSession


# Plain attribute reads: `async def` so FastAPI calls them on the event loop instead of handing each
# to a worker thread (a thread hop per dependency per request, measurable on the portal pages).
async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


async def get_temporal(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


ResourcesDep = Annotated[Resources, Depends(get_resources)]
TemporalDep = Annotated[Client, Depends(get_temporal)]


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
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Please log in.")
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
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Please log in.")
    return row, preparer


def current_preparer(request: Request, db: SessionDep, resources: ResourcesDep) -> Preparer:
    """A preparer who logged in with both factors."""
    row, preparer = _preparer_session(request, db, resources)
    mfa = db.get(PreparerMfa, preparer.id) if row.kind == "preparer" else None
    # Also refuses a full session of a preparer whose two-step login was never set up (or was reset).
    if mfa is None or mfa.enrolled_at is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, FINISH_SETUP)
    return preparer


def preparer_in_setup(request: Request, db: SessionDep, resources: ResourcesDep) -> Preparer:
    """A preparer with any session, set-up-only included: the enrolment endpoints need no more."""
    return _preparer_session(request, db, resources)[1]


def current_taxpayer(request: Request, db: SessionDep, resources: ResourcesDep) -> TaxpayerAccount:
    row = _session_row(request, db, resources, "taxpayer")
    account = db.get(TaxpayerAccount, row.subject_id)
    if account is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Please log in.")
    return account


CurrentPreparer = Annotated[Preparer, Depends(current_preparer)]
PreparerInSetup = Annotated[Preparer, Depends(preparer_in_setup)]
CurrentTaxpayer = Annotated[TaxpayerAccount, Depends(current_taxpayer)]


def taxpayer_signer(account: CurrentTaxpayer, db: SessionDep) -> Signer:
    signer = db.get(Signer, account.signer_id)
    if signer is None:  # pragma: no cover - foreign key
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Please log in.")
    return signer


CurrentSigner = Annotated[Signer, Depends(taxpayer_signer)]


def request_actor(request: Request, kind: str, ident: str) -> Actor:
    client = request.client.host if request.client else None
    return Actor(kind=kind, id=ident, ip=client, user_agent=request.headers.get("user-agent"))
