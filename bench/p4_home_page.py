"""P4: the client landing page (`/portal`) under 50 concurrent clients, against P0's Portico rate.

The client is real: invited, registered and verified through the API on the 2025 return, with a chat
message from the preparer. The rest is added straight to the database, as the records stand after the
preparer's delivery on that return (4 documents, 2 waiting for the client's signature) and after two
earlier, completed seasons (2023, 2024), so that the account reaches 3 engagements, 20 documents and 10
notifications. (Sending the PDFs through the API runs their checks, which time out on a machine as busy as
this one gets during a benchmark; the page reads only the records.) The load generator runs in its own
process on loopback (wrk).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from bench import Row, journey
from bench.embedded import EmbeddedStack, cookie_header
from bench.loadgen import Load, run_load
from bench.stats import median, ms
from core.enums import Role
from core.models import (
    AccountLink,
    ChatMessage,
    Direction,
    Document,
    Engagement,
    EngagementStatus,
    Notification,
    Signature,
    Signer,
    TaxpayerAccount,
)

LANDING_PAGE = "/portal"
CONNECTIONS = 50
RATE_TARGET = 1000.0
P95_LIMIT = 0.030
RATIO_TARGET = 0.5
ENGAGEMENTS, DOCUMENTS, NOTIFICATIONS = 3, 20, 10
SENT_NOW = 4  # documents from the preparer on the 2025 return


@dataclass(frozen=True)
class P4Size:
    seconds: float
    repetitions: int


async def signed_in_client(stack: EmbeddedStack) -> str:
    """A verified client with the stated data; their session cookie."""
    client = journey.household("p4", joint=False)[0]
    client.http = journey.browser(stack.base_url, journey.next_address())
    try:
        engagement_id = await _registered(stack, client)
        reply = {"body": "Thanks, I had a look at your W-2."}
        journey.expect(
            await stack.preparer.post(f"/api/engagements/{engagement_id}/messages", json=reply), 201
        )
        await asyncio.to_thread(_earlier_returns, stack, engagement_id)
        first = await client.browser.get(LANDING_PAGE)  # as a browser's first visit: its CSRF cookie too
        if first.status_code != 200:
            raise RuntimeError(f"{LANDING_PAGE} answered {first.status_code}: {first.text[:300]}")
        cookie = cookie_header(client.browser)
    finally:
        await client.browser.aclose()
    _check(stack, engagement_id)
    return cookie


async def _registered(stack: EmbeddedStack, client: journey.Person) -> int:
    """Invited, registered and verified (no signature drawn: the landing page asks for one)."""
    engagement_id = await journey.create_engagement(stack.preparer, [client])
    await journey.invite(stack.preparer, engagement_id, client)
    http = client.browser
    token = journey.invite_token(await stack.inbox.wait(engagement_id, "invite", client.email))
    registration = {
        "username": "tpp4",
        "password": journey.PASSWORD,
        "email": client.email,
        "phone": client.phone,
        "last_name": client.last_name,
        "ssn_last4": client.ssn[-4:],
    }
    journey.expect(await http.post(f"/api/invitations/{token}/register", json=registration), 201)
    journey.expect(await http.post("/api/taxpayer/code", json={"channel": "email"}), 200)
    code = journey.code_in(await stack.inbox.wait(engagement_id, "code", client.email))
    journey.expect(await http.post("/api/taxpayer/verify", json={"code": code}), 200)
    return engagement_id


def _earlier_returns(stack: EmbeddedStack, engagement_id: int) -> None:
    with Session(stack.resources.engine) as db:
        now = db.get(Engagement, engagement_id)
        signer = db.exec(select(Signer).where(Signer.engagement_id == engagement_id)).one()
        link = db.get(AccountLink, signer.id)
        assert now is not None and link is not None
        _delivery(db, now)
        db.flush()
        documents = db.exec(select(Document).where(Document.engagement_id == engagement_id)).all()
        per_year = (DOCUMENTS - len(documents)) // 2
        for year in (2023, 2024):
            earlier = _completed_return(db, now, signer, link.account_id, year)
            _documents(db, earlier, per_year + (DOCUMENTS - len(documents)) % 2 * (year == 2024))
        have = len(db.exec(select(Notification.id).where(Notification.account_id == link.account_id)).all())
        for n in range(NOTIFICATIONS - have):
            db.add(
                Notification(
                    account_id=link.account_id,
                    engagement_id=engagement_id,
                    kind="message",
                    title=f"New message from your preparer ({n + 1})",
                    link="/portal/messages",
                    read_at=datetime.now(UTC) if n % 2 else None,
                )
            )
        db.commit()


def _delivery(db: Session, engagement: Engagement) -> None:
    """The 2025 return's documents from the preparer: two waiting for the client's signature."""
    for n in range(SENT_NOW):
        document = Document(
            engagement_id=engagement.id or 0,
            direction=Direction.TO_CLIENT,
            upload_ref=f"bench-now-{n}",
            name=f"Form {n}.pdf",
            content_type="application/pdf",
            size=20_000 + n,
            pages=1,
            storage_key=f"bench/now/{n}",  # the page reads records only, never the bytes
            sha256="0" * 64,
            current_key=f"bench/now/{n}",
            current_sha256="0" * 64,
            uploaded_by=f"preparer:{engagement.preparer_id}",
        )
        db.add(document)
        db.flush()
        if n < 2:
            db.add(Signature(document_id=document.id or 0, role=Role.TAXPAYER))


def _completed_return(db: Session, now: Engagement, signer: Signer, account_id: int, year: int) -> Engagement:
    when = datetime(year + 1, 3, 15, tzinfo=UTC)
    engagement = Engagement(firm_id=now.firm_id, preparer_id=now.preparer_id, tax_year=year, created_at=when)
    db.add(engagement)
    db.flush()
    eid = engagement.id or 0
    earlier = Signer(
        engagement_id=eid,
        role=Role.TAXPAYER,
        first_name=signer.first_name,
        last_name=signer.last_name,
        ssn_encrypted=signer.ssn_encrypted,
        ssn_last4_digest=signer.ssn_last4_digest,
        email=signer.email,
        phone=signer.phone,
        time_zone=signer.time_zone,
    )
    db.add(earlier)
    db.flush()
    db.add(AccountLink(signer_id=earlier.id or 0, account_id=account_id, engagement_id=eid, via="invitation"))
    db.add(
        EngagementStatus(
            engagement_id=eid,
            firm_id=now.firm_id,
            preparer_id=now.preparer_id,
            tax_year=year,
            taxpayer_name=f"{signer.first_name} {signer.last_name}",
            stage="completed",
            last_activity_at=when + timedelta(days=10),
            version=12,
        )
    )
    db.add(ChatMessage(engagement_id=eid, sender="preparer", sender_name="Preparer", body="All done."))
    return engagement


def _documents(db: Session, engagement: Engagement, count: int) -> None:
    eid = engagement.id or 0
    for n in range(count):
        to_client = n % 2 == 0
        created = engagement.created_at + timedelta(days=n)
        document = Document(
            engagement_id=eid,
            direction=Direction.TO_CLIENT if to_client else Direction.TO_PREPARER,
            upload_ref=f"bench-{eid}-{n}",
            name=f"{'Return' if to_client else 'W-2'} {engagement.tax_year} part {n}.pdf",
            content_type="application/pdf",
            size=20_000 + n,
            pages=1,
            storage_key=f"bench/{eid}/{n}",  # the page reads records only, never the bytes
            sha256="0" * 64,
            current_key=f"bench/{eid}/{n}",
            current_sha256="0" * 64,
            uploaded_by="preparer:1" if to_client else "taxpayer:taxpayer",
            created_at=created,
        )
        db.add(document)
        db.flush()
        if to_client:
            signed = created + timedelta(days=1)
            db.add(Signature(document_id=document.id or 0, role=Role.TAXPAYER, signed_at=signed))


def _check(stack: EmbeddedStack, engagement_id: int) -> None:
    """The client reaches what the row says (the API's and the worker's writes included)."""
    with Session(stack.resources.engine) as db:
        signer = db.exec(select(Signer).where(Signer.engagement_id == engagement_id)).one()
        link = db.get(AccountLink, signer.id)
        assert link is not None and db.get(TaxpayerAccount, link.account_id) is not None
        ids = db.exec(
            select(AccountLink.engagement_id).where(AccountLink.account_id == link.account_id)
        ).all()
        documents = db.exec(select(Document.id).where(col(Document.engagement_id).in_(ids))).all()
        notes = db.exec(select(Notification.id).where(Notification.account_id == link.account_id)).all()
    found = (len(ids), len(documents), len(notes))
    if found != (ENGAGEMENTS, DOCUMENTS, NOTIFICATIONS):
        raise RuntimeError(f"P4's client has {found} engagements, documents, notifications")


async def run(stack: EmbeddedStack, api_url: str, size: P4Size, work_dir: Path, p0_rate: float) -> Row:
    """`api_url`: the API served as P0 measured it; `p0_rate`: P0's Portico /healthz rate, same run."""
    cookie = await signed_in_client(stack)
    headers = {"Cookie": cookie}
    async with journey.browser(api_url) as http:  # the page answers this client, not a login redirect
        page = await http.get(LANDING_PAGE, headers=headers)
        if page.status_code != 200 or "Pending tasks" not in page.text:
            raise RuntimeError(f"{LANDING_PAGE} answered {page.status_code}: {page.text[:300]}")
    loads: list[Load] = []
    for _ in range(size.repetitions):
        loads.append(
            await asyncio.to_thread(
                run_load, api_url + LANDING_PAGE, headers, CONNECTIONS, size.seconds, work_dir
            )
        )
    return _row(loads, p0_rate, size)


