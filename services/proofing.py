"""Identity proofing before a remote signature, with the rules firms' tools follow (IRS Pub 1345).

A document of a form the firm's settings name (Forms 8879 and 8878 by default) is signed electronically
only by a signer who passed knowledge-based authentication on that return: a *set* of 5 questions from the
firm's provider (`esign.proofing`), passed with 3 right. A signer gets 3 sets; after the third failed one
the document is signed on paper (`services.paper`), unless a preparer allows one more set and says why
(audited). Each spouse of a joint return is proofed on their own.

Portico keeps of a set only the provider's id for it, the outcome and the provider's reference
(`IdentityCheck`); they are printed in the e-signature record and the certificate. The questions are
fetched from the provider when shown and the answers go straight to it: neither is stored or logged.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from core import audit
from core.config import Settings
from core.context import Resources
from core.crypto import Cipher
from core.enums import Role
from core.models import (
    Document,
    Engagement,
    FirmSettings,
    IdentityCheck,
    IdentityUnlock,
    Signer,
    utcnow,
)
from esign import places
from esign.proofing import (
    PROVIDERS,
    Address,
    Check,
    DevProofing,
    HttpProofing,
    IdentityProofing,
    Person,
    ProofingUnavailable,
    UnknownCheck,
)
from services import Refusal, ServiceError
from services.context import PreparerContext, TaxpayerContext

IDENTITY_PAGE = "/portal/identity"
SETS = 3
PASS_AT = 3  # right answers of a set of 5
FORMS = {"8879": "Form 8879", "8878": "Form 8878", "other": "Every other document"}
DETAILS_PURPOSE = "identity-details"
_DEV = DevProofing()
T = TypeVar("T")


# ---- what the provider needs, entered by the preparer ----------------------------------------------------


@dataclass(frozen=True)
class IdentityDetails:
    date_of_birth: dt.date
    street: str
    city: str
    state: str
    zip: str

    def encrypt(self, cipher: Cipher) -> bytes:
        data = asdict(self) | {"date_of_birth": self.date_of_birth.isoformat()}
        return cipher.encrypt_text(json.dumps(data), DETAILS_PURPOSE)

    @classmethod
    def decrypt(cls, cipher: Cipher, token: bytes) -> IdentityDetails:
        data = json.loads(cipher.decrypt_text(token, DETAILS_PURPOSE))
        return cls(**(data | {"date_of_birth": dt.date.fromisoformat(data["date_of_birth"])}))


def details_of(cipher: Cipher, signer: Signer) -> IdentityDetails | None:
    if signer.identity_details_encrypted is None:
        return None
    return IdentityDetails.decrypt(cipher, signer.identity_details_encrypted)


def checked_details(
    date_of_birth: dt.date | None, street: str, city: str, state: str, zip_code: str
) -> IdentityDetails:
    """The details as a preparer typed them, or why not: a plausible date of birth, a US street address."""
    today = dt.date.today()
    if date_of_birth is None:
        raise ServiceError(Refusal.INVALID, "Enter the date of birth.", "date_of_birth")
    if not (today.replace(year=today.year - 120) <= date_of_birth <= today.replace(year=today.year - 14)):
        raise ServiceError(
            Refusal.INVALID, "Enter a date of birth between 14 and 120 years ago.", "date_of_birth"
        )
    street, city, state, zip_code = (v.strip() for v in (street, city, state.upper(), zip_code))
    if not street or len(street) > 120:
        raise ServiceError(Refusal.INVALID, "Enter the street address (number and street).", "street")
    if not city or len(city) > 80:
        raise ServiceError(Refusal.INVALID, "Enter the city.", "city")
    if len(state) != 2 or not state.isalpha():
        raise ServiceError(Refusal.INVALID, "Enter the state as two letters, e.g. NY.", "state")
    digits = zip_code.replace("-", "")
    if not digits.isdigit() or len(digits) not in (5, 9):
        raise ServiceError(Refusal.INVALID, "Enter a ZIP code of 5 or 9 digits.", "zip")
    return IdentityDetails(date_of_birth, street, city, state, zip_code)


def set_details(ctx: PreparerContext, engagement: Engagement, role: str, details: IdentityDetails) -> None:
    """The preparer enters (or corrects) a signer's date of birth and address; audited, never logged."""
    signer = _signer(ctx.db, engagement.id or 0, role)
    signer.identity_details_encrypted = details.encrypt(ctx.resources.cipher)
    ctx.db.add(signer)
    audit.record(
        ctx.db,
        action="identity.details_changed",
        actor=ctx.actor,
        firm_id=engagement.firm_id,
        engagement_id=engagement.id,
        detail={"role": role},
    )
    ctx.db.commit()


