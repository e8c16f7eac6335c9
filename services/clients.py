"""A firm's clients as people: one person's returns across years, their contacts and their portal account.

There is no client table. A person is the same SSN within a firm: the signers of the firm's engagements
with the same last name (normalised) and the same keyed digest of the SSN's last four, confirmed on the
full SSN (decrypted, a handful of rows), plus every signer a client account of theirs links (a person who
changed their name links the new return to the same account after the identity match). Candidates are found
through the dashboard's search words (`EngagementSearchTerm`, firm + word, an index range) and the signers
of those engagements (by engagement id), never by a scan of the firm.

A client's key is the id of one of their signers: any of them opens the same page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from core.crypto import Cipher, DecryptionError
from core.enums import Stage
from core.identity import mask_email, mask_phone, normalise_name
from core.models import (
    AccountEmail,
    AccountLink,
    AuditEntry,
    Engagement,
    EngagementSearchTerm,
    EngagementStatus,
    Signer,
    TaxpayerAccount,
    WebSession,
)
from services import Refusal, ServiceError
from services.dashboard import STAGE_LABELS, name_word

NO_SUCH_CLIENT = "No such client."


@dataclass(frozen=True)
class ClientReturn:
    """One engagement of the person: which year, where it stands, and who the person is on it."""

    engagement: Engagement
    signer: Signer
    stage: str
    taxpayer_name: str
    spouse_name: str | None

    @property
    def stage_label(self) -> str:
        return STAGE_LABELS.get(self.stage, self.stage)

    @property
    def completed(self) -> bool:
        return self.stage == Stage.COMPLETED


@dataclass(frozen=True)
class ClientAccount:
    """A client account of the person, as the firm may see it (no password, no codes)."""

    account: TaxpayerAccount
    verified_emails: list[str]
    last_sign_in: datetime | None


@dataclass
class Client:
    key: int
    name: str
    returns: list[ClientReturn]  # newest tax year first
    accounts: list[ClientAccount] = field(default_factory=list)

    @property
    def newest(self) -> ClientReturn:
        return self.returns[0]

    @property
    def engagement_ids(self) -> list[int]:
        return [r.engagement.id or 0 for r in self.returns]

    @property
    def masked_email(self) -> str | None:
        email = self.newest.signer.email
        return mask_email(email) if email else None

    @property
    def masked_phone(self) -> str | None:
        phone = self.newest.signer.phone
        return mask_phone(phone) if phone else None

    @property
    def time_zone(self) -> str:
        return self.newest.signer.time_zone


def _anchor(db: Session, firm_id: int, key: int) -> tuple[Signer, Engagement]:
    found = db.exec(
        select(Signer, Engagement)
        .join(Engagement, col(Engagement.id) == col(Signer.engagement_id))
        .where(Signer.id == key, Engagement.firm_id == firm_id)
    ).first()
    if found is None:  # another firm's client looks exactly like nobody
        raise ServiceError(Refusal.NOT_FOUND, NO_SUCH_CLIENT)
    return found


def _ssn(cipher: Cipher, signer: Signer) -> str | None:
    try:
        return cipher.decrypt_text(signer.ssn_encrypted, "ssn")
    except DecryptionError:
        return None


def namesakes(db: Session, firm_id: int, signer: Signer) -> list[tuple[Signer, Engagement]]:
    """The firm's signers with the signer's last name and last four of the SSN (the signer included)."""
    word = name_word(signer.last_name)
    if not word:
        return [(signer, db.get_one(Engagement, signer.engagement_id))]
    term = EngagementSearchTerm
    rows = db.exec(
        select(Signer, Engagement)
        .join(term, col(term.engagement_id) == col(Signer.engagement_id))
        .join(Engagement, col(Engagement.id) == col(Signer.engagement_id))
        .where(term.firm_id == firm_id, term.term == word, Signer.ssn_last4_digest == signer.ssn_last4_digest)
    ).all()
    last = normalise_name(signer.last_name)
    return [(s, e) for s, e in rows if normalise_name(s.last_name) == last]


def same_person(db: Session, cipher: Cipher, firm_id: int, signer: Signer) -> list[tuple[Signer, Engagement]]:
    """Every signer of the firm who is the same person as `signer`, with their engagements."""
    ssn = _ssn(cipher, signer)
    people = {s.id: (s, e) for s, e in namesakes(db, firm_id, signer) if _ssn(cipher, s) == ssn}
    accounts = db.exec(
        select(AccountLink.account_id).where(col(AccountLink.signer_id).in_(list(people)))
    ).all()
    if accounts:
        linked = db.exec(
            select(Signer, Engagement)
            .join(AccountLink, col(AccountLink.signer_id) == col(Signer.id))
            .join(Engagement, col(Engagement.id) == col(Signer.engagement_id))
            .where(col(AccountLink.account_id).in_(set(accounts)), Engagement.firm_id == firm_id)
        ).all()
        people.update({s.id: (s, e) for s, e in linked})
    return list(people.values())


def engagement_ids(db: Session, cipher: Cipher, firm_id: int, key: int) -> list[int]:
    """The person's engagement ids (the dashboard's client filter); none for a key that isn't the firm's."""
    try:
        signer, _ = _anchor(db, firm_id, key)
    except ServiceError:
        return []
    return sorted({e.id or 0 for _, e in same_person(db, cipher, firm_id, signer)})


def client_of(db: Session, cipher: Cipher, firm_id: int, key: int) -> Client:
    """The client page: the person's returns, newest year first, and their accounts."""
    signer, _ = _anchor(db, firm_id, key)
    found = same_person(db, cipher, firm_id, signer)
    ids = [e.id or 0 for _, e in found]
    statuses = {
        s.engagement_id: s
        for s in db.exec(select(EngagementStatus).where(col(EngagementStatus.engagement_id).in_(ids)))
    }
    returns = []
    for person, engagement in found:
        status = statuses.get(engagement.id or 0)
        returns.append(
            ClientReturn(
                engagement,
                person,
                status.stage if status else Stage.CREATED,
                status.taxpayer_name if status else person.full_name,
                status.spouse_name if status else None,
            )
        )
    returns.sort(key=lambda r: (r.engagement.tax_year, r.engagement.id or 0), reverse=True)
    client = Client(key=key, name=returns[0].signer.full_name, returns=returns)
    client.accounts = accounts_of(db, [s.id or 0 for s, _ in found])
    return client