def _row(page: list[Load], p0_rate: float, size: P4Size) -> Row:
    rate, p95 = median([x.rate for x in page]), median([x.p95 for x in page])
    errors = sum(x.errors for x in page)
    ratio = rate / p0_rate
    return Row(
        key="P4",
        what=f"client landing page ({ENGAGEMENTS} returns, {DOCUMENTS} documents, {NOTIFICATIONS} "
        f"notifications), {CONNECTIONS} concurrent clients",
        measured=f"{rate:,.0f} req/s, p95 {ms(p95)}",
        baseline=f"{p0_rate:,.0f} req/s P0 (Portico /healthz)",
        ratio=f"{ratio:.2f}x (req/s)",
        target=f"≥ {RATIO_TARGET}x P0, ≥ {RATE_TARGET:,.0f} req/s, p95 < {P95_LIMIT * 1000:.0f} ms",
        passed=ratio >= RATIO_TARGET and rate >= RATE_TARGET and p95 < P95_LIMIT and errors == 0,
        notes=[
            f"GET {LANDING_PAGE} (HTML) as one signed-in client, on the API processes P0 measured. "
            f"{page[0].tool}, {size.seconds:.0f} s per run, median of {size.repetitions}; {errors} errors. "
            f"p50 {ms(median([x.p50 for x in page]))}.",
        ],
    )