# ---- which documents need it ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FirmProofing:
    provider: str
    forms: frozenset[str]


def firm_proofing(db: Session, firm_id: int, settings: Settings) -> FirmProofing:
    """The firm's provider and forms; where it has not chosen, the installation's settings."""
    row = db.get(FirmSettings, firm_id)
    provider = (row.proofing_provider if row else None) or settings.proofing_provider
    forms = row.proofing_forms if row and row.proofing_forms is not None else settings.proofing_forms
    return FirmProofing(provider, frozenset(f for f in forms.split(",") if f))


def form_of(name: str, form: str | None) -> str:
    """The IRS form a document is: as read when it was sent, or by its name for one sent before that."""
    return form if form is not None else places.irs_form(b"", name)


def needs_proofing(rules: FirmProofing, doc: Document) -> bool:
    return needs_proofing_named(rules, doc.name, doc.form)


def needs_proofing_named(rules: FirmProofing, name: str, form: str | None) -> bool:
    return (form_of(name, form) or "other") in rules.forms


# ---- a signer's sets -------------------------------------------------------------------------------------


@dataclass
class SignerProofing:
    role: str
    checks: list[IdentityCheck] = field(default_factory=list)
    unlocks: list[IdentityUnlock] = field(default_factory=list)

    @property
    def passed(self) -> IdentityCheck | None:
        return next((c for c in self.checks if c.outcome == "passed"), None)

    @property
    def open(self) -> IdentityCheck | None:
        return next((c for c in self.checks if c.outcome is None), None)

    @property
    def sets_allowed(self) -> int:
        return SETS + len(self.unlocks)

    @property
    def sets_left(self) -> int:
        return max(0, self.sets_allowed - len(self.checks))

    @property
    def locked(self) -> bool:
        """Every set allowed was asked and failed: the person signs on paper (or a preparer unlocks)."""
        return self.passed is None and self.open is None and self.sets_left == 0


def proofing_of(db: Session, engagement_id: int, role: str) -> SignerProofing:
    checks = db.exec(
        select(IdentityCheck)
        .where(IdentityCheck.engagement_id == engagement_id, IdentityCheck.role == Role(role))
        .order_by(col(IdentityCheck.set_number))
    ).all()
    unlocks = db.exec(
        select(IdentityUnlock)
        .where(IdentityUnlock.engagement_id == engagement_id, IdentityUnlock.role == Role(role))
        .order_by(col(IdentityUnlock.id))
    ).all()
    return SignerProofing(role, list(checks), list(unlocks))


# ---- the signer's side -----------------------------------------------------------------------------------


def require(ctx: TaxpayerContext, doc: Document) -> None:
    """Refuses an electronic signature on a document that needs proofing until the signer passed."""
    engagement = ctx.db.get(Engagement, doc.engagement_id)
    if engagement is None or not needs_proofing(
        firm_proofing(ctx.db, engagement.firm_id, ctx.resources.settings), doc
    ):
        return
    p = proofing_of(ctx.db, doc.engagement_id, ctx.signer.role.value)
    if p.passed is not None:
        return
    if p.locked:
        raise ServiceError(Refusal.FORBIDDEN, paper_message(p), "paper")
    raise ServiceError(
        Refusal.FORBIDDEN,
        "Before you sign this form electronically, the IRS asks us to verify your identity with a few "
        f"questions: {IDENTITY_PAGE}",
        "identity",
    )


def paper_message(p: SignerProofing) -> str:
    return (
        f"Your identity could not be verified online after {len(p.checks)} sets of questions, so this form "
        "is signed on paper: open it, print and sign it by hand, then upload a scan or photo on its page "
        "(Decline or sign on paper). Your preparer can also help."
    )


