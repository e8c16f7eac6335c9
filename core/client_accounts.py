"""A client's account and the returns it reaches.

An account (`TaxpayerAccount`) is one person within a firm; `AccountLink` rows are the engagement signers
it reaches: the one it was registered for, and each later return whose invitation the person accepted
after the same identity match. Everything a signed-in client sees is found through these links.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from core.models import AccountLink, Engagement, Signer, TaxpayerAccount


@dataclass(frozen=True)
class LinkedReturn:
    """One return an account reaches: the signer the person is on it, and the engagement."""

    link: AccountLink
    signer: Signer
    engagement: Engagement

    @property
    def engagement_id(self) -> int:
        return self.engagement.id or 0

    @property
    def role(self) -> str:
        return self.signer.role.value


def linked_returns(session: Session, account_id: int) -> list[LinkedReturn]:
    """Every return of the account, newest tax year first (then the newest engagement)."""
    rows = session.exec(
        select(AccountLink, Signer, Engagement)
        .join(Signer, col(Signer.id) == col(AccountLink.signer_id))
        .join(Engagement, col(Engagement.id) == col(AccountLink.engagement_id))
        .where(AccountLink.account_id == account_id)
        .order_by(col(Engagement.tax_year).desc(), col(Engagement.id).desc())
    ).all()
    return [LinkedReturn(link, signer, engagement) for link, signer, engagement in rows]


def current_return(returns: list[LinkedReturn], engagement_id: int | None) -> LinkedReturn | None:
    """The return asked for, when the account reaches it; else the newest one."""
    chosen = next((r for r in returns if r.engagement_id == engagement_id), None)
    return chosen or (returns[0] if returns else None)


def newest_signer(session: Session, account: TaxpayerAccount) -> Signer | None:
    """The signer on the account's newest return: who a login is audited as, where it lands first."""
    newest = current_return(linked_returns(session, account.id or 0), None)
    return newest.signer if newest else None


def account_of_signer(session: Session, signer_id: int) -> TaxpayerAccount | None:
    link = session.get(AccountLink, signer_id)
    return session.get(TaxpayerAccount, link.account_id) if link else None


def link_signer(session: Session, account: TaxpayerAccount, signer: Signer, via: str) -> AccountLink:
    """Links the signer to the account (a repeat is harmless); the caller commits. A signer already
    reached by another account is not taken from it: ValueError."""
    existing = session.get(AccountLink, signer.id)
    if existing is not None:
        if existing.account_id != account.id:
            raise ValueError(f"signer {signer.id} belongs to another account")
        return existing
    link = AccountLink(
        signer_id=signer.id or 0, account_id=account.id or 0, engagement_id=signer.engagement_id, via=via
    )
    session.add(link)
    return link
