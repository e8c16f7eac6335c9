"""Consent to sign electronically (ESIGN Act §101(c)).

Before a person's first electronic signature they read the firm's disclosure (their right to paper, how to
withdraw, what they need, how to keep their contact details current) and choose "I agree". The version of
the text, its digest, the time and where from are kept (`EsignConsent`) and printed in the certificate of
completion. When the firm's text changes its version goes up, and signing asks again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlmodel import Session, col, select

from core import audit
from core.models import Engagement, EsignConsent, Firm, utcnow
from services import Refusal, ServiceError
from services.context import TaxpayerContext

CONSENT_PAGE = "/portal/consent"
# Bump when DEFAULT_SECTIONS change: everyone who agreed to the old text is asked again before signing.
DEFAULT_VERSION = 1
DEFAULT_SECTIONS: tuple[tuple[str, str], ...] = (
    (
        "What you agree to",
        "{firm} would like to give you your tax documents (such as your return and Form 8879) and have "
        "you sign them electronically, in this client portal, instead of on paper. An electronic signature "
        "you make here has the same legal effect as signing by hand. You do not have to agree: you can "
        "sign on paper instead.",
    ),
    (
        "Your right to a paper copy",
        "You may ask for a paper copy of any document you receive or sign here, at no charge. Ask in the "
        "portal's Messages page, or call or write to {firm}. Your paper copy is sent to the mailing "
        "address {firm} has for you.",
    ),
    (
        "How to withdraw your consent",
        "You may withdraw your consent at any time, at no charge: on this page (Withdraw consent), or by "
        "telling {firm} in Messages, by phone or by email. Withdrawing does not undo signatures you have "
        "already made; documents you still have to sign are then signed on paper.",
    ),
    (
        "What you need",
        "A computer, tablet or phone with a current web browser (Chrome, Edge, Firefox or Safari, from the "
        "last two years) with JavaScript and cookies allowed; an internet connection; the email address or "
        "mobile phone your codes are sent to; a way to open PDF files (your browser does); and a printer "
        "or storage space if you want to keep copies.",
    ),
    (
        "Keeping your contact details current",
        "Change your email address and phone number yourself on the portal's Account page, or tell {firm}. "
        "Messages about your documents go to the details on file.",
    ),
    (
        "How long this applies",
        "This consent covers the documents {firm} sends you through this portal, for this return and later "
        "ones, until you withdraw it or {firm} changes this text, when you are asked again.",
    ),
)


@dataclass(frozen=True)
class Disclosure:
    """The text a person agrees to: the firm's, at one version."""

    firm: str
    version: int
    sections: tuple[tuple[str, str], ...]
    """(heading, paragraph), with the firm's name filled in."""

    @property
    def text(self) -> str:
        return "\n\n".join(f"{heading}\n{body}" for heading, body in self.sections)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(f"version {self.version}\n\n{self.text}".encode()).hexdigest()


def disclosure_for(db: Session, firm_id: int) -> Disclosure:
    """The firm's disclosure. Every firm uses Portico's default text for now."""
    firm = db.get(Firm, firm_id)
    name = firm.name if firm and firm.name else "Your tax preparer"
    sections = tuple((heading, body.format(firm=name)) for heading, body in DEFAULT_SECTIONS)
    return Disclosure(firm=name, version=DEFAULT_VERSION, sections=sections)


def firm_of(ctx: TaxpayerContext) -> int:
    """The firm of the return being signed (an account belongs to one firm; its returns say which)."""
    engagement = ctx.db.get(Engagement, ctx.signer.engagement_id)
    if engagement is None:  # pragma: no cover - a signer always has its engagement
        raise ServiceError(Refusal.NOT_FOUND, "No such return.")
    return engagement.firm_id


def _agreed(db: Session, account_id: int, firm_id: int) -> list[EsignConsent]:
    """This account's consents to the firm that are not withdrawn, newest first."""
    return list(
        db.exec(
            select(EsignConsent)
            .where(
                EsignConsent.account_id == account_id,
                EsignConsent.firm_id == firm_id,
                col(EsignConsent.withdrawn_at).is_(None),
            )
            .order_by(col(EsignConsent.id).desc())
        ).all()
    )


def current(ctx: TaxpayerContext) -> EsignConsent | None:
    """The person's consent to the firm's text as it is today, or None."""
    disclosure = disclosure_for(ctx.db, firm_of(ctx))
    return next(
        (c for c in _agreed(ctx.db, ctx.account.id or 0, firm_of(ctx)) if c.version == disclosure.version),
        None,
    )


def asked_again(ctx: TaxpayerContext) -> bool:
    """The person agreed to an earlier version of the text, not to today's."""
    return current(ctx) is None and bool(_agreed(ctx.db, ctx.account.id or 0, firm_of(ctx)))


def require(ctx: TaxpayerContext) -> None:
    """Refuses an electronic signature until the person agreed to today's text."""
    if current(ctx) is not None:
        return
    if asked_again(ctx):
        message = (
            "The firm has changed its terms for signing electronically. Read them and choose I agree "
            f"before you sign: {CONSENT_PAGE}"
        )
    else:
        message = (
            "Before you sign electronically, read the consent to sign electronically and choose I agree: "
            f"{CONSENT_PAGE}"
        )
    raise ServiceError(Refusal.FORBIDDEN, message, "consent")


def agree(ctx: TaxpayerContext, *, version: int) -> EsignConsent:
    """The signed-in person agrees to the text they were shown (`version`); agreeing again is harmless."""
    firm_id = firm_of(ctx)
    disclosure = disclosure_for(ctx.db, firm_id)
    if version != disclosure.version:
        raise ServiceError(
            Refusal.CONFLICT,
            "The text changed while you were reading it. Read it again and choose I agree.",
            "version",
        )
    existing = current(ctx)
    if existing is not None:
        return existing
    row = EsignConsent(
        account_id=ctx.account.id or 0,
        firm_id=firm_id,
        version=disclosure.version,
        text_sha256=disclosure.sha256,
        agreed_at=utcnow(),
        ip=ctx.actor.ip,
        user_agent=(ctx.actor.user_agent or "")[:500] or None,
    )
    ctx.db.add(row)
    audit.record(
        ctx.db,
        action="consent.agreed",
        actor=ctx.actor,
        firm_id=firm_id,
        engagement_id=ctx.signer.engagement_id,
        detail={"version": disclosure.version, "text_sha256": disclosure.sha256},
    )
    ctx.db.commit()
    ctx.db.refresh(row)
    return row


def withdraw(ctx: TaxpayerContext) -> int:
    """Withdraws the person's consent to the firm; returns how many consents ended (0: there was none)."""
    firm_id = firm_of(ctx)
    rows = _agreed(ctx.db, ctx.account.id or 0, firm_id)
    now = utcnow()
    for row in rows:
        row.withdrawn_at = now
        ctx.db.add(row)
    if rows:
        audit.record(
            ctx.db,
            action="consent.withdrawn",
            actor=ctx.actor,
            firm_id=firm_id,
            engagement_id=ctx.signer.engagement_id,
        )
    ctx.db.commit()
    return len(rows)