async def start(ctx: TaxpayerContext) -> tuple[IdentityCheck, Check]:
    """The signer's open set of questions, or a new one if they have sets left. Reloading the page shows
    the same open set: a new set is only asked once the last is answered."""
    role = ctx.signer.role.value
    engagement_id = ctx.signer.engagement_id
    p = proofing_of(ctx.db, engagement_id, role)
    if p.passed is not None:
        raise ServiceError(Refusal.CONFLICT, "Your identity is already verified for this return.")
    provider, person = _provider_and_person(ctx)
    if p.open is not None:
        try:
            return p.open, await _call(provider.questions, p.open.check_id, person)
        except UnknownCheck:  # the provider let the set lapse: it counts as asked, and failed
            _close(ctx, p.open, "failed", None)
            p = proofing_of(ctx.db, engagement_id, role)
    if p.locked:
        raise ServiceError(Refusal.FORBIDDEN, paper_message(p), "paper")
    number = len(p.checks) + 1
    check = await _call(provider.start, person, f"engagement-{engagement_id}/{role}/set-{number}")
    row = IdentityCheck(
        engagement_id=engagement_id,
        role=Role(role),
        set_number=number,
        provider=provider.name,
        check_id=check.check_id,
        ip=ctx.actor.ip,
    )
    ctx.db.add(row)
    audit.record(
        ctx.db,
        action="identity.set_started",
        actor=ctx.actor,
        engagement_id=engagement_id,
        detail={"role": role, "set": number, "provider": provider.name},
    )
    try:
        ctx.db.commit()
    except IntegrityError:  # a second tab started the same set a moment earlier: show that one
        ctx.db.rollback()
        return await start(ctx)
    ctx.db.refresh(row)
    return row, check


def own_check(ctx: TaxpayerContext, check_id: int) -> IdentityCheck:
    row = ctx.db.get(IdentityCheck, check_id)
    if row is None or row.engagement_id != ctx.signer.engagement_id or row.role != ctx.signer.role:
        raise ServiceError(Refusal.NOT_FOUND, "No such set of questions.")
    return row


async def answer(ctx: TaxpayerContext, check_id: int, answers: dict[str, str]) -> IdentityCheck:
    """Grades a set (question id -> choice id). Every question needs an answer from its own choices. A
    set is graded once: sending the answers again (a double click) gives the first outcome."""
    row = own_check(ctx, check_id)
    if row.outcome is not None:
        return row
    provider, person = _provider_and_person(ctx)
    try:
        check = await _call(provider.questions, row.check_id, person)
    except UnknownCheck:
        _close(ctx, row, "failed", None)
        raise ServiceError(
            Refusal.CONFLICT, "This set of questions expired before it was answered. Start another set."
        ) from None
    for question in check.questions:
        if answers.get(question.id) not in {c.id for c in question.choices}:
            raise ServiceError(Refusal.INVALID, "Answer every question, then choose Submit.", question.id)
    graded = await _call(provider.grade, row.check_id, person, {q.id: answers[q.id] for q in check.questions})
    passed = graded.correct * 5 >= PASS_AT * graded.asked and graded.asked > 0
    return _close(ctx, row, "passed" if passed else "failed", graded.reference_id)


def _close(ctx: TaxpayerContext, row: IdentityCheck, outcome: str, reference: str | None) -> IdentityCheck:
    """Records a set's outcome once (a concurrent second answer finds it closed and changes nothing)."""
    table = IdentityCheck.__table__  # type: ignore[attr-defined]
    result = ctx.db.connection().execute(
        table.update()
        .where(table.c.id == row.id, table.c.outcome.is_(None))
        .values(outcome=outcome, reference_id=reference, answered_at=utcnow())
    )
    if result.rowcount:
        audit.record(
            ctx.db,
            action=f"identity.set_{outcome}",
            actor=ctx.actor,
            engagement_id=row.engagement_id,
            detail={"role": row.role.value, "set": row.set_number, "provider": row.provider}
            | ({"reference": reference} if reference else {}),
        )
    ctx.db.commit()
    ctx.db.refresh(row)
    return row


def _provider_and_person(ctx: TaxpayerContext) -> tuple[IdentityProofing, Person]:
    engagement = ctx.db.get(Engagement, ctx.signer.engagement_id)
    if engagement is None:  # pragma: no cover - a signer always has its engagement
        raise ServiceError(Refusal.NOT_FOUND, "No such return.")
    provider = provider_for(
        ctx.resources, firm_proofing(ctx.db, engagement.firm_id, ctx.resources.settings).provider
    )
    details = details_of(ctx.resources.cipher, ctx.signer)
    if details is None:
        raise ServiceError(
            Refusal.CONFLICT,
            "Your preparer has not yet entered the date of birth and address the identity questions need. "
            "Ask them in Messages; you can sign once they have.",
            "details",
        )
    signer = ctx.signer
    ssn = ctx.resources.cipher.decrypt_text(signer.ssn_encrypted, "ssn")
    address = Address(details.street, details.city, details.state, details.zip)
    return provider, Person(signer.first_name, signer.last_name, ssn, details.date_of_birth, address)


