"""A joint engagement written straight into the database, signed and sealed by the real activities.

For the certificate, record and verification tests, which need a finished engagement but not the workflow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pdfs
from journey import signature_png
from pyhanko.sign import signers
from sqlmodel import Session
from temporalio.testing import ActivityEnvironment

from activities.engagement import EngagementActivities
from activities.types import SealDocuments, SignRequest
from core.actor import Actor
from core.context import Resources
from core.crypto import sha256_hex
from core.models import (
    AuditEntry,
    Direction,
    Document,
    Engagement,
    Firm,
    Preparer,
    Role,
    Signature,
    Signer,
    TaxpayerAccount,
)
from esign import pdfsign

TAXPAYER_UA = "Mozilla/5.0 (Macintosh) Safari/605.1.15"
SPOUSE_UA = "Mozilla/5.0 (Linux; Android 14) Chrome/126.0"
PEOPLE = {
    Role.TAXPAYER: ("Shelby", "O'Neil", "shelby.oneil@example.com", "+17025550197", "email", "203.0.113.9"),
    Role.SPOUSE: ("Jordan", "O'Neil", "jordan.oneil@example.com", "+17025550142", "sms", "198.51.100.23"),
}


@dataclass
class Seeded:
    engagement_id: int
    firm_id: int
    document_id: int
    original: bytes
    started: datetime


def dev_signer(data_dir: Path) -> tuple[signers.SimpleSigner, Path]:
    paths, _ = pdfsign.ensure_dev_certificates(data_dir)
    return pdfsign.load_signer(paths.signing_key, paths.signing_cert, [paths.ca_cert]), paths.ca_cert


def seed_joint_engagement(resources: Resources, firm_name: str = "Lovelace Tax") -> Seeded:
    """Firm, preparer, a verified taxpayer and spouse with signatures on file, and Form 8879 sent to both."""
    started = datetime.now(UTC) - timedelta(hours=2)
    original = pdfs.make_form_8879(pages=2, with_fields=True)
    with Session(resources.engine) as db:
        firm = Firm(name=firm_name)
        db.add(firm)
        db.flush()
        preparer = Preparer(
            firm_id=firm.id or 0, email=f"ada@{firm.id}.test", name="Ada Preparer", password_hash="x"
        )
        db.add(preparer)
        db.flush()
        engagement = Engagement(firm_id=firm.id or 0, preparer_id=preparer.id or 0, tax_year=2025)
        db.add(engagement)
        db.flush()
        eid = engagement.id or 0
        doc = _document(resources, eid, original)
        db.add(doc)
        db.flush()
        _audit(db, eid, firm.id or 0, "engagement.created", "system", started, {})
        for offset, role in enumerate(PEOPLE):
            _person(db, resources, eid, firm.id or 0, role, started + timedelta(minutes=10 * offset))
            db.add(Signature(document_id=doc.id or 0, role=role))
        db.commit()
        return Seeded(eid, firm.id or 0, doc.id or 0, original, started)


def _document(resources: Resources, engagement_id: int, pdf: bytes) -> Document:
    key = resources.store.new_key("sent")
    resources.store.put(key, pdf)
    return Document(
        engagement_id=engagement_id,
        direction=Direction.TO_CLIENT,
        upload_ref=key.replace("/", "-"),
        name="Form 8879.pdf",
        content_type="application/pdf",
        size=len(pdf),
        pages=2,
        storage_key=key,
        sha256=sha256_hex(pdf),
        current_key=key,
        current_sha256=sha256_hex(pdf),
        uploaded_by="preparer:1",
    )


def _person(db: Session, resources: Resources, eid: int, firm_id: int, role: Role, at: datetime) -> None:
    first, last, email, phone, channel, ip = PEOPLE[role]
    image_key = resources.store.new_key("signatures")
    resources.store.put(image_key, signature_png())
    signer = Signer(
        engagement_id=eid,
        role=role,
        first_name=first,
        last_name=last,
        ssn_encrypted=resources.cipher.encrypt_text("123456789", "ssn"),
        ssn_last4_digest="digest",
        email=email,
        phone=phone,
        signature_key=image_key,
        signature_saved_at=at + timedelta(minutes=4),
    )
    db.add(signer)
    db.flush()
    account = TaxpayerAccount(
        signer_id=signer.id or 0,
        username=first.lower(),
        password_hash="x",
        email=email,
        phone=phone,
        verified_at=at + timedelta(minutes=3),
        verified_channel=channel,
    )
    db.add(account)
    db.flush()
    _link(db, account, signer)
    actor = f"taxpayer:{role.value}"
    ua = TAXPAYER_UA if role == Role.TAXPAYER else SPOUSE_UA
    _consent(db, account, firm_id, at + timedelta(minutes=4), ip, ua)
    if role == Role.SPOUSE:
        _audit(db, eid, firm_id, "registration.mismatch", actor, at, {"role": role.value}, ip, ua)
    steps = [
        ("registration.completed", {"role": role.value, "username": first.lower()}),
        ("code.sent", {"role": role.value, "channel": channel}),
        ("verification.completed", {"role": role.value, "channel": channel}),
        ("signature.saved", {"role": role.value}),
    ]
    for minute, (action, detail) in enumerate(steps, start=1):
        _audit(db, eid, firm_id, action, actor, at + timedelta(minutes=minute), detail, ip, ua)


def _audit(
    db: Session,
    eid: int,
    firm_id: int,
    action: str,
    actor: str,
    at: datetime,
    detail: dict[str, str],
    ip: str | None = None,
    ua: str | None = None,
) -> None:
    db.add(
        AuditEntry(
            firm_id=firm_id,
            engagement_id=eid,
            actor=actor,
            action=action,
            detail=json.dumps(detail),
            ip=ip,
            user_agent=ua,
            at=at,
        )
    )


def sign_and_seal(
    resources: Resources, signer: signers.SimpleSigner, seeded: Seeded, *, seal: bool = True
) -> EngagementActivities:
    """Both spouses sign through the real sign_document activity, then seal_documents runs."""
    activities = EngagementActivities(resources, signer, {})
    for offset, role in enumerate(("taxpayer", "spouse")):
        ip = PEOPLE[Role(role)][5]
        actor = Actor("taxpayer", role, ip, TAXPAYER_UA if role == "taxpayer" else SPOUSE_UA)
        at = seeded.started + timedelta(minutes=30 + offset)
        activities.sign_document(SignRequest(seeded.engagement_id, seeded.document_id, role, actor, at))
    if seal:  # in an activity context: sealing heartbeats before each document
        ActivityEnvironment().run(
            activities.seal_documents,
            SealDocuments(seeded.engagement_id, seeded.started + timedelta(minutes=40)),
        )
    return activities


def _link(db: Session, account: TaxpayerAccount, signer: Signer) -> None:
    """The account reaches its signer. tests/first_release_seed.py runs this module under the first
    release's code, which had no links (an account was its signer's): nothing to do there."""
    try:
        from core.client_accounts import link_signer
    except ImportError:
        return
    link_signer(db, account, signer, via="registration")


def _consent(db: Session, account: TaxpayerAccount, firm_id: int, at: datetime, ip: str, ua: str) -> None:
    """The consent to sign electronically that signing needs (none under the first release's code)."""
    try:
        from core.models import EsignConsent
        from services.consent import DEFAULT_VERSION
    except ImportError:
        return
    db.add(
        EsignConsent(
            account_id=account.id or 0,
            firm_id=firm_id,
            version=DEFAULT_VERSION,
            text_sha256="0" * 64,
            agreed_at=at,
            ip=ip,
            user_agent=ua,
        )
    )
