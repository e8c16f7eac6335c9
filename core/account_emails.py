"""The email addresses a client account signs in with and is found by.

An account's verified addresses are its `AccountEmail` rows with `verified_at` set, and its primary address
(`TaxpayerAccount.email`) once the account is verified: registration (a workflow activity) writes the
account but no row, so the primary address counts whether or not its row exists yet; `emails_of` adds it
when the Account page first lists them. Addresses compare in any case.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, or_, select

from core.identity import InvalidContact, normalise_email
from core.models import AccountEmail, TaxpayerAccount


def as_email(text: str) -> str | None:
    """`text` as a stored address (normalised, lower case), or None when it is not an email address."""
    if "@" not in text:
        return None
    try:
        return normalise_email(text)
    except InvalidContact:
        return None


def accounts_with_email(db: Session, email: str, firm_id: int | None = None) -> list[TaxpayerAccount]:
    """Every verified account (of `firm_id`, when given) that has `email` among its verified addresses,
    oldest first. Usually one; a couple sharing an address have two."""
    wanted = email.strip().lower()
    by_row = select(AccountEmail.account_id).where(
        func.lower(AccountEmail.email) == wanted, col(AccountEmail.verified_at).is_not(None)
    )
    query = select(TaxpayerAccount).where(
        col(TaxpayerAccount.verified_at).is_not(None),
        or_(col(TaxpayerAccount.id).in_(by_row), func.lower(TaxpayerAccount.email) == wanted),
    )
    if firm_id is not None:
        query = query.where(TaxpayerAccount.firm_id == firm_id)
    return list(db.exec(query.order_by(col(TaxpayerAccount.id))).all())


def accounts_for_login(db: Session, login: str) -> list[TaxpayerAccount]:
    """The accounts a login names: the user name as registered, else a verified email address."""
    text = login.strip()
    if not text:
        return []
    by_name = db.exec(select(TaxpayerAccount).where(TaxpayerAccount.username == text)).first()
    if by_name is not None:
        return [by_name]
    email = as_email(text)
    return accounts_with_email(db, email) if email else []


def emails_of(db: Session, account: TaxpayerAccount) -> list[AccountEmail]:
    """The account's addresses, the primary one first (its row added when missing; the caller commits)."""
    rows = list(
        db.exec(
            select(AccountEmail)
            .where(AccountEmail.account_id == account.id)
            .order_by(col(AccountEmail.created_at), col(AccountEmail.id))
        ).all()
    )
    primary = account.email.lower()
    if primary and not any(r.email.lower() == primary for r in rows):
        row = AccountEmail(account_id=account.id or 0, email=account.email, verified_at=account.verified_at)
        db.add(row)
        db.flush()
        rows.append(row)
    return sorted(rows, key=lambda r: r.email.lower() != primary)


def replace_primary(db: Session, account: TaxpayerAccount, old: str, new: str, now: datetime) -> None:
    """The primary address changed from `old` to `new` (proved by a code just now): its row follows, and
    a row the new address already had is the one kept. The caller commits."""
    rows = emails_of(db, account)
    new_row = next((r for r in rows if r.email.lower() == new.lower()), None)
    old_row = next((r for r in rows if r.email.lower() == old.lower()), None)
    if new_row is None and old_row is not None:
        old_row.email, old_row.verified_at = new, now
        db.add(old_row)
        return
    if old_row is not None:
        db.delete(old_row)
    if new_row is None:
        db.add(AccountEmail(account_id=account.id or 0, email=new, verified_at=now))
    else:
        new_row.verified_at = new_row.verified_at or now
        db.add(new_row)