def accounts_of(db: Session, signer_ids: list[int]) -> list[ClientAccount]:
    """The client accounts that reach these signers: verified emails and when the person last signed in."""
    accounts = db.exec(
        select(TaxpayerAccount)
        .join(AccountLink, col(AccountLink.account_id) == col(TaxpayerAccount.id))
        .where(col(AccountLink.signer_id).in_(signer_ids))
        .distinct()
    ).all()
    out = []
    for account in accounts:
        emails = db.exec(
            select(AccountEmail.email)
            .where(AccountEmail.account_id == account.id, col(AccountEmail.verified_at).is_not(None))
            .order_by(col(AccountEmail.id))
        ).all()
        out.append(ClientAccount(account, [mask_email(e) for e in emails], _last_sign_in(db, account)))
    return out


def _last_sign_in(db: Session, account: TaxpayerAccount) -> datetime | None:
    """The newest of the account's sessions (registration starts one) and its audited logins."""
    session_at = db.exec(
        select(func.max(WebSession.created_at)).where(
            WebSession.kind == "taxpayer", WebSession.subject_id == account.id
        )
    ).one()
    linked = select(AccountLink.engagement_id).where(AccountLink.account_id == account.id)
    login_at = db.exec(
        select(func.max(AuditEntry.at)).where(
            col(AuditEntry.engagement_id).in_(linked), AuditEntry.action == "taxpayer.login"
        )
    ).one()
    times = [t for t in (session_at, login_at) if t is not None]
    # SQLite hands an aggregate back as text or naive: compare what the columns' type gives.
    return max((_aware(t) for t in times), default=None)


def _aware(value: datetime | str) -> datetime:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def name_of(db: Session, firm_id: int, key: int) -> str | None:
    """The name a client key stands for (the dashboard's filter says whose returns it shows)."""
    try:
        signer, _ = _anchor(db, firm_id, key)
    except ServiceError:
        return None
    return signer.full_name
