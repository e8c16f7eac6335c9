"""The portal's page area (its notices, its login) and who is logged in for the portal pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session, col, func, select

from core import sessions
from core.client_accounts import LinkedReturn, current_return, linked_returns
from core.context import Resources
from core.models import Engagement, Firm, Signer, TaxpayerAccount
from services import cookies
from services.context import TaxpayerContext
from services.deps import OutboxDep, ResourcesDep, SessionDep, TemporalDep, request_actor
from web.toolkit import LoginRequired, PageArea

NOTICES = {
    "logged-out": "You are logged out.",
    "logged-out-everywhere": "You are logged out on every device, and no browser is remembered any more.",
    "verification-cancelled": "Verification cancelled. Log in any time to finish it.",
    "verified": "Your account is verified. Welcome!",
    "signed": "Signed!",
    "identity-verified": "Your identity is verified. You can sign now.",
    "declined": "Declined. Your preparer has been told and will send a corrected copy or be in touch.",
    "signed-on-paper": "Thank you: your signature on paper is recorded.",
    "uploaded": "Files uploaded.",
    "signature-saved": "Signature saved.",
    "sent": "Message sent.",
    "return-added": "Your new return is added to your account: you see it now. Switch returns at the top.",
}
PORTAL = PageArea(home="/portal", notices=NOTICES)
render = PORTAL.render
safe_next = PORTAL.safe_next


# ---- who is logged in ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReturnChoice:
    """One of the client's returns, as the return switcher names it."""

    engagement_id: int
    tax_year: int
    role: str
    joint: bool

    @property
    def label(self) -> str:
        kind = "joint return" if self.joint else "return"
        return f"{self.tax_year} {kind}" + (" (as spouse)" if self.role == "spouse" else "")


@dataclass(frozen=True)
class PortalUser:
    """The signed-in client on the return the portal shows now (`signer`, `engagement`), and every return
    their account reaches (`returns`, newest first)."""

    account: TaxpayerAccount
    signer: Signer
    engagement: Engagement
    firm_name: str
    co_signer_names: dict[str, str]
    returns: tuple[ReturnChoice, ...] = ()
    linked: tuple[LinkedReturn, ...] = ()
    """The same returns as loaded (link, signer, engagement): the landing page reads them again otherwise."""

    @property
    def role(self) -> str:
        return self.signer.role.value

    @property
    def current(self) -> ReturnChoice | None:
        return next((r for r in self.returns if r.engagement_id == self.engagement.id), None)


def _load_user(request: Request, db: Session, resources: Resources) -> PortalUser:
    token = cookies.read(request, resources, cookies.SESSION)
    settings = resources.settings
    row = (
        sessions.resolve(
            db, token, "taxpayer", settings.session_idle_timeout, settings.session_absolute_timeout
        )
        if token
        else None
    )
    account = db.get(TaxpayerAccount, row.subject_id) if row else None
    returns = linked_returns(db, account.id or 0) if account else []
    chosen = current_return(returns, _chosen_return(request, resources))
    firm = db.get(Firm, chosen.engagement.firm_id) if chosen else None
    if account is None or chosen is None or firm is None:
        raise PORTAL.login_required(request)
    names = _co_signer_names(db, chosen.signer)
    choices = _choices(db, returns, joint_if_one=bool(names))
    return PortalUser(account, chosen.signer, chosen.engagement, firm.name, names, choices, tuple(returns))


def _co_signer_names(db: Session, signer: Signer) -> dict[str, str]:
    """{role: first name} of the return's other signers (two columns: no Signer objects to build)."""
    rows = db.exec(
        select(Signer.role, Signer.first_name).where(
            Signer.engagement_id == signer.engagement_id, Signer.id != signer.id
        )
    ).all()
    return {str(role): first_name for role, first_name in rows}  # Role is a StrEnum: its value


def _chosen_return(request: Request, resources: Resources) -> int | None:
    raw = cookies.read(request, resources, cookies.RETURN) or ""
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


def _choices(db: Session, returns: list[LinkedReturn], *, joint_if_one: bool) -> tuple[ReturnChoice, ...]:
    """The switcher's entries. With one return its signers are already known (`joint_if_one`: it has a
    co-signer), so the count is not asked for."""
    if len(returns) == 1:
        only = returns[0]
        return (ReturnChoice(only.engagement_id, only.engagement.tax_year, only.role, joint_if_one),)
    ids = [r.engagement_id for r in returns]
    signers = dict(
        db.exec(
            select(Signer.engagement_id, func.count())
            .where(col(Signer.engagement_id).in_(ids))
            .group_by(col(Signer.engagement_id))
        ).all()
    )
    return tuple(
        ReturnChoice(r.engagement_id, r.engagement.tax_year, r.role, signers.get(r.engagement_id, 1) > 1)
        for r in returns
    )


def any_user(request: Request, db: SessionDep, resources: ResourcesDep) -> PortalUser:
    """Logged in, verified or not (the verify page)."""
    return _load_user(request, db, resources)


def verified_user(request: Request, db: SessionDep, resources: ResourcesDep) -> PortalUser:
    user = _load_user(request, db, resources)
    if user.account.verified_at is None:
        raise LoginRequired("/portal/verify")  # the code step is the rest of the first login
    return user


AnyUser = Annotated[PortalUser, Depends(any_user)]
VerifiedUser = Annotated[PortalUser, Depends(verified_user)]


def portal_context(
    request: Request,
    user: VerifiedUser,
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
    client: TemporalDep,
) -> TaxpayerContext:
    """The verified client as the services take them: the same context the API builds."""
    actor = request_actor(request, "taxpayer", user.role)
    return TaxpayerContext(db, resources, outbox, client, user.account, user.signer, actor)


PortalContext = Annotated[TaxpayerContext, Depends(portal_context)]
