"""What a client account is told (the portal's bell): documents to read or sign, a message from the
preparer, a return completed, the firm's message on a delivery.

Notifications are not pipeline state, so both the workflow's activities and the services write them, through
`notify`. Each goes to every account linked to the signers concerned; `once` makes a write idempotent (an
activity retried, a send repeated): a second notification of the same account, return, kind and link is not
written. The caller commits, so a notification lands together with what it tells about.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from core.models import AccountLink, Notification, Signer

DOCUMENTS_SENT = "documents_sent"
SIGNATURE_NEEDED = "signature_needed"
MESSAGE = "message"
COMPLETED = "completed"
FIRM_MESSAGE = "firm_message"

DOCUMENTS_PAGE = "/portal/documents"
MESSAGES_PAGE = "/portal/messages"
HOME_PAGE = "/portal"
MAX_FIRM_MESSAGE = 2000


def accounts_of(session: Session, engagement_id: int, roles: Iterable[str] | None = None) -> list[int]:
    """The accounts that reach the return (only through the signers of `roles`, when given), once each."""
    query = (
        select(AccountLink.account_id)
        .join(Signer, col(Signer.id) == col(AccountLink.signer_id))
        .where(AccountLink.engagement_id == engagement_id)
    )
    if roles is not None:
        query = query.where(col(Signer.role).in_(list(roles)))
    return sorted(set(session.exec(query).all()))


def notify(
    session: Session,
    *,
    account_ids: Iterable[int],
    engagement_id: int,
    kind: str,
    title: str,
    link: str,
    body: str = "",
    once: bool = False,
) -> list[Notification]:
    """One notification per account; with `once`, none where the same one exists already. Not committed."""
    ids = list(account_ids)
    already: set[int] = set()
    if once and ids:
        already = set(
            session.exec(
                select(Notification.account_id).where(
                    col(Notification.account_id).in_(ids),
                    Notification.engagement_id == engagement_id,
                    Notification.kind == kind,
                    Notification.link == link,
                )
            ).all()
        )
    written = []
    for account_id in ids:
        if account_id in already:
            continue
        row = Notification(
            account_id=account_id,
            engagement_id=engagement_id,
            kind=kind,
            title=title,
            body=body,
            link=link,
        )
        session.add(row)
        written.append(row)
    return written


def documents_published(
    session: Session, engagement_id: int, document_ids: list[int], roles_to_sign: set[str]
) -> None:
    """The preparer's documents arrived: everyone on the return hears of them, and each signer who must
    sign some is asked to. Keyed by the first document, so a retried publish writes nothing twice."""
    if not document_ids:
        return
    anchor = f"{DOCUMENTS_PAGE}#doc-{min(document_ids)}"
    count = len(document_ids)
    title = "Your preparer sent you a document" if count == 1 else f"Your preparer sent you {count} documents"
    notify(
        session,
        account_ids=accounts_of(session, engagement_id),
        engagement_id=engagement_id,
        kind=DOCUMENTS_SENT,
        title=title,
        link=anchor,
        once=True,
    )
    if roles_to_sign:
        notify(
            session,
            account_ids=accounts_of(session, engagement_id, roles_to_sign),
            engagement_id=engagement_id,
            kind=SIGNATURE_NEEDED,
            title="Your signature is needed",
            link=anchor,
            once=True,
        )


def return_completed(session: Session, engagement_id: int, tax_year: int) -> None:
    notify(
        session,
        account_ids=accounts_of(session, engagement_id),
        engagement_id=engagement_id,
        kind=COMPLETED,
        title=f"Your {tax_year} return is signed and complete",
        link=DOCUMENTS_PAGE,
        once=True,
    )


def preparer_message(session: Session, engagement_id: int, preparer_name: str) -> None:
    notify(
        session,
        account_ids=accounts_of(session, engagement_id),
        engagement_id=engagement_id,
        kind=MESSAGE,
        title=f"New message from {preparer_name}",
        link=MESSAGES_PAGE,
    )


def firm_message(session: Session, engagement_id: int, document_ids: list[int], text: str) -> None:
    """The firm's words on a delivery, shown once to each client on the return until they click OK.
    Plain text: the pages escape it. Keyed by the delivery's first document, like its notification."""
    words = text.strip()[:MAX_FIRM_MESSAGE]
    if not words or not document_ids:
        return
    notify(
        session,
        account_ids=accounts_of(session, engagement_id),
        engagement_id=engagement_id,
        kind=FIRM_MESSAGE,
        title="A message from your tax firm",
        body=words,
        link=f"{DOCUMENTS_PAGE}#doc-{min(document_ids)}",
        once=True,
    )