def provider_for(resources: Resources, name: str) -> IdentityProofing:
    settings = resources.settings
    if name == "http":
        if not settings.proofing_url:
            raise ServiceError(
                Refusal.UNAVAILABLE,
                "Identity verification is not set up yet (the firm's provider has no address). Ask your "
                "preparer.",
            )
        return HttpProofing(
            settings.proofing_url,
            settings.proofing_token.get_secret_value(),
            timeout=settings.proofing_timeout_seconds,
        )
    if settings.environment == "production":
        raise ServiceError(
            Refusal.UNAVAILABLE,
            "Identity verification is not set up yet: the development provider is not a real check and is "
            "off in production. Ask your preparer.",
        )
    return _DEV


async def _call(fn: Callable[..., T], *args: object) -> T:
    try:
        return await run_in_threadpool(fn, *args)
    except ProofingUnavailable as exc:
        raise ServiceError(
            Refusal.UNAVAILABLE,
            "The identity check service is not answering just now. Nothing was used up: try again in a few "
            "minutes.",
        ) from exc


# ---- the preparer's side ---------------------------------------------------------------------------------


def unlock(ctx: PreparerContext, engagement: Engagement, *, role: str, reason: str) -> IdentityUnlock:
    """Allows a signer whose sets ran out one more set; the reason is required and audited."""
    reason = reason.strip()
    if len(reason) < 5:
        raise ServiceError(Refusal.INVALID, "Say why this signer may try another set.", "reason")
    engagement_id = engagement.id or 0
    _signer(ctx.db, engagement_id, role)
    p = proofing_of(ctx.db, engagement_id, role)
    if p.passed is not None:
        raise ServiceError(Refusal.CONFLICT, "This signer's identity is already verified.")
    if not p.locked:
        raise ServiceError(
            Refusal.CONFLICT,
            f"This signer still has {p.sets_left or 'an open'} set(s) of questions to answer.",
        )
    row = IdentityUnlock(
        engagement_id=engagement_id, role=Role(role), preparer_id=ctx.preparer.id or 0, reason=reason[:500]
    )
    ctx.db.add(row)
    audit.record(
        ctx.db,
        action="identity.unlocked",
        actor=ctx.actor,
        firm_id=engagement.firm_id,
        engagement_id=engagement_id,
        detail={"role": role, "reason": reason[:500], "sets_allowed": p.sets_allowed + 1},
    )
    ctx.db.commit()
    ctx.db.refresh(row)
    return row


def change_rules(ctx: PreparerContext, *, provider: str, forms: list[str]) -> FirmProofing:
    """An administrator chooses the firm's provider and which forms need proofing."""
    if provider not in PROVIDERS:
        raise ServiceError(Refusal.INVALID, "Choose a provider from the list.", "provider")
    if provider == "http" and not ctx.resources.settings.proofing_url:
        raise ServiceError(
            Refusal.INVALID,
            "The http provider needs PORTICO_PROOFING_URL (docs/identity-proofing.md).",
            "provider",
        )
    unknown = [f for f in forms if f not in FORMS]
    if unknown:
        raise ServiceError(Refusal.INVALID, "Choose forms from the list.", "forms")
    row = ctx.db.get(FirmSettings, ctx.firm_id) or FirmSettings(firm_id=ctx.firm_id)
    row.proofing_provider = provider
    row.proofing_forms = ",".join(f for f in FORMS if f in forms)
    row.updated_at = utcnow()
    row.updated_by = ctx.preparer.id
    ctx.db.add(row)
    audit.record(
        ctx.db,
        action="settings.proofing_changed",
        actor=ctx.actor,
        firm_id=ctx.firm_id,
        detail={"provider": provider, "forms": row.proofing_forms},
    )
    ctx.db.commit()
    return firm_proofing(ctx.db, ctx.firm_id, ctx.resources.settings)


def _signer(db: Session, engagement_id: int, role: str) -> Signer:
    if role not in {r.value for r in Role}:
        raise ServiceError(Refusal.NOT_FOUND, "No such signer.")
    signer = db.exec(
        select(Signer).where(Signer.engagement_id == engagement_id, Signer.role == Role(role))
    ).first()
    if signer is None:
        raise ServiceError(Refusal.NOT_FOUND, "No such signer.")
    return signer
