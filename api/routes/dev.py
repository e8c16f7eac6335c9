"""The development outbox: messages that would have gone out, readable in the browser and by tests.

Mounted only in development and test, never in production.
"""

from __future__ import annotations

import re
from datetime import datetime
from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from sqlmodel import col, select

from core.models import OutboxMessage
from services.deps import ResourcesDep, SessionDep

router = APIRouter(tags=["development"])


class OutboxItem(BaseModel):
    id: int
    idempotency_key: str
    engagement_id: int | None
    purpose: str
    channel: str
    destination: str
    subject: str
    body: str
    status: str
    created_at: datetime


@router.get("/api/dev/outbox", response_model=list[OutboxItem])
def outbox(db: SessionDep, resources: ResourcesDep, limit: int = 200) -> list[OutboxItem]:
    """Messages in the outbox, newest first."""
    rows = db.exec(select(OutboxMessage).order_by(col(OutboxMessage.id).desc()).limit(min(limit, 1000))).all()
    return [
        OutboxItem(
            id=m.id or 0,
            idempotency_key=m.idempotency_key,
            engagement_id=m.engagement_id,
            purpose=m.purpose,
            channel=m.channel,
            destination=m.destination,
            subject=m.subject,
            body=resources.cipher.decrypt_text(m.body_encrypted, "outbox"),
            status=m.status,
            created_at=m.created_at,
        )
        for m in rows
    ]


@router.get("/dev/outbox", response_class=HTMLResponse, include_in_schema=False)
def outbox_page(db: SessionDep, resources: ResourcesDep) -> str:
    items = outbox(db, resources, 100)
    rows = (
        "".join(
            f"<article><header><strong>{escape(m.channel.upper())}</strong> to {escape(m.destination)}"
            f" · {escape(m.purpose)} · {m.created_at:%Y-%m-%d %H:%M:%S} UTC · {escape(m.status)}</header>"
            f"<h2>{escape(m.subject)}</h2><pre>{_linkify(m.body)}</pre></article>"
            for m in items
        )
        or "<p>No messages yet. Invite a taxpayer and the invitation appears here.</p>"
    )
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
        "<title>Dev outbox · Portico</title><link rel=stylesheet href=/static/dev.css>"
        f"<main><h1>Development outbox</h1><p>Messages Portico would send by email or text.</p>{rows}</main>"
    )


# A URL runs to the next whitespace; a sentence's closing punctuation after it is not part of it.
_URL = re.compile(r"https?://\S+?(?=[.,;:!?)\]]*(?:\s|$))")


def _linkify(body: str) -> str:
    """The message text, escaped, with every http(s) URL in it a link (in a new tab, like a mail client)."""
    parts, last = [], 0
    for match in _URL.finditer(body):
        url = escape(match.group(0))
        parts += [
            escape(body[last : match.start()]),
            f'<a href="{url}" target="_blank" rel="noopener">{url}</a>',
        ]
        last = match.end()
    parts.append(escape(body[last:]))
    return "".join(parts)
